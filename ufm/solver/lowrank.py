"""The collapsed problem by Burer-Monteiro, with a certificate of optimality; for k where the interior-point
solve is slow (its PSD block has order about 2k).

Factor the class means as unit rows u_a in R^p (p = k + rank G_*, enough for the optimum of the convex
problem), prototypes as the fixed rows w~ of :attr:`Problem.factor` (w~ w~^T = G_*), and minimize the
objective (:attr:`Problem.program`) with L-BFGS in float64 from each seed (:func:`minimize_unit_rows`, the
routine the full problem's :mod:`.lowrank_full` uses too).  The certificate is
:func:`ufm.solver.certificate.certificate`; the entry accuracy reported is the largest entry difference
between the restarts (empirical: an estimate, not a bound).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch

from ufm.eta import Timer

from .certificate import certificate
from .problem import Problem
from .result import SolveResult

__all__ = ["solve_bm", "minimize_unit_rows"]


def minimize_unit_rows(objective: Callable[[torch.Tensor], torch.Tensor], n: int, p: int, seeds: tuple[int, ...],
                       max_iter: int, rounds: int = 3, starts: Sequence[torch.Tensor] = (),
                       tolerance_grad: float = 1e-14, tolerance_change: float = 1e-18
                       ) -> tuple[list[tuple[float, torch.Tensor]], int]:
    """Minimize ``objective(U)`` over ``n`` unit rows ``U [n, p]`` (float64) by L-BFGS on the free rows,
    normalized inside the objective: from each of ``starts`` (given [n, p] points, normalized) and then one
    Gaussian start per seed, ``rounds`` fresh L-BFGS runs of up to ``max_iter`` iterations (each from the
    normalized rows: the free rows' norms drift otherwise and the steps shrink).  Returns ([(objective, unit
    rows U)] per start, in order, and the total number of L-BFGS iterations)."""
    if max_iter < 1 or rounds < 1:
        raise ValueError("minimize_unit_rows needs max_iter >= 1 and rounds >= 1")
    initial = [torch.nn.functional.normalize(torch.as_tensor(s, dtype=torch.float64).reshape(n, p), dim=1)
               for s in starts]
    initial += [torch.nn.functional.normalize(torch.randn(n, p, generator=torch.Generator().manual_seed(int(seed)),
                                                          dtype=torch.float64), dim=1) for seed in seeds]
    if not initial:
        raise ValueError("minimize_unit_rows needs at least one seed or start")
    solutions, iterations = [], 0
    max_eval = max_iter * 5 // 4  # L-BFGS's default cap on objective evaluations per run
    timer = Timer(len(initial) * rounds * max_eval, "objective evaluations", "Burer-Monteiro solve", bound=True)
    for un in initial:
        for _ in range(rounds):
            u = un.clone().requires_grad_()
            opt = torch.optim.LBFGS([u], lr=1, max_iter=max_iter, max_eval=max_eval, history_size=50,
                                    tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                                    line_search_fn="strong_wolfe")

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = objective(torch.nn.functional.normalize(u, dim=1))
                loss.backward()
                timer.step()  # a long solve says up front what it may take (ufm.eta)
                return loss

            opt.step(closure)
            iterations += int(opt.state[u].get("n_iter", 0))
            un = torch.nn.functional.normalize(u.detach(), dim=1)
        with torch.no_grad():
            solutions.append((float(objective(un)), un))
    return solutions, iterations


def solve_bm(problem: Problem, seeds: tuple[int, ...] = (0, 1), max_iter: int = 2000) -> SolveResult:
    """Burer-Monteiro solve of ``problem`` (see the module docstring).  Status "optimal" when the
    certified gap is below 1e-6 of the objective, else "optimal_inaccurate"."""
    if problem.nonnegative:
        raise ValueError("the Burer-Monteiro method does not handle non-negative (ReLU) features; "
                         "use the interior-point or grouped method")
    if not seeds or max_iter < 1:
        raise ValueError("solve_bm needs at least one seed and max_iter >= 1")
    k = problem.k
    start = time.perf_counter()
    if problem.factor is not None:
        w_rows = torch.from_numpy(problem.factor)
        g_flat = torch.from_numpy(problem.g_star).reshape(-1)
    else:
        w_rows = torch.zeros(k, 0, dtype=torch.float64)
        g_flat = torch.eye(k, dtype=torch.float64).reshape(-1)
    p = k + w_rows.shape[1]
    w_rows = torch.nn.functional.pad(w_rows, (0, p - w_rows.shape[1]))
    program = problem.program

    def objective(un: torch.Tensor) -> torch.Tensor:
        return program.torch(torch.cat([(un @ un.T).reshape(-1), (un @ w_rows.T).reshape(-1), g_flat]))

    solutions, iterations = minimize_unit_rows(objective, k, p, tuple(seeds), max_iter)
    value, un = min(solutions, key=lambda s: s[0])
    solve_s = time.perf_counter() - start
    start = time.perf_counter()
    gram = (un @ un.T).numpy()
    cross = (un @ w_rows.T).numpy() if problem.with_prototypes else None
    cert = certificate(problem, gram, cross)
    spread = max(float((s[1] @ s[1].T - un @ un.T).abs().max()) for s in solutions)
    joint = gram if cross is None else np.block([[gram, cross], [cross.T, problem.g_star]])
    min_eig = float(np.linalg.eigvalsh(joint).min())
    polish_s = time.perf_counter() - start
    status = "optimal" if cert["relative_gap"] <= 1e-6 else "optimal_inaccurate"
    note = "" if len(seeds) > 1 else "one restart: no entry-accuracy estimate"
    return SolveResult(gram, cross, value, status, "bm", "BM", iterations, 0, min_eig,
                       float(np.abs(np.diag(gram) - 1).max()), cert["certified_gap"], cert["relative_gap"],
                       spread if len(seeds) > 1 else None, "restarts" if len(seeds) > 1 else "none", note, None,
                       0.0, solve_s, polish_s)
