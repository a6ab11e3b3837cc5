"""``ufm solve``: the certified optimal collapsed geometry for given class counts, batching and prototypes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from rich import box
from rich.table import Table

from ._common import (check_out, console, default_out, max_memory_option, overwrite_option, print_json,
                      user_errors)
from ._config import with_config_options
from ufm.agreement import solver_vs_simulator
from ufm.batching import epoch_batches
from ufm.imbalance import labels_from_counts
from ufm.plots import gram_heatmaps, save_figure
from ufm.folders import mark
from ufm.runio import write_json, write_npz
from ufm.simulate import SimConfig
from ufm.spec import SolveConfig
from ufm.solver import (check_solve_size, class_groups, nonnegative_prototypes, solve, solve_full,
                        solve_full_bm)
from ufm.solver.result import ARRAYS_FILE, JSON_MATRIX_MAX_K


@user_errors
@with_config_options(SolveConfig)
def solve_command(
    config: SolveConfig,
    full: bool = typer.Option(False, "--full", help="every sample its own row (no collapse assumed; N up to ~60, "
                                                    "thousands with --solver BM)"),
    out: Optional[Path] = typer.Option(None, help="folder for solution.json, arrays.npz (the matrices) and gram.png (default runs/solve-<time>)"),
    as_json: bool = typer.Option(False, "--json", help="print the solution as JSON (the matrices as lists up to k = "
                                                       f"{JSON_MATRIX_MAX_K}; always in arrays.npz)"),
    overwrite: bool = overwrite_option(),
    max_memory_gb: Optional[float] = max_memory_option(),
) -> None:
    """Globally optimal class-mean Gram of batch SCL (with prototypes) for collapsed features (cvxpy)."""
    folder = check_out(out or default_out("solve"), overwrite, kind="solve")
    if full and config.relu:
        raise ValueError("--full does not support --relu yet; drop one of them")
    if full and not config.reduce:
        raise ValueError("--no-reduce has no effect with --full (the N x N problem is never symmetry-reduced); drop it")
    n = config.class_counts()
    comp = config.compositions(n)
    tau, n_w, solver, relu = config.tau, config.n_w, config.solver, config.relu
    labels = labels_from_counts(n) if full else None
    # refuse up front what cannot fit: the k x k matrices (G_* is built next), then the method's own estimate
    # (the full solves here; the collapsed ones inside solve())
    check_solve_size(len(n), len(comp), n_w > 0, "dense", max_memory_gb)
    if full:
        check_solve_size(len(n), 1, n_w > 0, "full-bm" if solver == "BM" else "full", max_memory_gb,
                         samples=len(labels))
    g_star = config.g_star(n) if n_w > 0 else None
    extra = {}
    if relu and g_star is not None:  # ReLU features can only reach non-negative prototypes: find them or refuse
        try:
            extra["nonnegative_prototypes"] = nonnegative_prototypes(g_star, len(n)).tolist()
        except ValueError as err:
            raise ValueError(f"--relu: {err}") from None
    if full:
        batches = (epoch_batches(labels, len(labels), "full", torch.Generator(), len(n)) if config.batching == "full"
                   else epoch_batches(labels, config.batch_size, config.batching,
                                      torch.Generator().manual_seed(config.seed), len(n)))
        index = [row[keep].numpy() for row, keep in zip(batches.index, batches.mask)]
        if solver == "BM":
            result = solve_full_bm(labels.numpy(), index, tau, g_star, n_w, config.prototype_anchors, len(n))
        else:
            result = solve_full(labels.numpy(), index, tau, g_star, n_w, config.prototype_anchors,
                                "CLARABEL" if solver == "auto" else solver, len(n), max_memory_gb=max_memory_gb)
        extra["min_within_class_cosine"] = result.min_within_class_cosine
        arrays = {"sample_gram": result.gram} | ({} if result.cross is None else {"sample_cross": result.cross})
        result = replace(result, gram=result.class_means, cross=None)
    else:
        result = solve(comp.numpy(), tau, g_star, n_w, config.prototype_anchors, solver, config.reduce, relu,
                       max_memory_gb=max_memory_gb)
        arrays = {}
    # matrices in arrays.npz; in the JSON (file and --json) as lists only up to JSON_MATRIX_MAX_K classes
    arrays = {**result.arrays(), **arrays, **({} if g_star is None else {"g_star": g_star.numpy()})}
    if "nonnegative_prototypes" in extra:
        arrays["nonnegative_prototypes"] = np.array(extra["nonnegative_prototypes"])
        if len(n) > JSON_MATRIX_MAX_K:
            extra["nonnegative_prototypes"] = None
    summary = {"counts": n.tolist(), "batches": len(comp), "tau": tau, "n_w": n_w, **extra, **result.summary()}
    write_npz(folder / ARRAYS_FILE, **arrays)
    mark(folder, "solve")
    write_json(folder / "solution.json", summary)  # written last: the run is finished when it exists
    grams = [result.gram] if g_star is None else [result.gram, g_star.numpy()]
    titles = ["optimal G_M"] if g_star is None else ["optimal G_M", "prototype Gram G_*"]
    save_figure(gram_heatmaps(grams, titles, f"counts {n.tolist() if len(n) <= 12 else f'k = {len(n)}'}, tau {tau:g}, "
                                             f"n_w {n_w:g}"), folder / "gram.png")
    if as_json:
        print_json({**summary, "run_folder": str(folder)})
        return
    console.print(f"class counts n = {n.tolist() if len(n) <= 20 else f'{len(n)} classes'}, {len(comp)} batch(es), "
                  f"tau {tau:g}, n_w {n_w:g}")
    console.print(_gram_table(result, n.tolist()))
    if full:
        console.print(f"full N x N solve: smallest within-class cosine {extra['min_within_class_cosine']:.6f} "
                      "(1 means the classes collapse); the table shows G_M of the solution")
    console.print(result.describe())
    console.print(f"folder {folder}")


def _gram_table(result, counts: list[int], most: int = 20) -> Table:
    """G_M in full up to ``most`` classes; above, one row and column per group of equal counts (grouped
    solve) or the first ``most`` classes."""
    k = len(counts)
    title = (f"optimal class-mean Gram ({result.method}, {result.solver}: {result.status}, "
             f"objective {result.objective:.10g})")
    table = Table(box=box.SIMPLE, padding=(0, 1), pad_edge=False)
    if k > most and result.groups is not None:
        groups = class_groups(counts)
        table.title = title + ": one row and column per group of equal-count classes"
        table.add_column("group (classes, n)", justify="right", no_wrap=True)
        for gi in range(len(groups)):
            table.add_column(f"group {gi}", justify="right", no_wrap=True)
        for gi, ga in enumerate(groups):
            cells = []
            for gj, gb in enumerate(groups):
                if gi != gj:
                    cells.append(f"{result.gram[ga[0], gb[0]]:+.8f}")
                else:
                    cells.append(f"{result.gram[ga[0], ga[1]]:+.8f}" if len(ga) > 1 else "-")
            table.add_row(f"{gi} ({len(ga)}, {counts[ga[0]]})", *cells)
        return table
    shown = min(k, most)
    table.title = title + (f" (first {shown} of {k} classes; all in {ARRAYS_FILE})" if shown < k else "")
    table.add_column("class", justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    for c in range(shown):
        table.add_column(str(c), justify="right", no_wrap=True)
    for a in range(shown):
        table.add_row(str(a), str(int(counts[a])), *(f"{v:+.4f}" for v in result.gram[a, :shown]))
    return table


@user_errors
@with_config_options(SimConfig, skip=("batching", "batch_size"))
def agree_command(
    config: SimConfig,
    as_json: bool = typer.Option(False, "--json", help="print the rows as JSON"),
) -> None:
    """Run the simulator (full batch) and the convex solver on the same problem: objective gap and Gram distance."""
    rows = solver_vs_simulator(replace(config, batching="full"))
    if as_json:
        print_json(rows)
        return
    table = Table(title="simulator (full batch) vs certified collapsed optimum", box=box.SIMPLE)
    for col in ("n_w", "tau", "seed", "simulator loss", "solver optimum", "relative gap", "max |G_M diff|",
                "distance sim", "distance solver"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['n_w']:g}", f"{r['tau']:g}", str(r["seed"]), f"{r['simulator_loss']:.8g}",
                      f"{r['solver_objective']:.8g}", f"{r['relative_gap']:+.1e}", f"{r['gram_max_difference']:.1e}",
                      f"{r['distance_simulator']:.4f}", f"{r['distance_solver']:.4f}")
    console.print(table)
