"""Certified solves measured against the target: one solve point, and the fewest prototype copies that bring the
optimal class-mean Gram G_M within a distance of G_*.

Everything here reads the certified optimum of the collapsed problem (:func:`ufm.solver.solve`) and
measures it with the normalized Frobenius distance of :func:`ufm.analysis.gram_distance`,

    d(n_w) = || G_M(n_w) / ||G_M||_F - G_* / ||G_*||_F ||_F,

where G_M(n_w) is the optimal Gram of the unit class means for the given batch compositions, tau,
prototype Gram G_w (= G_* unless said otherwise) and n_w copies of each prototype per batch (copies are
multiplicities, so any real n_w >= 0 is meaningful).  The solver is only reached through
:func:`_solve_point`, the one adapter to its result type.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch

from ufm import eta
from ufm.analysis import gram_distance
from ufm.choices import check_copies_search
from ufm.geometry import check_gram

__all__ = ["SolvePoint", "CopiesResult", "solve_point", "minimal_copies"]


@dataclass(frozen=True)
class SolvePoint:
    """One certified solve: the optimal G_M's distance to the target and how the solve was certified.

    ``certified_gap`` bounds objective(solution) - optimum (weak duality, :func:`ufm.solver.certify`);
    ``relative_gap`` is that bound over |objective|."""

    n_w: float
    distance: float
    status: str
    solver: str
    objective: float
    certified_gap: float | None
    relative_gap: float | None
    gram: np.ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("gram")
        return out


def _solve_point(compositions: np.ndarray, tau: float, g_w: np.ndarray | None, n_w: float,
                 prototype_anchors: bool, solver: str) -> tuple[np.ndarray, float, str, str, float | None, float | None]:
    """The only place that touches the solver's result type: (gram [k, k], objective, status, solver name,
    certified gap, relative gap).  The gap is the result's own certificate when it carries one, else the
    weak-duality certificate of :func:`ufm.solver.certify` computed here on the returned solution."""
    from ufm.solver import certify, solve

    result = solve(compositions, tau, g_w, n_w, prototype_anchors, solver)
    gram = np.asarray(result.gram, dtype=float)
    gap, relative = result.certified_gap, result.relative_gap
    if gap is None:
        certificate = certify(gram, result.cross, compositions, tau, g_w, n_w, prototype_anchors)
        gap, relative = certificate.get("certified_gap"), certificate.get("relative_gap")
    return gram, float(result.objective), str(result.status), str(result.solver), gap, relative


def _distance(gram: np.ndarray, g_star: np.ndarray) -> float:
    return float(gram_distance(torch.from_numpy(gram), torch.from_numpy(g_star)))


def _compositions(counts_or_compositions) -> np.ndarray:
    comp = np.asarray(counts_or_compositions)
    if comp.ndim == 1:
        comp = comp[None]
    if comp.ndim != 2 or comp.shape[1] < 2:
        raise ValueError(f"counts must be [k >= 2] class counts or [num_batches, k] compositions, got shape {comp.shape}")
    return comp


def solve_point(
    counts,
    tau: float,
    g_star,
    n_w: float,
    prototype_anchors: bool = True,
    g_w=None,
    solver: str = "auto",
) -> SolvePoint:
    """The certified optimum for class ``counts [k]`` (one full batch) or batch ``compositions [B, k]``,
    with n_w copies of prototypes of Gram ``g_w`` (default ``g_star``), and its distance to ``g_star``."""
    comp = _compositions(counts)
    target = check_gram(g_star).numpy()
    if target.shape != (comp.shape[1],) * 2:
        raise ValueError(f"g_star is {target.shape[0]} x {target.shape[0]} but the counts have k = {comp.shape[1]}")
    protos = target if g_w is None else check_gram(g_w).numpy()
    gram, objective, status, name, gap, rel = _solve_point(comp, tau, protos, float(n_w), prototype_anchors, solver)
    return SolvePoint(float(n_w), _distance(gram, target), status, name, objective, gap, rel, gram)


@dataclass(frozen=True)
class CopiesResult:
    """Answer of :func:`minimal_copies`.  ``n_w`` is the smallest number of copies found that brings the
    distance to at most ``target_distance`` (None when not reached up to ``max_n_w``); ``lower`` the
    largest n_w evaluated that does not (``hi - lower <= rel_tol * hi`` at the end of the search).
    ``steps`` lists every solve along the search, in the order made; ``monotone_on_path`` says whether
    the distances of the certified solves, sorted by n_w, are non-increasing (to ``1e-5``), the assumption
    of the search.  ``uncertified``: the solve whose status was not "optimal" (its distance is not certified),
    where the search stopped; None when every solve was certified.  The answer never rests on it: stopped
    while doubling, ``reached`` is False and ``lower`` the largest certified n_w that misses (None if none);
    stopped while bisecting, ``n_w`` is the certified hit and ``lower`` the certified miss, wider apart than
    ``rel_tol``."""

    reached: bool
    n_w: float | None
    distance: float | None
    lower: float | None
    target_distance: float
    max_n_w: float
    rel_tol: float
    steps: tuple[SolvePoint, ...]
    monotone_on_path: bool
    uncertified: SolvePoint | None = None

    def to_dict(self) -> dict:
        return {
            "reached": self.reached, "n_w": self.n_w, "distance": self.distance, "lower": self.lower,
            "target_distance": self.target_distance, "max_n_w": self.max_n_w, "rel_tol": self.rel_tol,
            "monotone_on_path": self.monotone_on_path, "steps": [s.to_dict() for s in self.steps],
            "uncertified": None if self.uncertified is None else self.uncertified.to_dict(),
        }

    def conclusion(self) -> str:
        """The answer in one sentence, saying where certification ended when it did."""
        stop = self.uncertified
        cannot = "" if stop is None else f"the solver cannot certify n_w = {stop.n_w:.6g} (status {stop.status})"
        if self.reached:
            head = (f"n_w = {self.n_w:.6g} copies bring G_M within {self.target_distance:g} of G_* (distance "
                    f"{self.distance:.6f}; ")
            if self.lower is None:
                return head + "n_w = 0 already does)"
            if stop is not None:
                return head + f"not reached at n_w = {self.lower:.6g}; the bisection stopped between them: {cannot})"
            return head + f"not reached at n_w = {self.lower:.6g})"
        if stop is None:
            return (f"not reached up to n_w = {self.max_n_w:g}: distance {self.steps[-1].distance:.6f} there "
                    f"> {self.target_distance:g}")
        if self.lower is None:
            return f"no answer: {cannot}, the first value searched; nothing certified to conclude from"
        return (f"not reached up to n_w = {self.lower:.6g}, the largest certified value; beyond it {cannot}, so "
                "the search stops there")


class _Uncertified(Exception):
    """A solve of the search is not certified: the search stops (see :class:`CopiesResult`)."""

    def __init__(self, point: SolvePoint) -> None:
        super().__init__(point.status)
        self.point = point


def _monotone(steps: Iterable[SolvePoint], slack: float = 1e-5) -> bool:
    ordered = sorted((s for s in steps if s.status == "optimal"), key=lambda s: s.n_w)
    return all(b.distance <= a.distance + slack for a, b in zip(ordered, ordered[1:]))


def max_solves(max_n_w: float, rel_tol: float) -> int:
    """An upper bound on the solves of :func:`minimal_copies`: n_w = 0, the doublings 1, 2, 4, ... up to ``max_n_w``,
    and the bisection down to ``rel_tol``."""
    return 2 + math.ceil(math.log2(max(max_n_w, 1.0))) + math.ceil(math.log2(1 / rel_tol)) + 1


def minimal_copies(
    counts,
    tau: float,
    g_star,
    target_distance: float = 0.05,
    prototype_anchors: bool = True,
    max_n_w: float = 1e4,
    rel_tol: float = 1e-3,
    g_w=None,
    solver: str = "BM",
    progress: Callable[[SolvePoint], None] | None = None,
) -> CopiesResult:
    """The smallest n_w >= 0 with d(n_w) <= ``target_distance`` (d as in the module docstring), to a
    relative tolerance ``rel_tol``, for class ``counts [k]`` (one full batch) or ``compositions [B, k]``.

    Assumes d is non-increasing in n_w on the searched set (checked on the solves the search makes:
    ``monotone_on_path``, to 1e-5; observed on the cases of ``tests/test_maps.py`` and the README maps
    for n_w >= 1, not proved).  With ``prototype_anchors`` the searched set is {0} U [1, max_n_w]: each
    anchor copy of w_a has n_w - 1 copies of itself as positives, a negative count for 0 < n_w < 1, which
    is refused (:func:`ufm.losses.check_copies`).  Without prototype anchors n_w is a weight and
    every n_w >= 0 is searched.  Search: d(0) (skipped when n_w = 0 is not a valid problem, e.g. a class
    with one sample), then n_w = 1, 2, 4, ... (the last one clipped to ``max_n_w``) until the target is
    met, then bisection between the last miss and the first hit until hi - lo <= rel_tol * hi.  The
    answer rests on certified solves only (status "optimal"; weak-duality gap in ``steps``): the search stops
    at the first solve that is not certified (``uncertified``, see :class:`CopiesResult`).  Not reached up to
    ``max_n_w``: ``reached`` False, ``n_w`` None.  ``solver`` defaults to the Burer-Monteiro solve: its distances
    are smooth in n_w to ~1e-6 where the interior-point ones jitter by ~1e-4 (STEP 50x5,5x5, tau 0.1,
    n_w = 10.97..11.0: BM 0.050034, 0.050030, 0.050027, 0.050019; Clarabel 0.050020, 0.049912,
    0.049999, 0.049991), which would stall the bisection.  Beyond n_w ~ 1e4 the solver's G_M loses accuracy (the sample
    terms become a tiny part of the objective; the distance then drifts by ~1e-4 to 1e-3), hence the
    default ``max_n_w``."""
    check_copies_search(target_distance, max_n_w, rel_tol, solver, prototype_anchors)
    comp = _compositions(counts)
    steps: list[SolvePoint] = []
    timer = eta.Timer(max_solves(max_n_w, rel_tol), "solves", "copies", min_steps=1, bound=True)

    def evaluate(n_w: float) -> SolvePoint:
        with eta.outer(timer):  # the solves' own loops report until the search has
            point = solve_point(comp, tau, g_star, n_w, prototype_anchors, g_w, solver)
        steps.append(point)
        timer.step()
        if progress is not None:
            progress(point)
        if point.status != "optimal":
            raise _Uncertified(point)
        return point

    def done(hit: SolvePoint | None, lower: float | None, stop: SolvePoint | None = None) -> CopiesResult:
        return CopiesResult(hit is not None, None if hit is None else hit.n_w, None if hit is None else hit.distance,
                            lower, float(target_distance), float(max_n_w), float(rel_tol), tuple(steps),
                            _monotone(steps), stop)

    zero_valid = not (comp.max(0) < 2).any()  # with n_w = 0 every class needs a positive pair in some batch
    lo: float | None = None  # the largest certified miss
    hi_point: SolvePoint | None = None  # the smallest certified hit
    try:
        if zero_valid:
            if evaluate(0.0).distance <= target_distance:
                return done(steps[-1], None)
            lo = 0.0
        n_w = 1.0
        while hi_point is None:
            n_w = min(n_w, float(max_n_w))
            point = evaluate(n_w)
            if point.distance <= target_distance:
                hi_point = point
                break
            lo = n_w
            if n_w >= max_n_w:
                return done(None, lo)
            n_w *= 2
        floor = 1.0 if prototype_anchors else 0.0  # below 1 copy, anchor copies are not a count (see above)
        lo = lo or 0.0
        while hi_point.n_w - lo > rel_tol * hi_point.n_w and hi_point.n_w > floor:
            mid = evaluate(max((lo + hi_point.n_w) / 2, floor))
            if mid.distance <= target_distance:
                hi_point = mid
            else:
                lo = mid.n_w
    except _Uncertified as stop:
        return done(hi_point, lo, stop.point)
    return done(hi_point, lo)
