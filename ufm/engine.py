"""The one life-cycle of every experiment: a set of points of one kind, run in one folder, continued when re-run.

A *kind* (:class:`Kind`, one per module under ``ufm/kinds/``, listed in the registry :mod:`ufm.registry`) says what
the engine needs: its config class, the file its run writes last (the point is finished when it exists), how a point
runs and writes its folder, its checks before anything runs, its state on disk, its table rows and the set's figure.
The engine imports no kind module by name: it finds them through the registry, so that a fresh worker process (local
executor, SLURM) runs any kind.

A set folder::

    kind.json              the folder's kind (the marker, written here only: :func:`ufm.folders.mark`)
    config.json            the record: kind, base config and grid (a product) or every point's values and config
    points/<name>/         one run folder per point (training sets: <name>/ directly)
    logs/                  executor logs (local processes, SLURM jobs)
    table.csv, table.json  one row per run of every finished point (:func:`gather`), and the kind's figure

The life-cycle of :func:`run_set`: every point is planned and checked (identical points, no effect at any point, the
kind's own checks against data and memory) before anything is written; a folder holding another set is refused,
naming the fields that differ; each point's state on disk is read (done, resume, fresh; a point folder of another
configuration is refused naming the fields); the points left run with an executor (:mod:`ufm.executors`: inline,
local processes, a SLURM array); the table is gathered, also when the run is interrupted or some points fail.
A folder this run created and in which no point ran is removed again on failure (no leftovers of a refused
submission).  :func:`run` is the library entry point (configs or a grid, an output folder, an executor).
"""

from __future__ import annotations

import importlib
import itertools
import shutil
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ufm._config import differences
from ufm.errors import FieldError, literal
from ufm.folders import mark, require
from ufm.grid import Point, _field_types, _fmt, _plain, config_hash, refuse_without_effect
from ufm import interrupt, records
from ufm.registry import KINDS as REGISTRY
from ufm.runio import check_out_dir, read_json, write_csv, write_json

__all__ = ["Kind", "Point", "kind", "kind_of", "plan", "points", "check_grid_effects", "refuse_identical", "point_state",
           "run_point",
           "run_set", "run_grid", "gather", "run", "SET_FOLDERS"]

SET_FOLDERS = tuple(e.set_folder.key for e in REGISTRY.values())  # what ufm gather reads
STATES = ("new", "resume", "restart", "done")


@dataclass(frozen=True)
class Kind:
    """A kind of experiment, as the engine runs it.

    ``config``: its config class (``to_dict``/``from_dict``/``without_effect``); ``result``: the file its run writes
    last; ``run(config, folder)``: run one point and write its folder; ``rows(point, folder, result) -> [row]``: its
    table rows; ``render(folder, rows, grid)``: the set's figure (optional); ``check(points, finished)``: refuse, before
    anything runs or is written, what cannot run (data, memory; ``finished`` {name: folder} of the set's finished
    points, for what the whole set needs, e.g. one figure; optional); ``state(config, folder)``: one of
    ``new``, ``resume``, ``restart``, ``done`` for a point folder that may exist (default: by its config.json and
    result file; a folder of another configuration is refused); ``task(point, folder, state, **options)``: the
    executor task of a point (default: :func:`run_point` by name; ``options``: what the caller passes through
    :func:`run_set`, e.g. a progress callback inline); ``points_dir``: the subfolder of the point folders ("" for none);
    ``ignore``: config fields that may differ between a point folder and its point (where it runs); ``noun``: what its
    points are called in messages (points, cells, runs); ``work(config)``: multiply-adds per step of a point, which
    caps its threads (:func:`ufm.threads.size_cap`; optional, None: no cap)."""

    name: str
    config: type
    result: str
    run: Callable[[Any, Path], None]
    rows: Callable[[Point, Path, dict], list[dict]]
    render: Callable[[Path, list[dict], list[str] | None], Any] | None = None
    check: Callable[[Sequence[Point], dict[str, Path]], None] | None = None
    state: Callable[[Any, Path], str] | None = None
    task: Callable[..., Any] | None = None  # (point, folder, state, **options) -> an executor task
    points_dir: str = "points"
    ignore: tuple[str, ...] = ()
    noun: str = "points"
    work: Callable[[Any], float | None] | None = None

    def work_of(self, config: Any) -> float | None:
        """Multiply-adds per step of ``config`` (None: unknown)."""
        return None if self.work is None else self.work(config)

    @property
    def set_folder(self) -> str:
        """The folder kind (marker key) of this kind's sets."""
        return REGISTRY[self.name].set_folder.key


