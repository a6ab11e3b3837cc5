"""The cells of a distance map (:class:`MapCell`, the config of the ``map`` kind and of ``ufm map``) and their
grids: checked when built, torch-free (the command refuses bad input before importing torch);
:mod:`ufm.maps` solves them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Sequence

from ufm._config import NON_NEGATIVE, POSITIVE, Range, check_choices, check_values, first_repeat, from_dict
from ufm._config import option as _opt
from ufm.choices import PROFILES, check_copies, check_solver_n_w
from ufm.errors import FieldError

if TYPE_CHECKING:
    import torch

__all__ = ["MapCell", "map_cells", "map_grid", "RATIOS", "TAUS", "N_WS", "MAP_SOLVERS", "MAP_GEOMETRIES"]

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
        check_choices(self, {"geometry": MAP_GEOMETRIES, "profile": PROFILES, "solver": MAP_SOLVERS})
        check_values(self, {"ratio": Range(1), "tau": POSITIVE, "n_w": NON_NEGATIVE, "k": Range(2),
                            "n_major": Range(1)})
        check_copies(self.n_w, self.prototype_anchors)  # before any cell runs: 0 < n_w < 1 needs batch anchors
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
        from ufm.imbalance import class_counts

        return class_counts(self.profile, self.k, self.n_major, self.ratio)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MapCell":
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


def map_grid(base: MapCell, ratios: Sequence[float] | None = None, taus: Sequence[float] = (0.1,),
             n_ws: Sequence[float] = N_WS, anchors: Sequence[bool] | None = None) -> tuple[MapCell, dict]:
    """``(base, grid)`` of a distance map: rows over ``ratios`` (default :data:`RATIOS`) or, with one ratio, over
    ``taus``; columns over ``n_ws``; panels over ``anchors`` (default both conventions; none when every n_w is 0,
    where the convention has no effect, and given ``anchors`` are then refused).  Balanced counts have no ratio:
    their map is tau x n_w, with ratio = 1 in the base cell (``ratios`` must then be None or (1,))."""
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
    first = {name: values[0] for name, values in grid.items() if values}
    for name, values in grid.items():  # each value in a cell of the grid (e.g. n_w >= 0), before any is planned
        for value in values:
            replace(base, **{**first, name: value})
    return base, grid
