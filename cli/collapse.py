"""``ufm collapse-map``: where collapse stops being optimal, cell by cell, certified (see ufm.collapse)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rich import box
from rich.table import Table

from ._common import check_out, console, default_out, err_console, print_json, progress_bar, user_errors
from ._executor import with_executor_options
from ufm.executors import ExecutorConfig

_ANCHORS = {"both": (True, False), "prototype": (True,), "batch": (False,)}
MAX_SEEDS = 1000  # random starts per cell: each one an N x N Burer-Monteiro solve


@user_errors(aliases={"max_memory_gb": "$UFM_MAX_MEMORY_GB", "full=False": "a collapse map always solves N x N"})
@with_executor_options
def collapse_map_command(
    executor: ExecutorConfig,
    profile: Optional[List[str]] = typer.Option(None, help="imbalance profiles: step, long-tail (repeatable; "
                                                "default step and long-tail)"),
    ratio: Optional[List[float]] = typer.Option(None, help="imbalance ratios R (repeatable; default 2 and 10)"),
    tau: Optional[List[float]] = typer.Option(None, help="temperatures (repeatable; default 0.1 and 0.5)"),
    n_w: Optional[List[float]] = typer.Option(None, "--n-w", help="prototype copies per batch (repeatable; "
                                              "default 0, 1, 10)"),
    anchors: str = typer.Option("both", help="anchor conventions: both, prototype or batch (batch anchors only)"),
    k: int = typer.Option(10, help="number of classes"),
    n_major: int = typer.Option(20, help="samples in each majority class"),
    minority_fraction: float = typer.Option(0.5, help="STEP: fraction of minority classes"),
    target: str = typer.Option("etf", help="prototype Gram G_*: etf or orthogonal"),
    batching: str = typer.Option("full", help="full (one batch) or shuffle (the batches of one seeded epoch)"),
    batch_size: int = typer.Option(0, help="batch size with --batching shuffle"),
    batch_seed: int = typer.Option(0, help="seed of the reshuffled epoch"),
    seeds: int = typer.Option(1, help="random starts of the uncollapsed Burer-Monteiro solve (besides the "
                              "perturbed collapsed point)"),
    rel_tol: float = typer.Option(1e-9, help="relative gap under which collapse counts as certified optimal"),
    out: Optional[Path] = typer.Option(None, help="map folder: one run folder per cell, collapse_map.json and "
                                       "table.csv; re-run the same command to continue a killed map (default: "
                                       "runs/collapse-map-<time> with --executor local/slurm, none inline)"),
    overwrite: bool = typer.Option(False, help="replace a collapse map of other cells in --out (the same cells "
                                   "continue without it)"),
    as_json: bool = typer.Option(False, "--json", help="print the cells as JSON"),
) -> None:
    """Is class collapse optimal?  Per cell (profile, R, tau, n_w, anchors): the certified collapsed optimum,
    lifted to N samples and certified there, against the uncollapsed Burer-Monteiro optimum; verdict
    "collapse optimal" (certified within the gap), "not optimal" (certified) or "undecided"."""
    from ufm.collapse import collapse_map, map_cells, run_collapse_map

    if anchors not in _ANCHORS:
        raise ValueError(f"--anchors must be one of {', '.join(_ANCHORS)}, got {anchors!r}")
    if not 0 <= seeds <= MAX_SEEDS:
        raise ValueError(f"--seeds must be in [0, {MAX_SEEDS}] (random starts of each cell's N x N solve), got {seeds}")
    if anchors != "both" and n_w and all(w == 0 for w in n_w):
        raise ValueError(f"--anchors {anchors} has no effect with --n-w 0 only (no prototypes); drop it")
    if overwrite and out is None:
        raise ValueError("--overwrite has no effect without --out (no existing folder is written to); drop it")
    profiles = tuple(profile or ("step", "long-tail"))
    default_ratios = (1.0,) if set(profiles) == {"balanced"} else (2.0, 10.0)
    cells = map_cells(profiles, tuple(ratio or default_ratios), tuple(tau or (0.1, 0.5)), tuple(n_w or (0.0, 1.0, 10.0)),
                      _ANCHORS[anchors], k, n_major, minority_fraction, target, batching, batch_size, batch_seed,
                      tuple(range(seeds)), rel_tol)
    if out is None and executor.executor != "inline":
        out = default_out("collapse-map")
    if out is not None:
        out = check_out(out, overwrite=overwrite, run_folder=False, kind="collapse-map")
    with progress_bar(as_json) as bar:
        task = bar.add_task(f"collapse map ({executor.executor})", total=len(cells), status="")
        finished = {"n": 0}

        def done(name: str, ok: bool) -> None:
            finished["n"] += 1
            bar.update(task, completed=finished["n"], status=f"{name} {'done' if ok else 'FAILED'}")

        try:
            if out is None:
                rows = collapse_map(cells, executor, None, done=done)
            else:
                report = run_collapse_map(out, cells, executor, done, overwrite=overwrite)
                rows = report["rows"]
        except KeyboardInterrupt:
            where = (f"finished cells are kept in {out}; re-run the same command to continue" if out is not None
                     else "nothing was kept (no --out); give --out to keep finished cells")
            err_console.print(f"interrupted: {where}")
            raise typer.Exit(130) from None
    if out is not None and "submitted" in report:
        if as_json:
            print_json({"folder": str(out), "submitted": report["submitted"], "skipped": report["skipped"]})
        else:
            console.print(f"submitted {len(report['submitted'])} cells to SLURM ({report['skipped']} already "
                          f"finished); when they end, run the same command again (or ufm gather {out}) for the table")
        return
    if as_json:
        print_json(rows)
        return
    if out is not None and report["skipped"]:
        console.print(f"{report['skipped']} of {report['total']} cells already finished in {out}")
    table = Table(title="is collapse optimal? (full problem N x N vs collapsed, certified)", box=box.SIMPLE,
                  padding=(0, 1))
    for col in ("profile", "R", "N", "tau", "n_w", "anchors", "collapsed - full (rel.)", "collapse gap (rel.)",
                "lifted dual eig", "min cos maj / min", "verdict"):
        table.add_column(col, justify="right")
    for r in rows:
        if r["verdict"] == "error":
            table.add_row(r["profile"], f"{r['ratio']:g}", str(r["N"]), f"{r['tau']:g}", f"{r['n_w']:g}",
                          "-", "-", "-", "-", "-", f"error: {r['error']}")
            continue
        table.add_row(r["profile"], f"{r['ratio']:g}", str(r["N"]), f"{r['tau']:g}", f"{r['n_w']:g}",
                      "-" if r["n_w"] == 0 else ("prototype" if r["prototype_anchors"] else "batch"),
                      f"{r['relative_difference']:+.1e}", f"{r['relative_collapse_gap']:.1e}",
                      f"{r['lifted_dual_min_eigenvalue']:+.1e}",
                      f"{r['min_cos_majority']:.6f} / {r['min_cos_minority']:.6f}", r["verdict"])
    console.print(table)
    if out is not None:
        console.print(f"cells: {out / 'collapse_map.json'}")
