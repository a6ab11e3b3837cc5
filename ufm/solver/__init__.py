"""Certified optimal geometry of batch SCL with fixed prototypes: a convex program in the Gram matrix.

Collapsed form (every sample of class c equals its unit class mean mu_c): the unknowns are M = [mu_a . mu_c]
(k x k, unit diagonal) and, with prototypes W (Gram G_*), X = [mu_a . w_c]; the joint Gram
[[M, X], [X^T, G_*]] must be PSD, exactly the condition for unit vectors mu_c to exist next to the fixed w_c.
The objective (:mod:`ufm.solver.problem`, written once) is a sum of log-sum-exps of affine functions of
(M, X) minus an affine function: convex, over a convex set, so its optimum is global and certifiable.

One validated :class:`Problem` feeds every method:

- ``grouped`` (:mod:`.grouped`): one full batch, classes grouped by equal counts, G_* constant on the group
  blocks: a few variables whatever k; interior point, then Newton on the KKT conditions in float64, and a
  certificate in the reduced space;
- ``interior`` (:mod:`.interior`, the same machinery with one group per class): any batch-set, k up to about 30;
- ``bm`` (:mod:`.lowrank`): Burer-Monteiro with a certificate, for large k without the symmetry;
- the factor-form Newton polish (:mod:`.newton`): unreduced problems above the dense KKT polish's size
  (interior point, Burer-Monteiro, the full solve) polished with an entry-accuracy estimate;
- ``full`` (:mod:`.full`): every sample its own row (no collapse assumed), N up to about 60;
- ``solve_full_bm`` (:mod:`.lowrank_full`): the same full problem by Burer-Monteiro with a certificate, N in the
  hundreds to thousands (is collapse optimal?).

:func:`solve` dispatches: the symmetry reduction first whenever it applies (at any k), else the interior
point up to k = 30 (or with ``nonnegative``), else Burer-Monteiro.  Every method returns a
:class:`SolveResult` with the same typed fields.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ufm.choices import SOLVERS

from .certificate import FEASIBILITY_TOL
from .certificate import certify as _certify
from .full import class_mean_gram, full_objective, solve_full, within_class_min
from .grouped import solve_grouped as _solve_grouped
from .interior import solve_interior
from .lowrank import solve_bm as _solve_bm
from .lowrank_full import solve_full_bm
from .newton import MAX_FACTOR_UNKNOWNS, polish_result
from .nonneg import nonnegative_prototypes
from .problem import (MAX_SOLVER_N_W, LSEProgram, Problem, check_solve_size, check_solver_n_w, class_groups,
                      solve_memory_bytes)
from .result import ENTRY_TOL, FullSolveResult, SolveResult

__all__ = [
    "ENTRY_TOL",
    "MAX_SOLVER_N_W",
    "check_solver_n_w",
    "SOLVERS",
    "AUTO_BM_ABOVE",
    "FEASIBILITY_TOL",
    "MAX_FACTOR_UNKNOWNS",
    "Problem",
    "LSEProgram",
    "SolveResult",
    "FullSolveResult",
    "class_groups",
    "check_solve_size",
    "solve_memory_bytes",
    "class_mean_gram",
    "collapsed_objective",
    "certify",
    "full_objective",
    "nonnegative_prototypes",
    "solve",
    "solve_bm",
    "solve_collapsed",
    "solve_full",
    "solve_full_bm",
    "within_class_min",
    "solve_grouped",
]

AUTO_BM_ABOVE = 30  # solver="auto" without the symmetry: interior point up to this k, Burer-Monteiro above


def _problem(compositions, tau, g_star, n_w, prototype_anchors, nonnegative) -> Problem:
    """A :class:`Problem` from its parts, or the given one (then the other arguments must keep their defaults)."""
    if isinstance(compositions, Problem):
        if (tau, g_star, n_w, prototype_anchors, nonnegative) != (0.1, None, 0.0, True, False):
            raise ValueError("pass either a Problem or its parts (tau, g_star, n_w, ...), not both")
        return compositions
    return Problem.make(compositions, tau, g_star, n_w, prototype_anchors, nonnegative)


def collapsed_objective(gram: np.ndarray, cross: np.ndarray | None, compositions, tau: float = 0.1, g_star=None,
                        n_w: float = 0.0, prototype_anchors: bool = True) -> float:
    """The batch-set loss of collapsed features with class-mean Gram ``gram [k, k]`` and cross-Gram
    ``cross [k, k]`` (for checking a solution or a simulator's geometry)."""
    return _problem(compositions, tau, g_star, n_w, prototype_anchors, False).objective(gram, cross)


def solve_collapsed(compositions, tau: float = 0.1, g_star=None, n_w: float = 0.0, prototype_anchors: bool = True,
                    solver: str = "CLARABEL", nonnegative: bool = False, polish: bool = True,
                    max_memory_gb: float | None = None) -> SolveResult:
    """The collapsed problem by interior point (``solver`` CLARABEL or SCS) for any batch-set
    ``compositions [num_batches, k]`` (class counts of each batch), temperature ``tau`` and, with
    ``n_w > 0``, prototypes of Gram ``g_star``; Newton polish and certificate as in :mod:`.grouped` (one
    group per class; the polish runs while its KKT system has at most 1000 unknowns, about k <= 17 with
    prototypes and k <= 31 without, else the full-space certificate of :mod:`.certificate` is used).

    Above the dense KKT polish's size the factor-form polish of :mod:`.newton` is used.  ``max_memory_gb``:
    refuse up front a solve whose memory estimate exceeds it (default: the available memory).

    ``nonnegative`` (ReLU features, the UFM+): also M >= 0 and X >= 0 entrywise, polished on the active set.  Gram matrices of
    non-negative vectors form the completely positive cone; PSD and entrywise >= 0 (doubly non-negative)
    is a relaxation of it, exact for matrices of order <= 4 (Maxfield and Minc 1962) and otherwise a lower
    bound on the ReLU optimum, tight whenever the returned Gram is itself realizable by non-negative
    vectors (for instance the orthogonal frame, realized by the standard basis)."""
    problem = _problem(compositions, tau, g_star, n_w, prototype_anchors, nonnegative)
    _check_size(problem, "interior", max_memory_gb)
    return solve_interior(problem, solver, polish)


def solve_grouped(counts, tau: float = 0.1, g_star=None, n_w: float = 0.0, prototype_anchors: bool = True,
                  solver: str = "CLARABEL", nonnegative: bool = False, polish: bool = True,
                  max_memory_gb: float | None = None) -> SolveResult:
    """The collapsed problem for one full batch of class ``counts [k]``, reduced by symmetry (classes of
    equal counts; G_* must be constant on their blocks), polished and certified: see :mod:`.grouped`."""
    if not isinstance(counts, Problem):
        counts = np.asarray(counts)
        if counts.ndim != 1 and not (counts.ndim == 2 and counts.shape[0] == 1):
            raise ValueError(f"counts must be one full batch [k], got shape {counts.shape}")
        counts = counts.reshape(1, -1)
    problem = _problem(counts, tau, g_star, n_w, prototype_anchors, nonnegative)
    if problem.groups is not None:  # (else solve_grouped refuses with its own message)
        _check_size(problem, "grouped", max_memory_gb)
    return _solve_grouped(problem, solver, polish)


def solve_bm(compositions, tau: float = 0.1, g_star=None, n_w: float = 0.0, prototype_anchors: bool = True,
             seeds: tuple[int, ...] = (0, 1), max_iter: int = 2000, polish: bool = True,
             max_memory_gb: float | None = None) -> SolveResult:
    """The collapsed problem by Burer-Monteiro with a certificate (:mod:`.lowrank`), then, with ``polish``,
    Newton in factor form (:mod:`.newton`) while its dense Hessian fits (``MAX_FACTOR_UNKNOWNS``)."""
    problem = _problem(compositions, tau, g_star, n_w, prototype_anchors, False)
    _check_size(problem, "bm", max_memory_gb)
    result = _solve_bm(problem, tuple(seeds), max_iter)
    return polish_result(problem, result) if polish else result


def certify(gram: np.ndarray, cross: np.ndarray | None, compositions, tau: float = 0.1, g_star=None,
            n_w: float = 0.0, prototype_anchors: bool = True, tol: float = FEASIBILITY_TOL) -> dict:
    """Certified suboptimality ``certified_gap`` >= objective(gram, cross) - optimum of a collapsed geometry
    (any source); refuses (ValueError) one that is not feasible within ``tol``: see :mod:`.certificate`."""
    return _certify(_problem(compositions, tau, g_star, n_w, prototype_anchors, False), gram, cross, tol)


def solve(compositions, tau: float = 0.1, g_star=None, n_w: float = 0.0, prototype_anchors: bool = True,
          solver: str = "auto", reduce: bool = True, nonnegative: bool = False, polish: bool = True,
          max_memory_gb: float | None = None) -> SolveResult:
    """The optimal collapsed geometry.  ``solver``: ``auto`` (the symmetry-reduced method whenever it applies
    and ``reduce``, at any k; else the interior point (Clarabel) up to k = 30 or with ``nonnegative``, else
    Burer-Monteiro), ``CLARABEL`` or ``SCS`` (interior point, reduced when it applies and ``reduce``), or
    ``BM`` (Burer-Monteiro, never reduced).  Refuses up front (ValueError) a solve whose memory estimate
    (:func:`.problem.solve_memory_bytes`) exceeds ``max_memory_gb`` (default: ``$UFM_MAX_MEMORY_GB``, else
    the available memory)."""
    if solver not in ("auto", *SOLVERS):
        raise ValueError(f"solver {solver!r} is not supported; choose auto or one of {', '.join(SOLVERS)}")
    problem = _problem(compositions, tau, g_star, n_w, prototype_anchors, nonnegative)
    if solver == "BM":
        return solve_bm(problem, polish=polish, max_memory_gb=max_memory_gb)
    conic = "CLARABEL" if solver == "auto" else solver
    if reduce and problem.groups is not None and len(problem.groups) < problem.k:
        _check_size(problem, "grouped", max_memory_gb)
        result = _solve_grouped(problem, conic, polish)
    elif solver == "auto" and problem.k > AUTO_BM_ABOVE and not nonnegative:
        return solve_bm(problem, polish=polish, max_memory_gb=max_memory_gb)
    else:
        result = solve_collapsed(problem, solver=conic, polish=polish, max_memory_gb=max_memory_gb)
    if solver == "auto" and polish and not nonnegative and result.status != "optimal":
        # the interior point's polish may not start (many copies, a small tau: its tolerance leaves the entries
        # loose); Burer-Monteiro's factor-form polish holds further (benchmarks/solver_precision.py)
        other = solve_bm(problem, polish=True, max_memory_gb=max_memory_gb)
        acc, other_acc = result.entry_accuracy, other.entry_accuracy
        if other_acc is not None and np.isfinite(other_acc) and (acc is None or not np.isfinite(acc) or other_acc < acc):
            why = f"the {result.method} solve's entries were not certified ({result.note or result.status})"
            return replace(other, note=f"{why}; Burer-Monteiro used" + (f"; {other.note}" if other.note else ""))
    return result


def _check_size(problem: Problem, method: str, max_memory_gb: float | None) -> None:
    groups = len(problem.groups) if method == "grouped" else None
    check_solve_size(problem.k, problem.compositions.shape[0], problem.with_prototypes, method, max_memory_gb,
                     groups=groups)