def kind(name: str) -> Kind:
    """The registered kind ``name`` (its module imported on first use)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown kind of experiment {name!r}; one of {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name].module).KIND


def kind_of(config: Any) -> Kind:
    """The kind whose config class ``config`` is an instance of."""
    for name in REGISTRY:
        k = kind(name)
        if type(config) is k.config:
            return k
    raise ValueError(f"{type(config).__name__} is the config of no kind of experiment; give a config of "
                     f"{', '.join(kind(n).config.__name__ for n in REGISTRY)}")


# ------------------------------------------------------------------------------------------------ planning


def plan(name: str, base: Any, grid: Mapping[str, Sequence], check: bool = True) -> list[Point]:
    """The points of the product grid over ``base``, in product order; each config is validated when built and,
    with ``check``, by the kind's checks (its problem: counts, G_*, sizes) before anything runs."""
    k = kind(name)
    if not isinstance(base, k.config):
        raise ValueError(f"a {name} grid needs a {k.config.__name__} base config, got {type(base).__name__}")
    fields = list(grid)
    out = []
    for combo in itertools.product(*(grid[f] for f in fields)):
        values = dict(zip(fields, combo))
        config = replace(base, **values)
        label = ",".join(f"{f}={_fmt(v)}" for f, v in values.items()) or "point"
        out.append(Point(f"{label}-{config_hash(name, config)}", {f: _plain(v) for f, v in values.items()}, config))
    if check and k.check is not None:
        k.check(out, {})
    return out


def points(name: str, configs: Mapping[str, Any] | Sequence[Any], values: Mapping[str, dict] | None = None
           ) -> list[Point]:
    """Points of a list of configs: ``{name: config}`` keeps the names; a plain list is named by the fields that
    differ between its configs and a hash (``values``: the fields that name each point, for its table row)."""
    if isinstance(configs, Mapping):
        return [Point(n, dict((values or {}).get(n, {})), c) for n, c in configs.items()]
    configs = list(configs)
    dicts = [c.to_dict() for c in configs]
    varying = [f for f in (dicts[0] if dicts else {}) if len({repr(d[f]) for d in dicts}) > 1]
    out = []
    for cfg, d in zip(configs, dicts):
        vals = {f: d[f] for f in varying}
        label = ",".join(f"{f}={_fmt(v)}" for f, v in vals.items()) or "point"
        out.append(Point(f"{label}-{config_hash(name, cfg)}", vals, cfg))
    return out


def check_grid_effects(name: str, base: Any, grid: Mapping[str, Sequence], given: Sequence[str] = (),
                       planned: list[Point] | None = None) -> list[Point]:
    """Refuse, before anything runs, a grid field without effect at every point (its values would run identical
    points) and a field in ``given`` (set by the user) without effect at every point; then, unless ``planned`` points
    are given (checked already), the points' problems by the kind's checks, which compute (torch): a grid refused for
    its fields answers without them.  Returns the points."""
    checked = planned is not None
    planned = plan(name, base, grid, check=False) if planned is None else planned
    refuse_without_effect([p.config for p in planned], grid, given)
    k = kind(name)
    if not checked and k.check is not None:
        k.check(planned, {})
    return planned


def refuse_identical(planned: Sequence[Point]) -> None:
    """Two points of one set whose configurations agree in every field that has an effect would run the same
    experiment under two names: refused (where it runs counts: other data or another device is another run)."""
    seen: dict[str, str] = {}
    for p in planned:
        idle = set(p.config.without_effect() if hasattr(p.config, "without_effect") else ())
        key = repr(sorted((f, v) for f, v in p.config.to_dict().items() if f not in idle))  # what the run computes
        if key in seen:
            raise ValueError(f"{seen[key]} and {p.name} would run the same configuration under two names (an option "
                             "or grid value overrides what tells them apart); drop that option or value")
        seen[key] = p.name


# ------------------------------------------------------------------------------------------- one point


def point_state(k: Kind, config: Any, folder: Path) -> str:
    """``new``, ``resume``, ``restart`` or ``done`` for running ``config`` in ``folder`` (the kind's own rule, else:
    done when its result file exists); a folder holding another configuration is refused naming the fields."""
    if k.state is not None:
        return k.state(config, folder)
    config_file = folder / "config.json"
    if config_file.is_file():
        try:
            differ = differences(read_json(config_file), config, k.ignore, template=True)
        except ValueError as err:
            differ = [literal(err)]
        if differ:
            raise FieldError(f"{literal(folder)} holds a run of another configuration ({'; '.join(differ)}); remove "
                             "that folder or choose another --out")
    return "done" if (folder / k.result).is_file() else "new"


def run_point(name: str, config: dict, folder: str) -> str:
    """Run one point of kind ``name`` (a task: module-level, picklable by name) and write its folder."""
    k = kind(name)
    k.run(k.config.from_dict(config), Path(folder))
    return str(folder)


def _ran(folder: Path) -> bool:
    """Whether a point folder holds anything a run wrote (more than the engine's marker)."""
    return folder.is_dir() and any(p.name != "kind.json" for p in folder.iterdir())


