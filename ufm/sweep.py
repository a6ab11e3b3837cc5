"""Grids of simulations: one stacked :func:`ufm.simulate.simulate` call per combination of the
non-stackable settings (e.g. the imbalance ratio R), the stackable ones (n_w, tau, seeds) inside it."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from ufm.runio import atomic_path, write_json
from ufm.simulate import SimConfig, simulate

__all__ = ["sweep", "save_sweep", "distance_series"]

METRICS = ("distance", "nc1", "max_angle_error", "angle_majority", "angle_minority", "angle_across", "loss")


def sweep(
    cfg: SimConfig,
    grid: dict[str, Sequence],
    progress: Callable[[int, int, dict], None] | None = None,
) -> list[dict]:
    """Final metrics of every run for every combination of ``grid`` values (config field -> values).

    Returns one row per run: the grid values, n_w, tau, seed and the metrics of the last logged epoch.
    """
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[name] for name in names)):
        setting = dict(zip(names, values))
        result = simulate(replace(cfg, **setting), progress)
        for run in result.summary()["runs"]:
            rows.append({**setting, **{key: run[key] for key in ("n_w", "tau", "seed", *METRICS)}})
    return rows


def distance_series(rows: list[dict], by: str) -> dict[str, tuple[list[float], list[float]]]:
    """Distance to G_* against n_w, one series per value of ``by`` (mean over seeds and taus)."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for key in sorted({r[by] for r in rows}):
        sub = [r for r in rows if r[by] == key]
        n_ws = sorted({r["n_w"] for r in sub})
        means = [sum(r["distance"] for r in sub if r["n_w"] == w) / sum(1 for r in sub if r["n_w"] == w) for w in n_ws]
        series[f"{by} = {key:g}"] = (n_ws, means)
    return series


def save_sweep(folder: str | Path, cfg: SimConfig, grid: dict[str, Sequence], rows: list[dict]) -> Path:
    """Write ``config.json`` (base config and grid), ``table.json`` and ``table.csv`` into ``folder``."""
    folder = Path(folder)
    write_json(folder / "config.json", {"base": cfg.to_dict(), "grid": {k: list(v) for k, v in grid.items()}})
    write_json(folder / "table.json", rows)
    with atomic_path(folder / "table.csv") as tmp:
        header = list(rows[0])
        lines = [",".join(header)] + [",".join(str(r[h]) for h in header) for r in rows]
        tmp.write_text("\n".join(lines) + "\n")
    return folder
