"""``ufm solve``: the certified optimal collapsed geometry for given class counts, batching and prototypes."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch
import typer
from rich import box
from rich.table import Table

from ._common import console, print_json, user_errors
from ._config import with_config_options
from ufm.agreement import solver_vs_simulator
from ufm.batching import epoch_batches, epoch_compositions
from ufm.geometry import load_gram, make_gram
from ufm.imbalance import class_counts, labels_from_counts, parse_counts
from ufm.plots import gram_heatmaps, save_figure
from ufm.runio import write_json
from ufm.simulate import SimConfig
from ufm.solver import SOLVERS, class_groups, nonnegative_prototypes, solve, solve_full, solve_full_bm


@user_errors
def solve_command(
    counts: Optional[str] = typer.Option(None, help="class counts, e.g. 5000x5,500x5 (overrides --profile)"),
    k: int = typer.Option(10, help="number of classes (with --profile)"),
    profile: str = typer.Option("step", help="balanced, step or long-tail (when --counts is not given)"),
    n_major: int = typer.Option(50, help="samples in each majority class"),
    ratio: float = typer.Option(10.0, help="imbalance ratio R"),
    minority_fraction: float = typer.Option(0.5, help="fraction of minority classes (step)"),
    tau: float = typer.Option(0.1, help="temperature"),
    n_w: float = typer.Option(0.0, "--n-w", help="copies of each prototype per batch"),
    geometry: str = typer.Option("etf", help="prototype Gram G_*: etf, orthogonal or minority"),
    gamma: float = typer.Option(1.0, help="strength of the minority geometry"),
    gram_file: Optional[Path] = typer.Option(None, help="a k x k G_* file instead of --geometry"),
    prototype_anchors: bool = typer.Option(True, "--prototype-anchors/--no-prototype-anchors",
                                           help="prototype copies are anchors too"),
    batching: str = typer.Option("full", help="full, or the batch-set of one seeded epoch: shuffle, balanced, binding"),
    batch_size: int = typer.Option(32, help="batch size for --batching other than full"),
    seed: int = typer.Option(0, help="seed of the epoch whose batch-set is solved"),
    solver: str = typer.Option("auto", help=f"auto, or one of {', '.join(SOLVERS)} (BM: Burer-Monteiro with a "
                                               "certificate, for large k)"),
    reduce: bool = typer.Option(True, "--reduce/--no-reduce",
                                help="solve the symmetry-reduced problem when classes with equal counts allow it"),
    relu: bool = typer.Option(False, "--relu", help="non-negative features: the doubly non-negative relaxation"),
    full: bool = typer.Option(False, "--full", help="every sample its own row (no collapse assumed; N up to ~60, "
                                                    "thousands with --solver BM)"),
    out: Optional[Path] = typer.Option(None, help="folder for solution.json and gram.png (default runs/solve-<time>)"),
    as_json: bool = typer.Option(False, "--json", help="print the solution as JSON"),
) -> None:
    """Globally optimal class-mean Gram of batch SCL (with prototypes) for collapsed features (cvxpy)."""
    n = parse_counts(counts) if counts else class_counts(profile, k, n_major, ratio, minority_fraction)
    comp = n.unsqueeze(0) if batching == "full" else epoch_compositions(n, batch_size, batching, seed)
    g_star = None
    if n_w > 0:
        g_star = load_gram(gram_file) if gram_file else make_gram(geometry, len(n), n, gamma)
    extra = {}
    if relu and g_star is not None:  # ReLU features can only reach non-negative prototypes: find them or refuse
        try:
            extra["nonnegative_prototypes"] = nonnegative_prototypes(g_star, len(n)).tolist()
        except ValueError as err:
            raise ValueError(f"--relu: {err}") from None
    if full:
        if relu:
            raise ValueError("--full does not support --relu yet; drop one of them")
        labels = labels_from_counts(n)
        batches = (epoch_batches(labels, len(labels), "full", torch.Generator(), len(n)) if batching == "full"
                   else epoch_batches(labels, batch_size, batching, torch.Generator().manual_seed(seed), len(n)))
        index = [row[keep].numpy() for row, keep in zip(batches.index, batches.mask)]
        if solver == "BM":
            result = solve_full_bm(labels.numpy(), index, tau, g_star, n_w, prototype_anchors, len(n))
        else:
            result = solve_full(labels.numpy(), index, tau, g_star, n_w, prototype_anchors,
                                "CLARABEL" if solver == "auto" else solver, len(n))
        extra["min_within_class_cosine"] = result.min_within_class_cosine
        result = replace(result, gram=result.class_means, cross=None)
    else:
        result = solve(comp.numpy(), tau, g_star, n_w, prototype_anchors, solver, reduce, relu)
    folder = out or Path("runs") / f"solve-{time.strftime('%Y%m%d-%H%M%S')}"
    summary = {"counts": n.tolist(), "batches": len(comp), "tau": tau, "n_w": n_w, **extra, **result.summary()}
    write_json(folder / "solution.json", summary)
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
    table.title = title + (f" (first {shown} of {k} classes; all in solution.json)" if shown < k else "")
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
