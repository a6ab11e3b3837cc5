"""``ufm solve``: the certified optimal collapsed geometry for given class counts, batching and prototypes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from ._threads import computing
from ._common import console, default_out, max_memory_option, overwrite_option, print_json, user_errors
from ._config import typed, with_config_options
from ufm.choices import JSON_MATRIX_MAX_K
from ufm.errors import FieldError
from ufm import single
from ufm.sim_config import SimConfig
from ufm.spec import SolveConfig


@user_errors
@with_config_options(SolveConfig)
def solve_command(
    ctx: typer.Context,
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
    if full and typed(ctx, "reduce"):
        raise FieldError(f"{{reduce={config.reduce}}} has no effect with {{full}} (the N x N problem is "
                         "never symmetry-reduced); drop it")
    folder = out or default_out("solve")
    summary, result = single.run_one(folder, "solve", config, overwrite,
                                     lambda cfg, stage: _solve(cfg, stage, full, max_memory_gb))
    n, tau, n_w = summary["counts"], config.tau, config.n_w
    if as_json:
        print_json({**summary, "run_folder": str(folder)})
        return
    console.print(f"class counts n = {n if len(n) <= 20 else f'{len(n)} classes'}, {summary['batches']} batch(es), "
                  f"tau {tau:g}, n_w {n_w:g}")
    console.print(_gram_table(result, n))
    if full:
        console.print(f"full N x N solve: smallest within-class cosine {summary['min_within_class_cosine']:.6f} "
                      "(1 means the classes collapse); the table shows G_M of the solution")
    console.print(result.describe())
    console.print(f"folder {folder}")


def _solve(cfg: SolveConfig, stage: Path, full: bool, max_memory_gb: Optional[float]) -> tuple[dict, Any]:
    """The solve kind's run (:func:`ufm.kinds.solve.run`) into the staging folder (cvxpy: once --out is checked)."""
    from ufm.kinds import solve as solve_kind

    return solve_kind.run(cfg, stage, full, max_memory_gb)


def _gram_table(result, counts: list[int], most: int = 20) -> Table:
    """G_M in full up to ``most`` classes; above, one row and column per group of equal counts (grouped
    solve) or the first ``most`` classes."""
    from ufm.solver import class_groups
    from ufm.solver.result import ARRAYS_FILE

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
    """Run the simulator (full batch) and the convex solver on the same problem: a verdict per run (agree,
    disagree, cannot judge) on G_M's entries, with the tolerance used."""
    from ufm.choices import check_comparable

    check_comparable(config.loss, config.relu, config.n_w, config.prototype_anchors)  # before the heavy imports
    from ufm.kinds.simulate import work

    computing(work(replace(config, batching="full")))
    from ufm.agreement import AGREE, TOLERANCE_SOURCE, solver_vs_simulator
    from ufm.solver.result import ENTRY_TOL

    rows = solver_vs_simulator(replace(config, batching="full"))
    if as_json:
        print_json(rows)
        return
    console.print(_agree_table(rows))
    console.print(f"tolerance = {TOLERANCE_SOURCE}; agree needs it at most {ENTRY_TOL:g} (losses and distances: "
                  "--json)")
    for r in rows:
        if r["verdict"] != AGREE:
            console.print(f"n_w {r['n_w']:g}, tau {r['tau']:g}, seed {r['seed']}: {r['verdict']}: {r['reason']}")
    loose = [r for r in rows if r["solver_status"] != "optimal"]
    if loose:
        console.print(f"[yellow]{len(loose)} of {len(rows)} solver optima are not certified (status "
                      f"{', '.join(sorted({r['solver_status'] for r in loose}))}): their gap may be off "
                      "(marked ?)[/yellow]")


def _agree_table(rows: list[dict]) -> Table:
    """One line per run, within 80 columns: gap, largest G_M entry difference, tolerance, verdict."""
    from ufm.agreement import AGREE, CANNOT_JUDGE, DISAGREE

    table = Table(title="simulator (full batch) vs certified collapsed optimum", box=box.SIMPLE, padding=(0, 1),
                  pad_edge=False)
    for col in ("n_w", "tau", "seed", "rel. gap", "max |dG_M|", "tolerance", "verdict"):
        table.add_column(col, justify="right", no_wrap=True)
    colour = {AGREE: "green", DISAGREE: "red", CANNOT_JUDGE: "yellow"}
    for r in rows:
        tol = "-" if r["tolerance"] is None else f"{r['tolerance']:.1e}"
        table.add_row(f"{r['n_w']:g}", f"{r['tau']:g}", str(r["seed"]),
                      f"{r['relative_gap']:+.1e}" + ("" if r["solver_status"] == "optimal" else "?"),
                      f"{r['gram_max_difference']:.1e}", tol, f"[{colour[r['verdict']]}]{r['verdict']}[/]")
    return table
