"""The full (uncollapsed) problem by Burer-Monteiro, with a certificate: is collapse optimal at N in the thousands?

Every sample i is its own unit row u_i in R^p, the prototypes are the fixed rows w~ of G_*'s eigen-factor
(w~ w~^T = G_*, padded to p columns), and the objective is :func:`ufm.solver.full.full_program` (the one
:func:`ufm.solver.solve_full` minimizes by interior point) on v = [vec U U^T, vec U w~^T, vec G_*], minimized
by L-BFGS in float64 from several random starts (three rounds per start, each a fresh L-BFGS from the
normalized rows).  The objective is not linear, so no Barvinok-Pataki bound limits the rank of the optimum;
p defaults to a heuristic (see :func:`default_rank`) and the certificate says whether it was enough.  Where
samples barely un-collapse the loss is very flat along their spread (objective changes below 1e-9 relative)
and L-BFGS stalls with a small negative dual eigenvalue: the certified gap is then loose (about
(N + k) |lambda_min|), though the objective itself is exact for the feasible point returned.  The certificate is
:func:`ufm.solver.certificate.gram_certificate` (weak duality on the N + k joint Gram): whatever the start
or the rank, ``certified_gap`` bounds objective - optimum of the full problem, so a collapsed optimum
above ``objective`` refutes collapse and one within ``certified_gap`` of it certifies it (up to that gap).
"""

from __future__ import annotations

import math
from typing import Sequence
import time

import numpy as np
import torch

from .certificate import gram_certificate
from .lowrank import minimize_unit_rows
from .full import check_full, class_mean_gram, full_program, within_class_min
from .problem import check_solve_size, check_solver_n_w, check_tau_n_w
from .result import FullSolveResult

__all__ = ["solve_full_bm", "default_rank", "prototype_rows", "lift_collapsed"]


def prototype_rows(g: np.ndarray | None, k: int) -> np.ndarray:
    """The fixed prototype rows w~ ``[k, r]`` (w~ w~^T = G_*, r = rank G_*: eigenvalues above 1e-9 of the
    largest); ``[k, 0]`` without prototypes (``g`` None)."""
    if g is None:
        return np.zeros((k, 0))
    lam, vecs = np.linalg.eigh(g)
    keep = lam > 1e-9 * lam.max()
    return vecs[:, keep] * np.sqrt(lam[keep])


def lift_collapsed(gram: np.ndarray, cross: np.ndarray | None, labels, g: np.ndarray | None, p: int) -> np.ndarray:
    """Unit sample rows ``[N, p]`` of the collapsed geometry (class-mean Gram ``gram [k, k]``, cross-Gram
    ``cross [k, k]``) lifted to N samples, every sample of class a at the same row u_a, in the coordinates
    of :func:`prototype_rows` (u_a . w~_c = cross_ac up to the normalization of u_a): u_a = [X_a w~ (w~^T
    w~)^-1, z_a] with z z^T the clipped Schur complement M - X G_*^+ X^T, normalized.  The lifted point is
    exactly feasible (unit rows next to the exact prototype rows), within round-off of the given one."""
    k = len(gram)
    factor = prototype_rows(g, k)
    r = factor.shape[1]
    if p < k + r:
        raise ValueError(f"p must be at least k + rank G_* = {k + r}, got {p}")
    y = np.zeros((k, 0)) if g is None else np.asarray(cross, dtype=float) @ factor / (factor * factor).sum(0)
    schur = np.asarray(gram, dtype=float) - y @ y.T
    lam, vecs = np.linalg.eigh((schur + schur.T) / 2)
    rows = np.hstack([y, vecs * np.sqrt(np.clip(lam, 0, None)), np.zeros((k, p - k - r))])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows[np.asarray(labels, dtype=np.int64)]


