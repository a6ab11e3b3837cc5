"""``ufm copies``: how many prototype copies bring the optimal G_M within a distance of G_*; ``ufm map``: a distance
map (certified optimum over ratio/tau x n_w) as a resumable sweep on any executor, with its heatmaps."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.table import Table

from ._threads import computing
from ._common import check_writable, console, default_out, points_done, print_json, progress_bar, user_errors
from ._config import GRID_ANCHORS_HELP, anchors_values, with_config_options
from ._executor import with_executor_options
from ufm.executors import ExecutorConfig
from ufm.choices import check_copies_search
from ufm.map_config import N_WS, RATIOS, MapCell, map_grid
from ufm.spec import DesignConfig, ProblemSpec
from ufm.threads import solver_work


@user_errors(aliases={"rel_tol": "--tol"})
@with_config_options(ProblemSpec, skip=("n_w",))
def copies_command(
    config: ProblemSpec,
    target_distance: float = typer.Option(0.05, help="wanted distance of the optimal G_M to G_*"),
    max_n_w: float = typer.Option(1e4, "--max-n-w", help="give up above this many copies"),
    tol: float = typer.Option(1e-3, help="relative tolerance of the answer"),
    solver: str = typer.Option("BM", help="BM (Burer-Monteiro, certified; smooth in n_w), auto (symmetry-reduced or "
                               "interior point), CLARABEL or SCS (interior point)"),
    as_json: bool = typer.Option(False, "--json", help="print the search as JSON"),
) -> None:
    """Smallest n_w (copies of each prototype; fractional allowed) whose optimal G_M is within
    --target-distance of G_*, by a monotone search over the certified solver."""
    check_copies_search(target_distance, max_n_w, tol, solver, config.prototype_anchors)
    config.check_counts()
    from ufm.copies import minimal_copies  # (torch, cvxpy: once the options are checked)

    n = config.class_counts()
    computing(solver_work(len(n)))
    comp = config.compositions(n)
    g_star = config.g_star(n)
    tau, prototype_anchors = config.tau, config.prototype_anchors
    result = minimal_copies(comp.numpy(), tau, g_star, target_distance, prototype_anchors, max_n_w, tol,
                            solver=solver)
    if as_json:
        print_json({"counts": n.tolist(), "batches": len(comp), "tau": tau, **result.to_dict()})
        return
    table = Table(title=f"search over n_w (target distance {target_distance:g})", box=box.SIMPLE, padding=(0, 1))
    for col in ("n_w", "distance", "reached", "status", "certified gap", "relative gap"):
        table.add_column(col, justify="right")
    for s in result.steps:
        reached = ("unknown" if s.status != "optimal" else "yes" if s.distance <= target_distance else "no")
        table.add_row(f"{s.n_w:.6g}", f"{s.distance:.6f}", reached, s.status,
                      "-" if s.certified_gap is None else f"{s.certified_gap:.1e}",
                      "-" if s.relative_gap is None else f"{s.relative_gap:.1e}")
    console.print(f"class counts n = {n.tolist()}, {len(comp)} batch(es), tau {tau:g}, "
                  f"{'prototype anchors' if prototype_anchors else 'batch anchors only'}")
    console.print(table)
    if not result.monotone_on_path:
        console.print("[yellow]warning: the distance was not non-increasing along the search; the answer assumes "
                      "it is[/yellow]")
    console.print(result.conclusion())


@user_errors
@with_config_options(DesignConfig, skip=("batching", "batch_size", "seed"))
def design_prototypes_command(
    config: DesignConfig,
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON (with the designed G_w)"),
) -> None:
    """Prototype Gram G_w (majority, minority and across cosines) whose optimal G_M is closest to the target
    G_* (--geometry or --gram-file) at --n-w copies, full batch, against G_w = G_*."""
    config.check_counts()
    from ufm.design import best_block_prototypes  # (torch, cvxpy: once the options are checked)

    n = config.class_counts()
    computing(solver_work(len(n)))
    tau, n_w, prototype_anchors = config.tau, config.n_w, config.prototype_anchors
    out = best_block_prototypes(n.numpy(), tau, n_w, config.g_star(n), prototype_anchors, config.max_evals)
    if as_json:
        print_json(out)
        return
    a0, b0, c0 = out["g_star_cosines"]
    a, b, c = out["best_cosines"]
    console.print(f"class counts n = {n.tolist()}, tau {tau:g}, n_w {n_w:g}, "
                  f"{'prototype anchors' if prototype_anchors else 'batch anchors only'}, full batch, target G_* "
                  f"{config.gram_file or config.geometry}")
    table = Table(box=box.SIMPLE, padding=(0, 1))
    for col in ("prototype Gram", "majority cos", "minority cos", "across cos", "distance of optimal G_M to G_*"):
        table.add_column(col, justify="right")
    table.add_row("G_w = G_*", f"{a0:+.4f}", f"{b0:+.4f}", f"{c0:+.4f}", f"{out['distance_g_star']:.6f}"
                  + ("" if out["g_star_status"] == "optimal" else " (not certified)"))
    table.add_row("designed G_w", f"{a:+.4f}", f"{b:+.4f}", f"{c:+.4f}", f"{out['distance_best']:.2e}")
    console.print(table)
    if out["distance_best"] >= out["distance_g_star"]:  # e.g. a G_* that is not a two-group block Gram
        console.print("[yellow]the designed G_w does not beat G_w = G_*: keep G_w = G_* (the search is over two-group "
                      "block Grams; the G_* row shows its block means)[/yellow]")
    if out["g_star_status"] != "optimal":
        console.print(f"[yellow]the G_w = G_* solve is not certified (status {out['g_star_status']}): its distance, "
                      "and so the comparison, may be off[/yellow]")
    console.print(f"{out['solves']} solves, {out['certified_solves']} certified; the designed G_w is the best certified "
                  f"one (certified gap {out['best_certified_gap']:.1e}); Nelder-Mead "
                  f"{'converged' if out['converged'] else 'stopped at --max-evals'}")


@user_errors(aliases={"max_memory_gb": "$UFM_MAX_MEMORY_GB", "full=False": "a map solves collapsed features"})
@with_config_options(MapCell, skip=("ratio", "tau", "n_w", "prototype_anchors"))
@with_executor_options
def map_command(
    config: MapCell,
    executor: ExecutorConfig,
    ratio: Optional[List[float]] = typer.Option(None, help=f"imbalance ratios R (rows of the map; default "
                                                f"{', '.join(format(r, 'g') for r in RATIOS)}; none with --profile "
                                                "balanced); repeat the option"),
    tau: List[float] = typer.Option([0.1], help="temperatures; repeat the option (with one ratio: the rows)"),
    n_w: List[float] = typer.Option(list(N_WS), "--n-w", help="copies of each prototype (columns); repeat the option"),
    anchors: Optional[List[str]] = typer.Option(None, "--anchors", help=GRID_ANCHORS_HELP),
    out: Optional[Path] = typer.Option(None, help="map folder (default runs/map-<time>); re-run with the same --out "
                                       "to skip finished cells"),
    as_json: bool = typer.Option(False, "--json", help="print the rows as JSON on stdout"),
) -> None:
    """Distance of the certified optimal G_M to G_* over (R or tau) x n_w, full batch: one solve per cell as a
    resumable sweep (inline, local processes or a SLURM job array), then the heatmaps in <out>/map.png."""
    config, grid = map_grid(config, ratio or None, tau, n_w, anchors_values(anchors))
    check_writable(out)
    from ufm.maps import run_map  # (torch, cvxpy: once the options are checked)

    folder = out or default_out("map")
    start = time.perf_counter()
    with progress_bar(as_json) as bar:
        report = run_map(folder, config, grid, executor, points_done(bar, f"map ({executor.executor})"))
    _print_map(report, time.perf_counter() - start, as_json)


def _print_map(report: dict, elapsed: float, as_json: bool) -> None:
    """The map's rows as JSON or a table, with what is certified (or the SLURM jobs submitted)."""
    if as_json:
        print_json({"map_folder": report["folder"], "figure": None if report["figure"] is None else str(report["figure"]),
                    **{k: report[k] for k in ("rows", "finished", "total", "missing", "skipped")},
                    "ran": report.get("ran", 0), "submitted": report.get("submitted"), "elapsed_s": elapsed})
        return
    if "submitted" in report:
        console.print(f"submitted {len(report['submitted'])} cells to SLURM ({report['skipped']} already finished); "
                      f"when they end, run the same command again for the table and the figure")
        return
    table = Table(title=f"distance map: {report['finished']} of {report['total']} cells", box=box.SIMPLE,
                  padding=(0, 1))
    for col in ("anchors", "R", "tau", "n_w", "distance", "status", "relative gap", "spread"):
        table.add_column(col, justify="right")
    for r in report["rows"]:
        dist = "n/a" if r.get("distance") is None else f"{r['distance']:.4f}"
        gap = r.get("relative_gap")
        spread = r.get("distance_spread")
        table.add_row("prototype" if r["prototype_anchors"] else "batch", f"{r['ratio']:g}", f"{r['tau']:g}",
                      f"{r['n_w']:g}", dist, str(r.get("status")), "-" if gap is None else f"{gap:.1e}",
                      "-" if spread is None else f"{spread:.1e}")
    console.print(table)
    _print_certification(report["rows"])
    console.print(f"{report['ran']} cells solved, {report['skipped']} already finished, {elapsed:.1f} s; map folder: "
                  f"{report['folder']}" + (f"; figure: {report['figure']}" if report["figure"] else ""))


def _print_certification(rows: list[dict]) -> None:
    """Say which cells' distances are not certified and which cells have no independent cross-check."""
    from ufm.plots import certified_row

    solved = [r for r in rows if r.get("distance") is not None]
    loose = [r for r in solved if not certified_row(r)]
    if loose:
        statuses = ", ".join(sorted({str(r.get("status")) for r in loose}))
        console.print(f"[yellow]{len(solved) - len(loose)} of {len(solved)} cells certified; the other "
                      f"{len(loose)} (status {statuses}) are not: their distances may be off (hatched in map.png)"
                      "[/yellow]")
    same = [r for r in solved if r.get("cross_check_note")]
    if same:
        console.print(f"[yellow]{len(same)} cells have no independent cross-check ({same[0]['cross_check_note']}): "
                      "spread '-'[/yellow]")