def _mark_point(name: str, folder: Path) -> None:
    """A point folder is a run folder of its kind: marked before it runs (the marker is the engine's to write)."""
    folder.mkdir(parents=True, exist_ok=True)
    if REGISTRY[name].run_folder is not None:
        mark(folder, REGISTRY[name].run_folder.key)


def portable(options: dict | None, executor: Any) -> dict:
    """The task options that can travel with ``executor``: a callback (e.g. a progress bar) only runs inline."""
    options = options or {}
    return options if executor.executor == "inline" else {o: v for o, v in options.items() if not callable(v)}


def _task(k: Kind, p: Point, folder: Path, state: str, options: dict) -> Any:
    if k.task is not None:
        return k.task(p, folder, state, **options)
    from ufm.executors import FunctionTask

    return FunctionTask(name=p.name, run_dir=None, fn=run_point, args=(k.name, p.config.to_dict(), str(folder)),
                        work=k.work_of(p.config))


# -------------------------------------------------------------------------------------------------- sets


def run_set(
    folder: str | Path,
    name: str,
    planned: Sequence[Point],
    executor: Any = None,
    done: Callable[[str, bool], None] | None = None,
    record: dict | None = None,
    overwrite: bool | None = None,
    extend: bool = False,
    options: dict | None = None,
) -> dict:
    """Run the unfinished ``planned`` points of kind ``name`` in the set folder ``folder`` (see the module docstring)
    with ``executor`` (an :class:`ufm.executors.ExecutorConfig`; default inline), then :func:`gather` the table.

    ``record``: the set's record (default: the list of points); ``overwrite``: replace a set of other settings of the
    same kind (None: the command has no --overwrite); ``extend``: keep the points the folder lists already (a list set
    that grows).  Returns gather's dict plus ``skipped`` (points already finished), ``ran`` (points run now) and
    ``states`` ({point: state before this run}), or for SLURM without waiting ``submitted`` {point: job id}.  A failed
    point does not stop the others; :class:`ufm.executors.TasksFailed` (a ValueError) names the failures after the
    table is written.  KeyboardInterrupt: the table of what finished is written, then it propagates."""
    from ufm.executors import ExecutorConfig, run_tasks

    k = kind(name)
    executor = executor or ExecutorConfig()
    folder = check_out_dir(Path(folder), "--out", run_folder=False).resolve()  # not a file, writable
    planned = list(planned)
    if record is None:  # a list of points; a product grid may repeat a point where a field has no effect (a map's
        refuse_identical(planned)  # n_w = 0 column in both anchor panels): its fields were checked by run_grid
    record = records.record(k.name, planned, record)
    records.claim(folder, k, record, overwrite, extend)
    if extend:
        record = records.merged(folder, k.points_dir, record)
    states = {p.name: point_state(k, p.config, folder / k.points_dir / p.name) for p in planned}
    todo = [p for p in planned if states[p.name] != "done"]
    if k.check is not None and todo:  # before anything is written
        k.check(todo, {p.name: folder / k.points_dir / p.name for p in planned if states[p.name] == "done"})
    created = not folder.exists() or not any(folder.iterdir())
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", record)
    mark(folder, k.set_folder)
    for p in todo:
        if states[p.name] == "restart":  # stopped before its first checkpoint: nothing to keep
            shutil.rmtree(folder / k.points_dir / p.name)
        _mark_point(name, folder / k.points_dir / p.name)
    options = portable(options, executor)
    tasks = [_task(k, p, folder / k.points_dir / p.name, states[p.name], options) for p in todo]
    try:
        resumes = ", started ones resume from their checkpoints" if k.state is not None else ""
        with interrupt.noting(f"finished {k.noun} are kept in {folder}",
                              f"re-run the same command to continue (finished {k.noun} are kept{resumes})"):
            out = run_tasks(tasks, executor, folder / "logs", name=f"ufm-{name}", done=done, unit=k.noun)
    except BaseException:
        if created and not any(_ran(folder / k.points_dir / p.name) for p in planned):
            shutil.rmtree(folder, ignore_errors=True)  # nothing ran: no leftovers (e.g. a refused submission)
        elif folder.is_dir():
            gather(folder)  # the table of what did finish
        raise
    report = {**gather(folder), "skipped": len(planned) - len(todo), "ran": len(todo), "states": states}
    if executor.executor == "slurm" and not executor.wait:
        write_json(folder / "jobs.json", out)
        return {**report, "ran": 0, "submitted": out}
    return report


