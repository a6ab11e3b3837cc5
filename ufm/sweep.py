"""Grids of experiments, resumable: one run folder per grid point, a table gathered from the finished ones.

A sweep is a *kind* (``simulate``: one stacked :func:`ufm.simulate.simulate` per point, its n_w / tau / seeds
lists stacked inside; ``solve``: one certified :func:`ufm.solver.solve` per point; ``map``: one cell of a
distance map, :func:`ufm.maps.distance_cell`, per point), a base config and a grid
``{field: values}`` over any of the config's fields; the points are the Cartesian product.  The sweep folder::

    config.json            kind, base config, grid and the point names (a different sweep is refused)
    points/<name>/         one run folder per point; <name> = its grid values + a hash of its whole config
    logs/                  executor logs (local processes, SLURM jobs)
    table.csv, table.json  one row per run of every finished point (rebuilt by :func:`gather`)
    distance_vs_nw.png     distance to G_* against n_w, one line per setting of the other grid fields

A point is finished when its result file (``summary.json`` / ``solution.json`` / ``cell.json``, written last and atomically)
exists; re-running the same sweep skips finished points, so a killed sweep continues where it stopped.
"""

from __future__ import annotations

import itertools
import importlib
import json
import shutil
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ufm._config import differences
from ufm.grid import Point, _field_types, _fmt, _plain, config_hash, point_label  # noqa: F401  (re-exported)
from ufm.grid import parse_grid as _parse_grid
from ufm.grid import refuse_without_effect, without_effect_everywhere
from ufm.folders import KINDS as FOLDER_KINDS, describe, identify, mark, require
from ufm.runio import read_json, write_csv, write_json
from ufm.simulate import SimConfig, simulate
from ufm.spec import SolveConfig

__all__ = [
    "KINDS",
    "METRICS",
    "SolveConfig",
    "Point",
    "parse_grid",
    "plan",
    "check_grid_effects",
    "without_effect_at_every_point",
    "run_point",
    "Kind",
    "register_kind",
    "run_sweep",
    "run_points",
    "points_record",
    "gather",
    "sweep",
    "distance_series",
]

METRICS = ("distance", "nc1", "max_angle_error", "angle_majority", "angle_minority", "angle_across", "loss")
SOLVE_METRICS = ("objective", "status", "distance", "max_angle_error", "angle_majority", "angle_minority",
                 "angle_across", "solve_s")


@dataclass(frozen=True)
class Kind:
    """What the engine needs of a kind of point: its ``config`` class, the file its run writes last (``result``:
    the point is finished when it exists), ``run(config, folder)``, ``rows(point, folder, result) -> [row]`` and
    optionally ``render(folder, rows)`` (a figure of the gathered rows); ``folder_kind``: the
    :data:`ufm.folders.KINDS` entry of its grid folders (default ``sweep:<name>``); ``points_dir``: the subfolder
    holding the points' run folders (``""``: the grid folder itself, as for training runs).  A kind registers itself from its own
    module (:func:`register_kind`); the engine imports none of them (``module`` is recorded in each sweep's
    config.json so that ``gather`` in a fresh process can load it)."""

    config: type
    result: str
    run: Callable[[Any, Path], None]
    rows: Callable[[Any, Path, Any], list[dict]]
    render: Callable[[Path, list[dict]], Any] | None = None
    module: str = ""
    folder_kind: str = ""
    points_dir: str = "points"


KINDS: dict[str, Kind] = {}  # name -> Kind, filled by register_kind
_LEGACY_MODULES = {"map": "ufm.maps"}
GRID_FOLDERS = (*(k for k in FOLDER_KINDS if k.startswith("sweep:")), "collapse-map", "train-set")  # gather reads  # sweeps written before config.json recorded the kind's module


def register_kind(name: str, kind: Kind) -> None:
    """Make ``name`` a kind of sweep point (called at import by the kind's module)."""
    KINDS[name] = replace(kind, module=kind.module or kind.run.__module__,
                          folder_kind=kind.folder_kind or f"sweep:{name}")


def _kind(name: str, module: str | None = None) -> Kind:
    if name not in KINDS and module:
        importlib.import_module(module)  # the module recorded by the sweep registers its kind
    if name not in KINDS:
        raise ValueError(f"unknown sweep kind {name!r}; choose one of {', '.join(KINDS)}")
    return KINDS[name]


def _config_class(kind: str) -> type:
    return _kind(kind).config


def parse_grid(specs: Sequence[str], cls: type = SimConfig) -> dict[str, tuple]:
    """:func:`ufm.grid.parse_grid` with the simulator's config as the default."""
    return _parse_grid(specs, cls)