def default_rank(n: int, k: int, rank_g: int) -> int:
    """Columns p of the factor (a heuristic): 2 (k + rank G_*), or more when N is large (the rank bound
    sqrt(2 (N + k(k+1)/2)) + 1 of a linear objective), at most N + rank G_*."""
    constraints = n + (k * (k + 1) // 2 if rank_g else 0)
    bound = int((math.sqrt(8 * constraints + 1) - 1) / 2) + 1
    return min(n + rank_g, max(2 * (k + rank_g), bound))


def solve_full_bm(labels, batches, tau: float = 0.1, g_star=None, n_w: float = 0.0, prototype_anchors: bool = True,
                  num_classes: int | None = None, seeds: tuple[int, ...] = (0, 1, 2), rank: int | None = None,
                  max_iter: int = 3000, starts: Sequence[np.ndarray] = (),
                  max_memory_gb: float | None = None) -> FullSolveResult:
    """Certified optimum of the full problem of :func:`ufm.solver.solve_full` (same arguments: ``labels
    [N]``, ``batches`` a list of sample-index arrays) by Burer-Monteiro: ``rank`` columns (default
    :func:`default_rank`), three L-BFGS rounds of up to ``max_iter`` iterations from each of ``starts`` (unit
    rows [N, rank] in the coordinates of :func:`prototype_rows`, e.g. :func:`lift_collapsed`) and each seed
    (:func:`ufm.solver.lowrank.minimize_unit_rows`), the best kept.
    ``gram [N, N]``, ``cross [N, k]`` (None without prototypes), ``class_means`` and ``within_class_min``
    tell whether it collapsed; ``certified_gap`` >= objective - optimum (status "optimal" when it is below
    1e-6 of the objective).  ``entry_accuracy`` is the largest Gram-entry difference between restarts that
    reach the same objective (within the certified gap): empirical, and large when the optimum is not unique
    (interchangeable samples that do not collapse)."""
    check_tau_n_w(tau, n_w)
    check_solver_n_w(n_w, prototype_anchors)
    if not (seeds or len(starts)) or max_iter < 1:
        raise ValueError("solve_full_bm needs at least one seed (or start) and max_iter >= 1")
    labels, batches, k, g = check_full(labels, batches, g_star, n_w, num_classes)
    n = len(labels)
    check_solve_size(k, len(batches), g is not None, "full-bm", max_memory_gb, samples=n)
    program = full_program(labels, batches, k, n_w, prototype_anchors, tau)
    start = time.perf_counter()
    factor = prototype_rows(g, k)
    g_flat = torch.from_numpy(g if g is not None else np.eye(k)).reshape(-1)
    rank_g = factor.shape[1]
    p = default_rank(n, k, rank_g) if rank is None else int(rank)
    if p < max(rank_g, 1):
        raise ValueError(f"rank must be at least rank G_* = {rank_g} (and >= 1), got {p}")
    w_rows = torch.nn.functional.pad(torch.from_numpy(factor), (0, p - rank_g))
    starts = [np.asarray(s, dtype=float) for s in starts]
    if any(s.shape != (n, p) for s in starts):
        raise ValueError(f"each of starts must be N x rank = {n} x {p} unit rows")

    def objective(un: torch.Tensor) -> torch.Tensor:
        return program.torch(torch.cat([(un @ un.T).reshape(-1), (un @ w_rows.T).reshape(-1), g_flat]))

    solutions, iterations = minimize_unit_rows(objective, n, p, tuple(seeds), max_iter, starts=starts)
    value, un = min(solutions, key=lambda s: s[0])
    solve_s = time.perf_counter() - start
    start = time.perf_counter()
    gram = (un @ un.T).numpy()
    cross = (un @ w_rows.T).numpy() if g is not None else None
    cert = gram_certificate(program, gram, cross, g, k)
    same = [s for s in solutions if s[0] <= value + cert["certified_gap"]]
    spread = max(float((s[1] @ s[1].T - un @ un.T).abs().max()) for s in same)
    joint = gram if cross is None else np.block([[gram, cross], [cross.T, g]])
    min_eig = float(np.linalg.eigvalsh(joint).min())
    polish_s = time.perf_counter() - start
    status = "optimal" if cert["relative_gap"] <= 1e-6 else "optimal_inaccurate"
    note = (f"rank {p}; {len(same)} of {len(solutions)} restarts reach the best objective within the certified gap"
            + ("" if len(same) > 1 else ": no entry-accuracy estimate"))
    return FullSolveResult(gram, cross, value, status, "full", "BM", iterations, 0, min_eig,
                           float(np.abs(np.diag(gram) - 1).max()), cert["certified_gap"], cert["relative_gap"],
                           spread if len(same) > 1 else None, "restarts" if len(same) > 1 else "none", note, None,
                           0.0, solve_s, polish_s, class_mean_gram(gram, labels), within_class_min(gram, labels))
