"""Feasibility check and weak-duality certificate of any collapsed geometry (M, X), in the full k x k space.

With the gradient of the objective at J0 = [[M, X], [X^T, G_*]], take nu_a from the stationarity of the
sphere constraint of class a, nu_a = (sym(grad_M) M + grad_X X^T / 2)_aa, and Omega from that of the fixed
block: Omega G_* = grad_X^T X / 2 fixes it on range(G_*); with N a basis of the null space the symmetric
solution is A - (A - A^T) N N^T (A = grad_X^T X G_*^+ / 2) plus any N Y N^T, taken large so that S >= 0
along N (this does not change <S, J0> since G_* N = 0).  Then S = grad f(J0) - blkdiag(diag nu, Omega) and,
for every feasible J, f(J) >= f(J0) - <S, J0> + tr(J) min(0, lambda_min(S)) with tr J = k (+ k with
prototypes).  The bound is a bound on objective(J0) - optimum only when J0 is feasible, which
:func:`feasibility` checks first.  :func:`gram_certificate` is the same bound for any number n of unit rows
(the full problem: one row per sample, tr J = N + tr G_*).
"""

from __future__ import annotations

import numpy as np
import torch

from .problem import LSEProgram, Problem

__all__ = ["FEASIBILITY_TOL", "feasibility", "certificate", "gram_certificate", "certify"]

FEASIBILITY_TOL = 1e-7


def feasibility(problem: Problem, gram: np.ndarray, cross: np.ndarray | None) -> dict:
    """max |M - M^T|, max |M_aa - 1| and the smallest eigenvalue of the joint Gram [[M, X], [X^T, G_*]]
    (of M alone without prototypes), divided by max(1, its largest eigenvalue) in ``relative_min_eigenvalue``."""
    k = problem.k
    m = np.asarray(gram, dtype=float)
    if m.shape != (k, k):
        raise ValueError(f"gram must be k x k = {k} x {k}, got shape {m.shape}")
    if problem.with_prototypes:
        if cross is None:
            raise ValueError("with prototypes (n_w > 0) the cross-Gram cross = [mu_a . w_c] is needed")
        x = np.asarray(cross, dtype=float)
        if x.shape != (k, k):
            raise ValueError(f"cross must be k x k = {k} x {k}, got shape {x.shape}")
        joint = np.block([[m, x], [x.T, problem.g_star]])
    else:
        joint = m
    if not np.isfinite(joint).all():
        raise ValueError("gram (or cross) has non-finite entries")
    lam = np.linalg.eigvalsh((joint + joint.T) / 2)
    return {"asymmetry": float(np.abs(m - m.T).max()), "max_diag_error": float(np.abs(np.diag(m) - 1).max()),
            "min_eigenvalue": float(lam.min()), "relative_min_eigenvalue": float(lam.min() / max(1.0, lam.max()))}


def certificate(problem: Problem, gram: np.ndarray, cross: np.ndarray | None) -> dict:
    """``certified_gap`` >= objective(gram, cross) - optimum for a feasible (gram, cross) (no check here),
    ``relative_gap`` and ``dual_min_eigenvalue`` (see the module docstring)."""
    return gram_certificate(problem.program, gram, cross, problem.g_star, problem.k)


def gram_certificate(program: LSEProgram, gram: np.ndarray, cross: np.ndarray | None, g_star: np.ndarray | None,
                     k: int) -> dict:
    """The certificate of the module docstring for any program on v = [vec M (n x n), vec X (n x k), vec G_*]
    with unit rows (diag M = 1) next to fixed rows of Gram ``g_star [k, k]`` (None: no prototypes, X = 0 and
    G_* = I carry no weight): the collapsed problem (n = k) and the full one (n = N samples) alike."""
    n = np.asarray(gram).shape[0]
    g = g_star
    g_t = torch.from_numpy(g) if g is not None else None
    m = torch.as_tensor(np.asarray(gram, dtype=float))
    m = ((m + m.T) / 2).requires_grad_()
    x = torch.as_tensor(np.zeros((n, k)) if cross is None else np.asarray(cross, dtype=float)).clone().requires_grad_()
    eye = torch.eye(k, dtype=torch.float64)
    g_flat = (g_t if g_t is not None else eye).reshape(-1)
    value = program.torch(torch.cat([m.reshape(-1), x.reshape(-1), g_flat]))
    grad_m, grad_x = torch.autograd.grad(value, (m, x))
    m, x = m.detach(), x.detach()
    sym = (grad_m + grad_m.T) / 2
    nu = torch.diagonal(sym @ m + 0.5 * grad_x @ x.T)
    top = sym - torch.diag(nu)
    if g_t is not None:
        lam, vecs = torch.linalg.eigh(g_t)
        null_basis = vecs[:, lam <= 1e-9 * lam.max()]
        a = 0.5 * grad_x.T @ x @ torch.linalg.pinv(g_t, hermitian=True, rtol=1e-9)
        omega = a - ((a - a.T) @ null_basis) @ null_basis.T
        omega = (omega + omega.T) / 2
        dual = torch.cat([torch.cat([top, 0.5 * grad_x], 1), torch.cat([0.5 * grad_x.T, -omega], 1)], 0)
        dual[n:, n:] += 10 * torch.linalg.matrix_norm(dual, 2) * (null_basis @ null_basis.T)
        joint = torch.cat([torch.cat([m, x], 1), torch.cat([x.T, g_t], 1)], 0)
    else:
        dual, joint = top, m
    lam_min = float(torch.linalg.eigvalsh((dual + dual.T) / 2).min())
    gap = float((dual * joint).sum()) - float(torch.trace(joint)) * min(0.0, lam_min)
    roundoff = 8 * np.finfo(float).eps * (abs(float(value.detach())) + program.total)  # of evaluating f
    gap = max(gap, 0.0) + roundoff
    return {"certified_gap": gap, "relative_gap": gap / abs(float(value.detach())), "dual_min_eigenvalue": lam_min}


def certify(problem: Problem, gram: np.ndarray, cross: np.ndarray | None, tol: float = FEASIBILITY_TOL) -> dict:
    """Certified suboptimality of a collapsed geometry (any source: a solver, the simulator's G_M and
    cross-Gram).  Refuses (ValueError) a geometry that is not feasible within ``tol``: M symmetric with
    unit diagonal (|error| <= tol) and [[M, X], [X^T, G_*]] PSD (smallest eigenvalue >= -tol max(1,
    largest)), since the bound only holds for feasible points.  Returns the feasibility measures and
    ``objective``, ``certified_gap`` (>= objective - optimum), ``relative_gap``, ``dual_min_eigenvalue``."""
    feas = feasibility(problem, gram, cross)
    problems = []
    if feas["asymmetry"] > tol:
        problems.append(f"max |M - M^T| = {feas['asymmetry']:.2g}")
    if feas["max_diag_error"] > tol:
        problems.append(f"max |M_aa - 1| = {feas['max_diag_error']:.2g}")
    if feas["relative_min_eigenvalue"] < -tol:
        what = "[[M, X], [X^T, G_*]]" if problem.with_prototypes else "M"
        problems.append(f"{what} has eigenvalue {feas['min_eigenvalue']:.2g}")
    if problems:
        raise ValueError(f"gram is not a feasible collapsed geometry within tolerance {tol:g} ({'; '.join(problems)}): "
                         "it is not the Gram of unit class means (next to the prototypes), so no optimality gap can be "
                         "certified; project it onto the feasible set first")
    objective = problem.objective(np.asarray(gram, dtype=float), cross)
    return {**feas, "objective": objective, **certificate(problem, gram, cross)}