def plan(kind: str, base: Any, grid: dict[str, Sequence]) -> list[Point]:
    """The points of the grid, in product order; each config is validated here, before anything runs."""
    cls = _config_class(kind)
    if not isinstance(base, cls):
        raise ValueError(f"a {kind} sweep needs a {cls.__name__} base config, got {type(base).__name__}")
    names = list(grid)
    points = []
    for combo in itertools.product(*(grid[n] for n in names)):
        values = dict(zip(names, combo))
        config = replace(base, **values)
        _check_point(kind, config)
        label = ",".join(f"{n}={_fmt(v)}" for n, v in values.items()) or "point"
        points.append(Point(f"{label}-{config_hash(kind, config)}", {n: _plain(v) for n, v in values.items()}, config))
    return points


def without_effect_at_every_point(points: Sequence[Point], names: Sequence[str]) -> dict[str, str]:
    """:func:`ufm.grid.without_effect_everywhere` over the points' configs."""
    return without_effect_everywhere([p.config for p in points], names)


def check_grid_effects(kind: str, base: Any, grid: dict[str, Sequence], given: Sequence[str] = (),
                       points: list[Point] | None = None) -> list[Point]:
    """Refuse, before anything runs, a grid field without effect at every point (its values would run identical
    points) and a field in ``given`` (set by the user, e.g. typed options) without effect at every point (silently
    ignored).  Returns the points (:func:`plan`)."""
    points = plan(kind, base, grid) if points is None else points
    refuse_without_effect([p.config for p in points], grid, given)
    return points


# --------------------------------------------------------------------------------------------- one point