def run_grid(folder: str | Path, name: str, base: Any, grid: Mapping[str, Sequence], executor: Any = None,
             done: Callable[[str, bool], None] | None = None, given: Sequence[str] = (),
             overwrite: bool | None = None) -> dict:
    """:func:`run_set` over the product grid ``{field: values}`` on ``base``, after refusing a grid field or a
    ``given`` field (set by the user) without effect at every point."""
    planned = check_grid_effects(name, base, grid, given)
    record = {"base": base.to_dict(), "grid": {f: [_plain(v) for v in vs] for f, vs in grid.items()}}
    return run_set(folder, name, planned, executor, done, record, overwrite)


# ------------------------------------------------------------------------------------------------ gather


def _load_record(folder: Path) -> tuple[Kind, dict | None, list[Point]]:
    if not folder.exists():
        raise FileNotFoundError(f"{folder} does not exist; give the folder of a set of runs (ufm sweep, solve-sweep, "
                                "map, collapse-map --out, or a training preset, grid or study)")
    require(folder, SET_FOLDERS, "ufm gather")
    saved = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    if "kind" not in saved:  # a collapse map written before collapse maps resumed: collapse_map.json only
        raise ValueError(f"{folder} was written by an older ufm that kept no record of its points; re-run its command "
                         "with another --out to get a folder ufm gather reads")
    k = kind(saved["kind"])
    if "configs" in saved:  # a list of points (e.g. a collapse map, a training set)
        return k, None, [Point(n, v, k.config.from_dict(c))
                         for n, v, c in zip(saved["points"], saved["values"], saved["configs"])]
    base = k.config.from_dict(saved["base"])
    hints = _field_types(k.config)
    grid = {f: tuple((v,) if typing.get_origin(hints[f]) is tuple else v for v in vs) for f, vs in saved["grid"].items()}
    return k, grid, plan(k.name, base, grid, check=False)


def gather(folder: str | Path) -> dict:
    """Rebuild ``table.json``, ``table.csv`` and the kind's figure of the set in ``folder`` from its finished points.

    Returns ``{"kind", "folder", "rows", "finished", "total", "missing", "fields"}`` (missing: unfinished point
    names; fields: the grid fields, or the fields that name each point of a list)."""
    folder = Path(folder).resolve()
    k, grid, planned = _load_record(folder)
    rows, missing = [], []
    for p in planned:
        pf = folder / k.points_dir / p.name
        if point_state(k, p.config, pf) == "done":
            rows.extend(k.rows(p, pf, read_json(pf / k.result)))
        else:
            missing.append(p.name)
    write_json(folder / "table.json", rows)
    fields = list(grid if grid is not None else (planned[0].values if planned else {}))
    header = [*dict.fromkeys([*fields, "n_w", "tau", "point"])]
    write_csv(folder / "table.csv", rows, None if rows else header)
    if rows and k.render is not None:
        k.render(folder, rows, list(grid) if grid is not None else None)
    return {"kind": k.name, "folder": str(folder), "rows": rows, "finished": len(planned) - len(missing),
            "total": len(planned), "missing": missing, "fields": fields}


# ----------------------------------------------------------------------------------------------- library


def run(configs: Any, out: str | Path, *, grid: Mapping[str, Sequence] | None = None, executor: Any = None,
        overwrite: bool = False, done: Callable[[str, bool], None] | None = None) -> dict:
    """Run experiments from Python, as the commands do: the same checks, folders, resume and table.

    ``configs``: one config (a :class:`ufm.simulate.SimConfig`, :class:`ufm.spec.SolveConfig`,
    :class:`ufm.maps.MapCell`, :class:`ufm.collapse.CollapseCell` or :class:`ufm.deep.config.TrainConfig`), with
    ``grid`` ({field: values}) for the product grid over it; or a list of configs of one kind, or a dict
    {name: config}.  ``out``: the set folder (one run folder per point inside); calling again with the same
    arguments continues an interrupted set (finished points are kept, started training runs resume).
    ``executor``: an :class:`ufm.executors.ExecutorConfig` (inline by default; local processes; a SLURM array).
    Returns the table: ``rows`` (one per run), ``finished``, ``total``, ``missing``, ``skipped``, ``ran``."""
    many = isinstance(configs, (list, tuple, Mapping))
    values = list(configs.values()) if isinstance(configs, Mapping) else list(configs) if many else [configs]
    if not values:
        raise ValueError("no configs given; give one config (with or without a grid), a list or a dict of configs")
    k = kind_of(values[0])
    if any(type(c) is not k.config for c in values):
        raise ValueError(f"a set holds configs of one kind; got {sorted({type(c).__name__ for c in values})}")
    if grid is not None:
        if many:
            raise ValueError("a grid spans one base config; give one config with grid=, or a list of configs")
        return run_grid(out, k.name, values[0], dict(grid), executor, done, overwrite=overwrite)
    return run_set(out, k.name, points(k.name, configs if isinstance(configs, Mapping) else values), executor, done,
                   overwrite=overwrite)
