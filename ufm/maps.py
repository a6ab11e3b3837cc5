"""Distance maps: how far the certified optimal class-mean Gram G_M stays from the target G_* over the settings a
user chooses (imbalance ratio R, temperature tau, copies n_w, anchor convention), one certified solve per cell.

A :class:`MapCell` (:mod:`ufm.map_config`, re-exported here) is one solve (:func:`ufm.copies.solve_point`); :func:`distance_map` maps cells in memory,
:func:`run_map` runs them as a resumable set of kind ``map`` on any executor (:mod:`ufm.engine`,
:mod:`ufm.executors`).  The fewest copies for a distance are in :mod:`ufm.copies`, the batching curves of the
simulator in :mod:`ufm.batching_curves`, the prototype design in :mod:`ufm.design` (their names are re-exported
here for code written against the older single module).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ufm.batching_curves import BATCHINGS, batching_curves
from ufm.copies import CopiesResult, SolvePoint, minimal_copies, solve_point
from ufm.design import best_block_prototypes, block_gram
from ufm.geometry import make_gram
from ufm.map_config import (MAP_GEOMETRIES, MAP_SOLVERS, N_WS, RATIOS, TAUS, MapCell, map_cells,  # noqa: F401
                            map_grid)  # (re-exported: the cells of a map are configs, torch-free)

__all__ = [
    "SolvePoint",
    "CopiesResult",
    "solve_point",
    "minimal_copies",
    "MapCell",
    "map_cells",
    "distance_cell",
    "distance_map",
    "run_map",
    "BATCHINGS",
    "batching_curves",
    "render_map",
    "block_gram",
    "best_block_prototypes",
]

def distance_cell(cell: MapCell) -> dict:
    """The optimum of one cell: a row with the cell's settings and counts, the distance of G_M to G_* from
    the certified ``cell.solver`` solve (``distance``, with its status, objective and certified gap), with
    ``cross_check`` the other method's distance (``distance_check``, ``solver_check``, ``status_check``) and
    their difference ``distance_spread`` (an empirical accuracy: the loss is so flat at small tau that two
    certified optima can differ in G_M), and the mean majority-majority, minority-minority and
    majority-minority cosines of G_M (minority: :func:`ufm.imbalance.minority_mask`).  Cells that are not a
    valid problem (a class with one sample and n_w = 0) give distance None and the reason in ``note``."""
    from ufm.imbalance import minority_mask

    counts = cell.check()
    row = {**asdict(cell), "counts": counts.tolist()}
    g_star = make_gram(cell.geometry, cell.k, counts)
    try:
        point = solve_point(counts.numpy(), cell.tau, g_star, cell.n_w, cell.prototype_anchors, solver=cell.solver)
        # the other method than the one that answered (auto may answer with Burer-Monteiro), never a fallback to it
        other = (solve_point(counts.numpy(), cell.tau, g_star, cell.n_w, cell.prototype_anchors,
                             solver=_independent(point.solver)) if cell.cross_check else None)
    except ValueError as err:
        if cell.n_w == 0 and int(counts.min()) < 2:
            return {**row, "distance": None, "status": "invalid", "note": str(err)}
        raise
    minority = minority_mask(counts).numpy()
    off = ~np.eye(cell.k, dtype=bool)

    def mean_cos(rows, cols) -> float | None:
        block = point.gram[np.ix_(rows, cols)][off[np.ix_(rows, cols)]]
        return float(block.mean()) if block.size else None

    return {**row, **point.to_dict(), "n_w": cell.n_w, "solver": cell.solver, "solver_method": point.solver,
            "certified": point.status == "optimal", **_cross_check(point, other),
            "cos_majority": mean_cos(~minority, ~minority), "cos_minority": mean_cos(minority, minority),
            "cos_across": mean_cos(~minority, minority)}


def _independent(solver: str) -> str:
    """The method that checks a solve made by ``solver`` (CLARABEL, SCS or BM): the interior point for
    Burer-Monteiro, Burer-Monteiro for an interior point."""
    return "CLARABEL" if solver == "BM" else "BM"


def _cross_check(point: SolvePoint, other: SolvePoint | None) -> dict:
    """The cross-check columns of a map row: the other method's distance and status and the spread of the two
    distances; a check by the same method is no check (spread None, ``cross_check_note`` says why)."""
    if other is None:
        return {}
    out = {"distance_check": other.distance, "solver_check": other.solver, "status_check": other.status}
    if other.solver == point.solver:
        return {**out, "distance_spread": None,
                "cross_check_note": f"no independent check: both solves used {point.solver}"}
    return {**out, "distance_spread": abs(point.distance - other.distance)}


def distance_map(cells: Sequence[MapCell], map_fn: Callable = map) -> list[dict]:
    """Rows of :func:`distance_cell` for every cell; ``map_fn`` (default the builtin ``map``) may be any
    executor's map over picklable cells."""
    return list(map_fn(distance_cell, cells))


def run_map(
    folder,
    base: MapCell | None = None,
    grid: dict[str, Sequence] | None = None,
    executor=None,
    done: Callable[[str, bool], None] | None = None,
) -> dict:
    """A distance map as a resumable set of kind ``map`` (:func:`ufm.engine.run_grid`: one run folder per cell under
    ``folder/points``, finished cells skipped on a re-run, any executor: inline, local processes, SLURM), then the
    heatmaps of the gathered rows in ``folder/map.png`` (:func:`render_map`, drawn by :func:`ufm.engine.gather`, so
    ``ufm gather`` redraws it too).  ``grid``: {MapCell field: values}, default ratio x n_w x both anchor
    conventions.  Returns run_grid's dict plus ``figure`` (None when no cell finished, e.g. SLURM without waiting)."""
    from ufm.engine import run_grid

    base = base or MapCell()
    grid = grid if grid is not None else {"prototype_anchors": (True, False), "ratio": RATIOS, "n_w": N_WS}
    report = run_grid(folder, "map", base, grid, executor, done)
    figure = Path(report["folder"]) / "map.png"
    report["figure"] = figure if report["finished"] and figure.is_file() else None
    return report


def render_map(folder, rows: list[dict], title: str | None = None):
    """Heatmaps of a map's rows into ``folder/map.png`` (None when no row has a distance)."""
    from pathlib import Path

    from ufm.plots import map_figure, save_figure

    if not any(r.get("distance") is not None for r in rows):
        return None
    return save_figure(map_figure(rows, title), Path(folder) / "map.png")