def _solve_problem(cfg: SolveConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(class counts ``[k]``, batch compositions ``[B, k]``, G_* ``[k, k]``) of one SolveConfig."""
    n = cfg.class_counts()
    return n, cfg.compositions(n), cfg.g_star(n)


def _check_point(kind: str, cfg: Any) -> None:
    """Build the point's problem (counts, G_*, prototypes) so that bad settings fail before anything is submitted."""
    if kind == "simulate":
        from ufm.simulate import build_problem

        build_problem(cfg)
    elif kind == "map":
        cfg.check()
    else:
        _solve_problem(cfg)


def run_point(kind: str, config: dict, folder: str, module: str | None = None) -> str:
    """Run one point (a task: module-level, picklable) and write its run folder; returns the folder.  ``module``:
    where the kind registers (imported first in a fresh worker process)."""
    k = _kind(kind, module)
    k.run(k.config.from_dict(config), Path(folder))
    return str(folder)


def _run_simulate_point(cfg: SimConfig, folder: Path) -> None:
    simulate(cfg).save(folder)  # summary.json is written last


def _run_solve_point(cfg: SolveConfig, folder: Path) -> None:
    from ufm.runio import write_npz

    from ufm.optimum import solve_config

    summary, arrays, _ = solve_config(cfg)
    write_json(folder / "config.json", cfg.to_dict())
    write_npz(folder / "arrays.npz", **arrays)
    write_json(folder / "solution.json", summary)


def _point_status(kind: str, point: Point, folder: Path) -> bool:
    """Whether the point's folder holds its finished result; refuses a folder made by another config, naming the
    fields that differ."""
    config_file = folder / "config.json"
    if config_file.is_file():
        try:
            differ = differences(read_json(config_file), point.config)
        except ValueError as err:
            differ = [str(err)]
        if differ:
            raise ValueError(f"{folder} holds a different config than its grid point ({'; '.join(differ)}); remove "
                             "that folder or use another --out")
    return (folder / _kind(kind).result).is_file()


def _point_rows(kind: str, point: Point, folder: Path) -> list[dict]:
    k = _kind(kind)
    return k.rows(point, folder, read_json(folder / k.result))


def _simulate_rows(point: Point, folder: Path, data: dict) -> list[dict]:
    # the last loss is "final_loss": "loss" is also a config field (and so maybe a grid column)
    return [{**point.values, **{k: run[k] for k in ("n_w", "tau", "seed")},
             **{("final_loss" if k == "loss" else k): run.get(k) for k in METRICS}, "point": point.name}
            for run in data["runs"]]


def _solve_rows(point: Point, folder: Path, data: dict) -> list[dict]:
    cfg = point.config
    return [{**point.values, "n_w": cfg.n_w, "tau": cfg.tau, **{k: data.get(k) for k in SOLVE_METRICS},
             "point": point.name}]


register_kind("simulate", Kind(SimConfig, "summary.json", _run_simulate_point, _simulate_rows))
register_kind("solve", Kind(SolveConfig, "solution.json", _run_solve_point, _solve_rows))


# ------------------------------------------------------------------------------------------------ sweeps


def _sweep_record(kind: str, base: Any, grid: dict[str, Sequence], points: list[Point]) -> dict:
    return {"base": base.to_dict(), "grid": {k: [_plain(v) for v in vs] for k, vs in grid.items()}}


def run_sweep(
    folder: str | Path,
    kind: str,
    base: Any,
    grid: dict[str, Sequence],
    executor: Any = None,
    done: Callable[[str, bool], None] | None = None,
) -> dict:
    """Run the unfinished points of the sweep in ``folder`` with ``executor`` (an
    :class:`ufm.executors.ExecutorConfig`; default inline), then :func:`gather` the table.  A grid field without
    effect at every point is refused first (:func:`check_grid_effects`).  See :func:`run_points`."""
    points = check_grid_effects(kind, base, grid)
    return run_points(folder, kind, points, executor, done, record=_sweep_record(kind, base, grid, points))


def points_record(kind: str, points: Sequence[Point], record: dict | None = None) -> dict:
    """What config.json of a grid folder holds: the kind, its module, the point names and either the base config
    and grid (a product grid) or every point's values and config (a list of points)."""
    if record is None:
        record = {"values": [p.values for p in points], "configs": [p.config.to_dict() for p in points]}
    return json.loads(json.dumps({"kind": kind, "module": _kind(kind).module, **record,
                                  "points": [p.name for p in points]}))


def _same_grid(old: dict, new: dict) -> bool:
    """Whether two config.json records describe the same grid (the module and the point names follow from it)."""
    keys = (set(old) | set(new)) - {"module", "points"}
    return all(old.get(k) == new.get(k) for k in keys)


def run_points(
    folder: str | Path,
    kind: str,
    points: Sequence[Point],
    executor: Any = None,
    done: Callable[[str, bool], None] | None = None,
    record: dict | None = None,
    overwrite: bool | None = None,
) -> dict:
    """The grid engine: run the unfinished ``points`` of ``kind`` in ``folder`` (one run folder per point under
    ``points/``) with ``executor`` (an :class:`ufm.executors.ExecutorConfig`; default inline), then
    :func:`gather` the table.  Re-running the same grid skips finished points (a killed grid continues where it
    stopped); a folder holding another grid, or another kind of folder, is refused, unless ``overwrite`` and the
    folder is a grid of the same kind (its old content is removed first; None: the command has no --overwrite).

    Returns gather's dict plus ``skipped`` (points already finished) and ``ran`` (points run now), or, for
    SLURM without waiting, ``submitted`` {point: job id}.  A failed point does not stop the others; after the
    table is written, :class:`ufm.executors.TasksFailed` (a ValueError) names the failures.
    """
    from ufm.executors import ExecutorConfig, FunctionTask, run_tasks
    from ufm.runio import check_out_dir

    executor = executor or ExecutorConfig()
    folder = check_out_dir(Path(folder), "--out", run_folder=False).resolve()  # not a file, writable
    k = _kind(kind)
    record = points_record(kind, points, record)
    found = identify(folder) if folder.is_dir() else None
    holds = folder.is_dir() and any(folder.iterdir())
    if holds and found != k.folder_kind:
        raise ValueError(f"{folder} is {describe(folder)}, not a sweep of {kind} points; use another --out")
    if holds and not ((folder / "config.json").is_file() and _same_grid(read_json(folder / "config.json"), record)):
        if not overwrite:
            raise ValueError(f"{folder} holds a different sweep of {kind} points (see its config.json); re-run it with "
                             "the same grid and options, or use another --out"
                             + (" (or pass --overwrite to replace it)" if overwrite is False else ""))
        for child in folder.iterdir():  # the same kind of folder, replaced as asked
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    write_json(folder / "config.json", record)
    mark(folder, k.folder_kind)
    todo = [p for p in points if not _point_status(kind, p, folder / k.points_dir / p.name)]
    tasks = [FunctionTask(name=p.name, fn=run_point, args=(kind, p.config.to_dict(), str(folder / k.points_dir / p.name),
                                                          k.module))
             for p in todo]
    skipped = len(points) - len(todo)
    try:
        out = run_tasks(tasks, executor, folder / "logs", name=f"ufm-{kind}-grid", done=done)
    except (ValueError, KeyboardInterrupt):
        gather(folder)  # the table of what did finish
        raise
    if executor.executor == "slurm" and not executor.wait:
        write_json(folder / "jobs.json", out)
        return {**gather(folder), "skipped": skipped, "ran": 0, "submitted": out}
    return {**gather(folder), "skipped": skipped, "ran": len(todo)}


def _load_record(folder: Path) -> tuple[str, Any, dict, list[Point]]:
    if not folder.exists():
        raise FileNotFoundError(f"{folder} does not exist; give the folder of a sweep (ufm sweep, solve-sweep, map "
                                "or collapse-map --out)")
    require(folder, GRID_FOLDERS, "ufm gather")
    record = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    if "kind" not in record:  # a collapse map written before collapse maps resumed: collapse_map.json only
        raise ValueError(f"{folder} was written by an older ufm that kept no grid record; re-run its command with "
                         "another --out to get a folder ufm gather reads")
    kind = record["kind"]
    cls = _kind(kind, record.get("module") or _LEGACY_MODULES.get(kind)).config
    if "configs" in record:  # a list of points (e.g. a collapse map), not a product grid
        points = [Point(name, values, cls.from_dict(config))
                  for name, values, config in zip(record["points"], record["values"], record["configs"])]
        return kind, None, {}, points
    base = cls.from_dict(record["base"])
    hints = _field_types(cls)
    grid = {k: tuple((v,) if typing.get_origin(hints[k]) is tuple else v for v in vs)
            for k, vs in record["grid"].items()}
    return kind, base, grid, plan(kind, base, grid)


def gather(folder: str | Path) -> dict:
    """Rebuild ``table.json``, ``table.csv`` and the plot of the sweep in ``folder`` from its finished points.

    Returns ``{"kind", "folder", "rows", "finished", "total", "missing", "fields"}`` (missing: unfinished point
    names; fields: the grid fields, or the fields that name each point of a list).
    """
    folder = Path(folder).resolve()
    kind, base, grid, points = _load_record(folder)
    rows, missing = [], []
    for p in points:
        pf = folder / _kind(kind).points_dir / p.name
        if _point_status(kind, p, pf):
            rows.extend(_point_rows(kind, p, pf))
        else:
            missing.append(p.name)
    write_json(folder / "table.json", rows)
    fields = list(grid or (points[0].values if points else {}))
    header = [*dict.fromkeys([*fields, "n_w", "tau", "point"])]
    write_csv(folder / "table.csv", rows, None if rows else header)
    if grid and any(r.get("distance") is not None for r in rows):  # a product grid: one line per other field
        from ufm.plots import lines_vs_x, save_figure

        by = [name for name in grid if name != "n_w"]
        title = f"{kind} sweep, {len(points) - len(missing)} of {len(points)} points"
        save_figure(lines_vs_x(distance_series(rows, by), "n_w", "distance of G_M to G_*", title),
                    folder / "distance_vs_nw.png")
    if rows and _kind(kind).render is not None:
        _kind(kind).render(folder, rows)  # e.g. a map's heatmaps, map.png
    return {"kind": kind, "folder": str(folder), "rows": rows, "finished": len(points) - len(missing),
            "total": len(points), "missing": missing, "fields": fields}


# --------------------------------------------------------------------------------- in memory (figures)


def sweep(
    cfg: SimConfig,
    grid: dict[str, Sequence],
    progress: Callable[[int, int, dict], None] | None = None,
) -> list[dict]:
    """Final metrics of every run for every combination of ``grid`` values (config field -> values), in
    memory (no folders): one row per run with the grid values, n_w, tau, seed and the last logged metrics.
    A grid field without effect at every point is refused (:func:`check_grid_effects`)."""
    check_grid_effects("simulate", cfg, grid)
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[name] for name in names)):
        setting = dict(zip(names, values))
        result = simulate(replace(cfg, **setting), progress)
        for run in result.summary()["runs"]:
            rows.append({**setting, **{key: run[key] for key in ("n_w", "tau", "seed", *METRICS)}})
    return rows


def _label(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def distance_series(rows: list[dict], by: str | Sequence[str]) -> dict[str, tuple[list[float], list[float]]]:
    """Distance to G_* against n_w, one series per setting of the ``by`` fields (mean over the other rows,
    e.g. seeds and stacked taus); rows without a distance (a failed solve) are left out."""
    fields = [by] if isinstance(by, str) else list(by)
    rows = [r for r in rows if r.get("distance") is not None]
    series: dict[str, tuple[list[float], list[float]]] = {}
    keys = sorted({tuple(r[f] for f in fields) for r in rows}, key=lambda key: [(isinstance(v, str), v) for v in key])
    for key in keys:
        sub = [r for r in rows if tuple(r[f] for f in fields) == key]
        n_ws = sorted({r["n_w"] for r in sub})
        means = [float(np.mean([r["distance"] for r in sub if r["n_w"] == w])) for w in n_ws]
        label = ", ".join(f"{f} = {_label(v)}" for f, v in zip(fields, key)) or "distance"
        series[label] = (n_ws, means)
    return series
