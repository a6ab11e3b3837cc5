"""Distance maps: how far the certified optimal class-mean Gram G_M stays from the target G_* over the settings a
user chooses (imbalance ratio R, temperature tau, copies n_w, anchor convention), one certified solve per cell.

A :class:`MapCell` is one solve (:func:`ufm.copies.solve_point`); :func:`distance_map` maps cells in memory,
:func:`run_map` runs them as a resumable set of kind ``map`` on any executor (:mod:`ufm.engine`,
:mod:`ufm.executors`).  The fewest copies for a distance are in :mod:`ufm.copies`, the batching curves of the
simulator in :mod:`ufm.batching_curves`, the prototype design in :mod:`ufm.design` (their names are re-exported
here for code written against the older single module).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ufm._config import first_repeat
from ufm._config import option as _opt
from ufm.batching_curves import BATCHINGS, batching_curves
from ufm.copies import CopiesResult, SolvePoint, minimal_copies, solve_point
from ufm.design import best_block_prototypes, block_gram
from ufm.errors import FieldError
from ufm.geometry import make_gram
from ufm.imbalance import class_counts
from ufm.losses import check_copies

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

RATIOS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
TAUS = (0.05, 0.1, 0.2, 0.5, 1.0)
N_WS = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


MAP_SOLVERS = ("BM", "auto")
MAP_GEOMETRIES = ("etf", "orthogonal")


@dataclass(frozen=True)
class MapCell:
    """One point of a distance map, full batch: class counts ``class_counts(profile, k, n_major, ratio)``
    (STEP: half minority), target G_* = ``geometry`` (prototypes G_w = G_*), temperature, copies n_w and the
    anchor convention.  ``solver``: the certified method of the map (``BM``: Burer-Monteiro, any counts;
    ``auto``: the symmetry-reduced interior point, fast when few distinct counts, e.g. STEP at any k);
    ``cross_check``: also solve with the other method and report the spread of the two distances (refused
    when the interior point would face more than ``AUTO_BM_ABOVE`` distinct counts: hours at k = 100 long-tail).
    Also the config of the ``map`` kind (:mod:`ufm.kinds.map`), so its fields carry command-line help."""

    ratio: float = _opt(10.0, "imbalance ratio R (majority / minority count)")
    tau: float = _opt(0.1, "temperature")
    n_w: float = _opt(10.0, "copies of each prototype (a multiplicity: fractional allowed)")
    prototype_anchors: bool = _opt(True, "prototype copies are anchors too (else only positives/negatives)")
    k: int = _opt(10, "number of classes")
    n_major: int = _opt(200, "samples in each majority class")
    geometry: str = _opt("etf", "target G_* (= the prototypes' Gram): etf or orthogonal")
    profile: str = _opt("step", "class counts: balanced, step or long-tail")
    solver: str = _opt("BM", "BM (Burer-Monteiro, any counts) or auto (symmetry-reduced interior point)")
    cross_check: bool = _opt(True, "also solve with the other method; report the spread of the two distances")

    def __post_init__(self) -> None:
        from ufm._config import POSITIVE, NON_NEGATIVE, Range, check_choices, check_values
        from ufm.imbalance import PROFILES

        check_choices(self, {"geometry": MAP_GEOMETRIES, "profile": PROFILES, "solver": MAP_SOLVERS})
        check_values(self, {"ratio": Range(1), "tau": POSITIVE, "n_w": NON_NEGATIVE, "k": Range(2),
                            "n_major": Range(1)})
        check_copies(self.n_w, self.prototype_anchors)  # before any cell runs: 0 < n_w < 1 needs batch anchors
        from ufm.solver.problem import check_solver_n_w

        check_solver_n_w(self.n_w, self.prototype_anchors)

    def without_effect(self) -> dict[str, str]:
        """The fields that do nothing in this cell, each with the reason (a sweep refuses a grid over them)."""
        out = {}
        if self.n_w == 0:
            out["prototype_anchors"] = "with {n_w} = 0 (no prototypes)"
        if self.profile == "balanced":
            out["ratio"] = "with balanced counts"
        return out

    def check(self) -> torch.Tensor:
        """The class counts ``[k]``, after checking that they exist (e.g. n_major // ratio >= 1) and that a
        cross-check is affordable; raises ValueError otherwise."""
        if self.profile == "balanced" and self.ratio != 1:
            raise FieldError(f"{{ratio}} {self.ratio:g} with {{profile=balanced}} (balanced counts have no ratio); use "
                             "{ratio=1}")
        from ufm.solver import check_solve_size

        check_solve_size(self.k, 1, self.n_w > 0, "dense")  # the k x k matrices of the cell, before any is built
        counts = self.counts()
        if self.cross_check:
            from ufm.solver import AUTO_BM_ABOVE

            distinct = len(set(counts.tolist()))
            if distinct > AUTO_BM_ABOVE:
                raise FieldError(f"the cross-check solves with the interior point, which would face {distinct} distinct "
                                 f"class counts (more than {AUTO_BM_ABOVE}: far too slow); set {{cross_check=False}} "
                                 "(the Burer-Monteiro solve is certified on its own)")
        return counts

    def counts(self) -> torch.Tensor:
        """Class counts ``[k]``."""
        return class_counts(self.profile, self.k, self.n_major, self.ratio)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MapCell":
        from ufm._config import from_dict

        return from_dict(cls, data)


def map_cells(
    ratios: Sequence[float] = RATIOS,
    taus: Sequence[float] = (0.1,),
    n_ws: Sequence[float] = N_WS,
    anchors: Sequence[bool] = (True, False),
    k: int = 10,
    n_major: int = 200,
    geometry: str = "etf",
    profile: str = "step",
    solver: str = "BM",
    cross_check: bool = True,
) -> list[MapCell]:
    """The grid anchors x ratios x taus x n_ws as independent cells (each one solve, or two with
    ``cross_check``; map them in any order, on any executor, with :func:`distance_cell`)."""
    return [MapCell(float(r), float(t), float(w), bool(a), k, n_major, geometry, profile, solver, cross_check)
            for a in anchors for r in ratios for t in taus for w in n_ws]


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


def map_grid(base: MapCell, ratios: Sequence[float] | None = None, taus: Sequence[float] = (0.1,),
             n_ws: Sequence[float] = N_WS, anchors: Sequence[bool] | None = None) -> tuple[MapCell, dict]:
    """``(base, grid)`` of a distance map: rows over ``ratios`` (default :data:`RATIOS`) or, with one ratio, over
    ``taus``; columns over ``n_ws``; panels over ``anchors`` (default both conventions; none when every n_w is 0,
    where the convention has no effect, and given ``anchors`` are then refused).  Balanced counts have no ratio:
    their map is tau x n_w, with ratio = 1 in the base cell (``ratios`` must then be None or (1,))."""
    from dataclasses import replace

    for name, values in (("ratio", ratios), ("tau", taus), ("n_w", n_ws), ("prototype_anchors", anchors)):
        if values is not None and first_repeat(values) is not None:
            raise FieldError(f"{{{name}}} repeats a value: {', '.join(format(v, 'g') for v in values)}")
    prototypes = any(float(n) > 0 for n in n_ws)
    if anchors is not None and not prototypes:
        raise FieldError("{prototype_anchors} has no effect with {n_w} 0 only (no prototypes): drop it")
    grid = {}
    if prototypes:
        grid["prototype_anchors"] = (True, False) if anchors is None else tuple(anchors)
    if base.profile == "balanced":
        if ratios is not None and tuple(float(r) for r in ratios) != (1.0,):
            raise FieldError("{ratio} has no effect with balanced counts (they have no imbalance ratio): drop it; the "
                             "map of balanced counts is tau x n_w")
        base = replace(base, ratio=1.0)
    else:
        grid["ratio"] = tuple(float(r) for r in (RATIOS if ratios is None else ratios))
    grid["tau"] = tuple(float(t) for t in taus)
    grid["n_w"] = tuple(float(n) for n in n_ws)
    return base, grid


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
