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
import time

import numpy as np
import torch

from .certificate import gram_certificate
from .full import check_full, class_mean_gram, full_program, within_class_min
from .problem import check_tau_n_w
from .result import FullSolveResult

__all__ = ["solve_full_bm", "default_rank"]


def default_rank(n: int, k: int, rank_g: int) -> int:
    """Columns p of the factor (a heuristic): 2 (k + rank G_*), or more when N is large (the rank bound
    sqrt(2 (N + k(k+1)/2)) + 1 of a linear objective), at most N + rank G_*."""
    constraints = n + (k * (k + 1) // 2 if rank_g else 0)
    bound = int((math.sqrt(8 * constraints + 1) - 1) / 2) + 1
    return min(n + rank_g, max(2 * (k + rank_g), bound))


def solve_full_bm(labels, batches, tau: float = 0.1, g_star=None, n_w: float = 0.0, prototype_anchors: bool = True,
                  num_classes: int | None = None, seeds: tuple[int, ...] = (0, 1, 2), rank: int | None = None,
                  max_iter: int = 3000) -> FullSolveResult:
    """Certified optimum of the full problem of :func:`ufm.solver.solve_full` (same arguments: ``labels
    [N]``, ``batches`` a list of sample-index arrays) by Burer-Monteiro: ``rank`` columns (default
    :func:`default_rank`), three L-BFGS rounds of up to ``max_iter`` iterations per seed, the best kept.
    ``gram [N, N]``, ``cross [N, k]`` (None without prototypes), ``class_means`` and ``within_class_min``
    tell whether it collapsed; ``certified_gap`` >= objective - optimum (status "optimal" when it is below
    1e-6 of the objective).  ``entry_accuracy`` is the largest Gram-entry difference between restarts that
    reach the same objective (within the certified gap): empirical, and large when the optimum is not unique
    (interchangeable samples that do not collapse)."""
    check_tau_n_w(tau, n_w)
    if not seeds or max_iter < 1:
        raise ValueError("solve_full_bm needs at least one seed and max_iter >= 1")
    labels, batches, k, g = check_full(labels, batches, g_star, n_w, num_classes)
    n = len(labels)
    program = full_program(labels, batches, k, n_w, prototype_anchors, tau)
    start = time.perf_counter()
    if g is not None:
        lam, vecs = np.linalg.eigh(g)
        keep = lam > 1e-9 * lam.max()
        factor = vecs[:, keep] * np.sqrt(lam[keep])  # [k, r]
        g_flat = torch.from_numpy(g).reshape(-1)
    else:
        factor = np.zeros((k, 0))
        g_flat = torch.eye(k, dtype=torch.float64).reshape(-1)
    rank_g = factor.shape[1]
    p = default_rank(n, k, rank_g) if rank is None else int(rank)
    if p < max(rank_g, 1):
        raise ValueError(f"rank must be at least rank G_* = {rank_g} (and >= 1), got {p}")
    w_rows = torch.nn.functional.pad(torch.from_numpy(factor), (0, p - rank_g))

    def objective(un: torch.Tensor) -> torch.Tensor:
        return program.torch(torch.cat([(un @ un.T).reshape(-1), (un @ w_rows.T).reshape(-1), g_flat]))

    solutions, iterations = [], 0
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        un = torch.nn.functional.normalize(torch.randn(n, p, generator=gen, dtype=torch.float64), dim=1)
        for _ in range(3):  # a fresh L-BFGS from unit rows each round (the free rows' norms grow otherwise)
            u = un.clone().requires_grad_()
            opt = torch.optim.LBFGS([u], lr=1, max_iter=max_iter, history_size=50, tolerance_grad=1e-14,
                                    tolerance_change=1e-18, line_search_fn="strong_wolfe")

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = objective(torch.nn.functional.normalize(u, dim=1))
                loss.backward()
                return loss

            opt.step(closure)
            iterations += int(opt.state[u].get("n_iter", 0))
            un = torch.nn.functional.normalize(u.detach(), dim=1)
        with torch.no_grad():
            solutions.append((float(objective(un)), un))
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
    note = (f"rank {p}; {len(same)} of {len(seeds)} restarts reach the best objective within the certified gap"
            + ("" if len(same) > 1 else ": no entry-accuracy estimate"))
    return FullSolveResult(gram, cross, value, status, "full", "BM", iterations, 0, min_eig,
                           float(np.abs(np.diag(gram) - 1).max()), cert["certified_gap"], cert["relative_gap"],
                           spread if len(same) > 1 else None, "restarts" if len(same) > 1 else "none", note, None,
                           0.0, solve_s, polish_s, class_mean_gram(gram, labels), within_class_min(gram, labels))
