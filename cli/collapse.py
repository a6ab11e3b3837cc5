"""``ufm collapse-map``: where collapse stops being optimal, cell by cell, certified (see ufm.collapse)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer

from rich import box
from rich.table import Table

from ._common import check_writable, console, default_out, points_done, print_json, progress_bar, user_errors
from ._config import GRID_ANCHORS_HELP, anchors_values, with_config_options
from ._executor import with_executor_options
from ufm.collapse_config import CollapseMapConfig
from ufm.executors import ExecutorConfig

@user_errors(aliases={"max_memory_gb": "$UFM_MAX_MEMORY_GB", "full=False": "a collapse map always solves N x N"})
@with_config_options(CollapseMapConfig, skip=("prototype_anchors",))
@with_executor_options
def collapse_map_command(
    config: CollapseMapConfig,
    executor: ExecutorConfig,
    anchors: Optional[List[str]] = typer.Option(None, "--anchors", help=GRID_ANCHORS_HELP),
    out: Optional[Path] = typer.Option(None, help="map folder: one run folder per cell, collapse_map.json and "
                                       "table.csv; re-run the same command to continue a killed map (default: "
                                       "runs/collapse-map-<time>)"),
    overwrite: bool = typer.Option(False, help="replace a collapse map of other cells in --out (the same cells "
                                   "continue without it)"),
    as_json: bool = typer.Option(False, "--json", help="print the cells as JSON"),
) -> None:
    """Is class collapse optimal?  Per cell (profile, R, tau, n_w, anchors): the certified collapsed optimum,
    lifted to N samples and certified there, against the uncollapsed Burer-Monteiro optimum; verdict
    "collapse optimal" (certified within the gap), "not optimal" (certified) or "undecided"."""
    if overwrite and out is None:
        raise ValueError("--overwrite has no effect without --out (a new folder runs/collapse-map-<time> is written); "
                         "drop it")
    check_writable(out)
    cells = replace(config, prototype_anchors=anchors_values(anchors) or ()).cells()
    from ufm.collapse import run_collapse_map  # (torch, cvxpy: once the options are checked)

    folder = out or default_out("collapse-map")
    with progress_bar(as_json) as bar:
        done = points_done(bar, f"collapse map ({executor.executor})", len(cells))
        report = run_collapse_map(folder, cells, executor, done, overwrite=overwrite)
    _report(report, Path(report["folder"]), as_json)


def _report(report: dict, out: Path, as_json: bool) -> None:
    """The cells as JSON or a table (or the SLURM jobs submitted)."""
    rows = report["rows"]
    if "submitted" in report:
        if as_json:
            print_json({"folder": str(out), "submitted": report["submitted"], "skipped": report["skipped"]})
        else:
            console.print(f"submitted {len(report['submitted'])} cells to SLURM ({report['skipped']} already "
                          f"finished); when they end, run the same command again (or ufm gather {out}) for the table")
        return
    if as_json:
        print_json(rows)
        return
    if report["skipped"]:
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
    console.print(f"cells: {out / 'collapse_map.json'}")
