"""``ufm sweep``, ``ufm solve-sweep`` and ``ufm gather``: resumable grids of simulations or convex solves, run
inline, as local processes or as a SLURM job array."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, List, Optional

import typer

from ufm.errors import FieldError
from rich.table import Table

from ._common import check_writable, console, default_out, print_json, progress_bar, user_errors
from ._config import typed_names, with_config_options
from ._executor import with_executor_options
from ufm import interrupt
from ufm.executors import ExecutorConfig
from ufm.sim_config import SimConfig
from ufm import engine
from ufm.grid import parse_grid
from ufm.spec import SolveConfig

_GRID_HELP = ("FIELD=V1,V2,... over any config field (repeat for a Cartesian product), e.g. --grid ratio=1,10,100 "
              "--grid k=5,10; values are parsed by the field's type")
_COLUMNS = {
    "simulate": (("n_w", "n_w", "g"), ("tau", "tau", "g"), ("seed", "seed", "d"),
                 ("distance", "distance to G_*", ".4f"),
                 ("angle_majority", "angle majority", ".1f"), ("angle_minority", "angle minority", ".1f")),
    "solve": (("n_w", "n_w", "g"), ("tau", "tau", "g"), ("objective", "objective", ".6g"), ("status", "status", "s"),
              ("distance", "distance to G_*", ".4f"), ("angle_majority", "angle majority", ".1f"),
              ("angle_minority", "angle minority", ".1f")),
    "map": (("n_w", "n_w", "g"), ("tau", "tau", "g"), ("distance", "distance to G_*", ".4f"), ("status", "status", "s"),
            ("relative_gap", "relative gap", ".1e"), ("distance_spread", "spread", ".1e")),
    "collapse": (("n_w", "n_w", "g"), ("tau", "tau", "g"), ("relative_collapse_gap", "collapse gap (rel.)", ".1e"),
                 ("verdict", "verdict", "s")),
    "train": (("run", "run", "s"), ("n_w", "n_w", "g"), ("tau", "tau", "g"), ("epochs", "epochs", "d"),
              ("distance", "distance to G_*", ".4f"), ("nc1", "NC1", ".3f"), ("train_ncc_accuracy", "train NCC", ".3f"),
              ("ncc_accuracy", "test NCC", ".3f"), ("linear_probe_accuracy", "probe", ".3f")),
}


def _cell(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return format(value, spec if spec != "s" else "g")
    return str(value)


def _grid(kind: str, config: Any, specs: Optional[List[str]], ratio: Optional[List[float]], ctx: Any) -> dict:
    """The grid from --grid and the --ratio shorthand; a grid field also set by its own option is refused, and so
    are a grid field and a typed option that have no effect at any point (identical points, an ignored option)."""
    cls = type(config)  # the kind's config class (its module, which computes, is imported to plan the points)
    grid = parse_grid(specs or [], cls)
    if ratio:
        if "ratio" in grid:
            raise ValueError("--ratio and --grid ratio=... both set the ratios; use one of them")
        grid = {"ratio": tuple(float(r) for r in ratio), **grid}
    given = typed_names(cls, ctx, skip=("ratio",))
    for name in grid:
        if name in given:
            raise FieldError(f"{name} is both an option ({{{name}}}) and a grid field; drop one of them")
    if not grid and kind == "simulate":
        if "ratio" in config.without_effect():
            raise FieldError(f"the default grid of ufm sweep is over the ratio, which has no effect "
                             f"{config.without_effect()['ratio']}; give the grid with --grid FIELD=V1,V2,...")
        # `ufm sweep` alone: the imbalance ratios R = 1, 10, 100 that leave each class a positive pair (n_major // R >= 2)
        grid = {"ratio": tuple(r for r in (1.0, 10.0, 100.0) if config.n_major // r >= 2)}
    engine.check_grid_effects(kind, config, grid, given)  # FieldErrors: user_errors writes typed fields as flags
    return grid


def _print_table(kind: str, report: dict, grid_fields: List[str]) -> None:
    rows = report["rows"]
    table = Table(title=f"{kind} sweep: {report['finished']} of {report['total']} points finished")
    columns = [(f, f, "g") for f in grid_fields if f not in ("n_w", "tau")] + list(_COLUMNS[kind])
    for _, title, _ in columns:
        table.add_column(title, justify="right")
    for r in rows:
        table.add_row(*(_cell(r.get(key), spec) for key, _, spec in columns))
    console.print(table)


def _run(kind: str, config: Any, grid_specs, ratio, out: Optional[Path], executor: ExecutorConfig,
         as_json: bool, ctx: Any) -> None:
    check_writable(out)
    grid = _grid(kind, config, grid_specs, ratio, ctx)
    prefix = "sweep" if kind == "simulate" else "solve-sweep"
    folder = out or default_out(prefix)
    start = time.perf_counter()
    with progress_bar(as_json) as bar:
        task = bar.add_task(f"{kind} sweep ({executor.executor})", total=None, status="")
        counts = {"done": 0, "failed": 0}

        def done(name: str, ok: bool) -> None:
            counts["done" if ok else "failed"] += 1
            bar.update(task, completed=counts["done"] + counts["failed"], status=f"{name} {'done' if ok else 'FAILED'}")

        with interrupt.noting(f"finished points are kept in {folder}",
                              f"re-run the same command to continue, or `ufm gather {folder}` for their table"):
            report = engine.run_grid(folder, kind, config, grid, executor, done=done)
    elapsed = time.perf_counter() - start
    if as_json:
        print_json({"run_folder": report["folder"], **{k: report[k] for k in ("rows", "finished", "total", "missing")},
                    "skipped": report["skipped"], "submitted": report.get("submitted"), "elapsed_s": elapsed})
        return
    if "submitted" in report:
        ids = sorted({str(j).split("_")[0] for j in report["submitted"].values()})
        console.print(f"submitted {len(report['submitted'])} points as SLURM job {', '.join(ids) or '-'} "
                      f"({report['skipped']} already finished); when they end: ufm gather {report['folder']}")
        return
    _print_table(kind, report, list(grid))
    console.print(f"{report['ran']} points run, {report['skipped']} already finished, {elapsed:.1f} s; "
                  f"sweep folder: {report['folder']}")


@user_errors
@with_config_options(SimConfig, skip=("ratio",), refuse_typed=False)
@with_executor_options
def sweep_command(
    ctx: typer.Context,
    config: SimConfig,
    executor: ExecutorConfig,
    grid: Optional[List[str]] = typer.Option(None, "--grid", help=_GRID_HELP),
    ratio: Optional[List[float]] = typer.Option(None, help="imbalance ratios R to sweep: short for --grid ratio=... "
                                                "(with no --grid at all: those of R = 1, 10, 100 that leave minority "
                                                "classes two samples at --n-major)"),
    out: Optional[Path] = typer.Option(None, help="sweep folder (default runs/sweep-<time>); re-run with the same "
                                       "--out to skip finished points"),
    as_json: bool = typer.Option(False, "--json", help="print the table as JSON on stdout"),
) -> None:
    """Resumable grid of simulations: one stacked `ufm simulate` per grid point (the --n-w / --tau / --seeds
    lists stacked inside each), one run folder per point under points/.

    Writes table.csv, table.json and distance_vs_nw.png (distance to G_* against n_w, one line per setting of
    the other grid fields) from the finished points; `ufm gather DIR` rebuilds them at any time.
    """
    _run("simulate", config, grid, ratio, out, executor, as_json, ctx)


@user_errors
@with_config_options(SolveConfig, skip=("ratio",), refuse_typed=False)
@with_executor_options
def solve_sweep_command(
    ctx: typer.Context,
    config: SolveConfig,
    executor: ExecutorConfig,
    grid: Optional[List[str]] = typer.Option(None, "--grid", help=_GRID_HELP),
    ratio: Optional[List[float]] = typer.Option(None, help="imbalance ratios R to sweep: short for --grid ratio=..."),
    out: Optional[Path] = typer.Option(None, help="sweep folder (default runs/solve-sweep-<time>)"),
    as_json: bool = typer.Option(False, "--json", help="print the table as JSON on stdout"),
) -> None:
    """Resumable grid of certified convex solves (`ufm solve`, collapsed features): one solve per point, e.g.
    --grid ratio=1,10,100 --grid n_w=0,10,100 --grid tau=0.1,1 for a map of the optimal geometry."""
    if not grid and not ratio:
        raise ValueError("give the grid: --grid FIELD=V1,V2,... (e.g. --grid n_w=0,10,100) or --ratio")
    _run("solve", config, grid, ratio, out, executor, as_json, ctx)


@user_errors
def gather_command(
    folder: Path = typer.Argument(..., help="a grid folder (of ufm sweep, solve-sweep, map or collapse-map)"),
    as_json: bool = typer.Option(False, "--json", help="print the table as JSON on stdout"),
) -> None:
    """Rebuild table.csv, table.json and the figures of a grid (sweep, solve-sweep, map, collapse-map) from whatever
    points have finished."""
    report = engine.gather(folder)
    if as_json:
        print_json({"run_folder": report["folder"], **{k: report[k] for k in ("rows", "finished", "total", "missing")}})
        return
    _print_table(report["kind"], report, report["fields"])
    if report["missing"]:
        from ufm.folders import KINDS, identify

        what, command, _ = KINDS.get(identify(report["folder"]) or "", ("a sweep folder", "the sweep", ""))
        console.print(f"{len(report['missing'])} points not finished yet (re-run the same {command} command to "
                      "run them)")
        console.print(f"{what}: {report['folder']}")
    else:
        console.print(f"folder: {report['folder']}")
