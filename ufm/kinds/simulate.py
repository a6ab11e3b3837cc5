"""The ``simulate`` kind: one stacked UFM simulation per point (:func:`ufm.simulate.simulate`, its n_w / tau / seeds
lists stacked inside); its run folder holds config.json, arrays.npz, metrics.jsonl, gram_heatmaps.png and
summary.json (last).  A set of them draws distance_vs_nw.png.  Also the in-memory grid :func:`sweep` of the figures."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ufm.engine import Kind, Point, check_grid_effects
from ufm.sim_config import SimConfig  # (ufm.simulate, torch, is imported where a point computes)

__all__ = ["KIND", "METRICS", "run", "work", "rows", "render_distance", "distance_series", "certified_series", "sweep"]

METRICS = ("distance", "nc1", "max_angle_error", "angle_majority", "angle_minority", "angle_across", "loss")
NC_METRICS = ("nc1_ref", "cdnv", "nc2", "nc3", "nc4")  # the field's (ufm.analysis.nc_report); none for k = 1


def run(cfg: SimConfig, folder: Path, progress: Callable | None = None, max_memory_gb: float | None = None) -> Any:
    """Simulate ``cfg`` and write its run folder (summary.json last); returns the :class:`ufm.simulate.SimResult`."""
    from ufm.plots import gram_heatmaps, save_figure
    from ufm.simulate import simulate

    result = simulate(cfg, progress=progress, max_memory_gb=max_memory_gb)
    result.save(folder, finish=False)
    runs = result.summary()["runs"]
    titles = ["target G_*"] + [f"n_w={r['n_w']:g}, tau={r['tau']:g}, seed {r['seed']}" for r in runs]
    save_figure(gram_heatmaps([result.g_star, *result.g_m], titles, f"G_M of each run, {cfg.loss}"),
                Path(folder) / "gram_heatmaps.png")
    result.finish(folder)
    return result


def work(cfg: SimConfig) -> float:
    """Multiply-adds per step of ``cfg``'s stacked runs (the thread rule's problem size, :mod:`ufm.threads`)."""
    from ufm.simulate import num_classes, num_samples
    from ufm.threads import loss_work

    k = num_classes(cfg)
    batch = {"full": num_samples(cfg), "binding": cfg.batch_size + k}.get(cfg.batching, cfg.batch_size)
    return loss_work(batch, k, cfg.d, len(cfg.runs))


def rows(point: Point, folder: Path, data: dict) -> list[dict]:
    """One row per stacked run; the last loss is ``final_loss`` (``loss`` is also a config field)."""
    return [{**point.values, **{k: r[k] for k in ("n_w", "tau", "seed")},
             **{("final_loss" if k == "loss" else k): r.get(k) for k in METRICS + NC_METRICS}, "point": point.name}
            for r in data["runs"]]


def _check(points: Sequence[Point], finished: dict | None = None) -> None:
    for p in points:  # the counts exist (torch-free: a refusal answers before the simulator is imported)
        p.config.check_counts()
    from ufm.simulate import build_problem

    for p in points:  # counts, G_*, prototypes and batches of every point before any runs
        build_problem(p.config)


def _label(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def distance_series(table: list[dict], by: str | Sequence[str]) -> dict[str, tuple[list[float], list[float]]]:
    """Distance to G_* against n_w, one series per setting of the ``by`` fields (mean over the other rows, e.g.
    seeds and stacked taus); rows without a distance (a failed solve) are left out."""
    return {label: (x, y) for label, (x, y, _) in _series(table, by).items()}


def certified_series(table: list[dict], by: str | Sequence[str]) -> dict[str, list[bool]]:
    """Per series of :func:`distance_series`, whether each point rests on certified solves only (a solve row's
    ``status`` is "optimal"; simulation rows have none and count as certified)."""
    return {label: ok for label, (_, _, ok) in _series(table, by).items()}


def _series(table: list[dict], by: str | Sequence[str]) -> dict[str, tuple[list[float], list[float], list[bool]]]:
    fields = [by] if isinstance(by, str) else list(by)
    table = [r for r in table if r.get("distance") is not None]
    series: dict[str, tuple[list[float], list[float], list[bool]]] = {}
    keys = sorted({tuple(r[f] for f in fields) for r in table}, key=lambda key: [(isinstance(v, str), v) for v in key])
    for key in keys:
        sub = [r for r in table if tuple(r[f] for f in fields) == key]
        n_ws = sorted({r["n_w"] for r in sub})
        means = [float(np.mean([r["distance"] for r in sub if r["n_w"] == w])) for w in n_ws]
        ok = [all(r.get("status", "optimal") == "optimal" for r in sub if r["n_w"] == w) for w in n_ws]
        label = ", ".join(f"{f} = {_label(v)}" for f, v in zip(fields, key)) or "distance"
        series[label] = (n_ws, means, ok)
    return series


def render_distance(folder: Path, table: list[dict], grid: list[str] | None, kind: str = "simulate") -> Path | None:
    """distance_vs_nw.png of a product grid: distance to G_* against n_w, one line per setting of the other fields."""
    if not grid or not any(r.get("distance") is not None for r in table):
        return None
    from ufm.plots import lines_vs_x, save_figure

    points = {r["point"] for r in table}
    title = f"{kind} sweep, {len(points)} points finished"
    by = [f for f in grid if f != "n_w"]
    certified = certified_series(table, by) if any("status" in r for r in table) else None  # solves: hollow if not
    return save_figure(lines_vs_x(distance_series(table, by), "n_w", "distance of G_M to G_*", title,
                                  certified=certified), Path(folder) / "distance_vs_nw.png")


def sweep(cfg: SimConfig, grid: dict[str, Sequence], progress: Callable[[int, int, dict], None] | None = None
          ) -> list[dict]:
    """Final metrics of every run for every combination of ``grid`` values, in memory (no folders): one row per run
    with the grid values, n_w, tau, seed and the last logged metrics (a grid field without effect is refused)."""
    from ufm.simulate import simulate

    check_grid_effects("simulate", cfg, grid)
    names = list(grid)
    out = []
    for values in itertools.product(*(grid[name] for name in names)):
        setting = dict(zip(names, values))
        result = simulate(replace(cfg, **setting), progress)
        for r in result.summary()["runs"]:
            out.append({**setting, **{key: r[key] for key in ("n_w", "tau", "seed", *METRICS)}})
    return out


def _run(cfg: SimConfig, folder: Path) -> None:
    run(cfg, folder)


KIND = Kind("simulate", SimConfig, "summary.json", _run, rows, render_distance, _check, work=work)
