"""A small convex program: minimize a log-sum-exp program f over y subject to affine PSD blocks and affine
equalities, with an interior-point solve (cvxpy), a Newton polish of its KKT conditions in float64 and a
weak-duality certificate.

    minimize f(u(y)),  u(y) = [L y, constants],   subject to   B_l(y) = C_l0 + sum_i y_i C_li  >= 0 (PSD),   A y = b.

Polish: from the interior-point solution y0, take S_l = N_l T_l N_l^T on the numerical null space N_l of
B_l(y0) and (T_l, lambda) by least squares on stationarity, then Newton on the square system

    grad f(y) - sum_l A_l^*(S_l) - A^T lambda = 0,   A y - b = 0,   (B_l(y) S_l + S_l B_l(y)) / 2 = 0,

(unknowns y, the upper triangles of S_l, lambda), with a backtracking line search on the residual norm.
It converges quadratically where the solution is strictly complementary and non-degenerate (the Jacobian
is then invertible); it is accepted only when the residual is at round-off level, B_l and S_l are PSD to
1e-9 and it does not raise f above the interior-point value by more than that value's own slack.  The
entry-accuracy estimate is the size of one more Newton correction, |J^-1 F|, plus the round-off level of
each residual row (16 eps x sum of weights / tau for the gradient rows) carried through |J^-1| (after
quadratic convergence the error is of the size of the next correction).

Certificate: for S_l >= 0 (projected), L(y) = f(y) - sum <B_l(y), S_l> - lambda . (A y - b) is convex and
below f on the feasible set, so f* >= L(y0) + min_{|y| <= bound} grad L(y0) . (y - y0), with ``bound`` a box
that holds every feasible y; the gap adds the float64 round-off of evaluating f (8 eps (|f| + sum of weights)).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .problem import LSEProgram

__all__ = ["ConeProgram", "Polish"]

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Polish:
    """Outcome of the KKT Newton polish: the polished y, multipliers, Newton iterations, final residual norm,
    entry-accuracy estimate of y, whether it was accepted (else y is the interior-point one), and why not."""

    y: np.ndarray
    duals: list[np.ndarray]
    eq_dual: np.ndarray
    iterations: int
    residual: float
    entry_accuracy: float
    accepted: bool
    note: str = ""


@dataclass(frozen=True, eq=False)
class ConeProgram:
    """``objective`` on u = [L y, consts] (``lift`` L sparse [n_u - n_consts, n_y]: the entries the objective
    reads, linear in the unknowns y); ``blocks``: (C0 [n, n], C sparse [n * n, n_y]) with
    vec B(y) = vec C0 + C y (row-major); ``eq``: (A [m, n_y], b [m]); ``nonneg``: indices i with (L y)_i >= 0
    (interior point and feasibility only: no polish, no certificate with them); ``bound [n_y]``: |y_i| <= bound_i
    for every feasible y (for the certificate)."""

    objective: LSEProgram
    consts: np.ndarray
    blocks: list[tuple[np.ndarray, np.ndarray]]
    eq_a: np.ndarray
    eq_b: np.ndarray
    bound: np.ndarray
    nonneg: np.ndarray
    lift: sp.csr_matrix

    @property
    def n_y(self) -> int:
        return len(self.bound)

    def block_values(self, y: np.ndarray) -> list[np.ndarray]:
        return [c0 + (c @ y).reshape(c0.shape) for c0, c in self.blocks]

    def entries(self, y: np.ndarray) -> np.ndarray:
        """L y: the entries the objective reads."""
        return self.lift @ y

    def f(self, y: np.ndarray) -> float:
        return self.objective.numpy(np.concatenate([self.lift @ y, self.consts]))

    def gradient(self, y: np.ndarray) -> np.ndarray:
        """grad_y f = L^T grad_u f."""
        u = torch.from_numpy(np.concatenate([self.lift @ y, self.consts]))
        return self.lift.T @ self.objective.gradient(u).numpy()[: self.lift.shape[0]]

    def min_eigenvalue(self, y: np.ndarray) -> float:
        """Smallest eigenvalue of the blocks (and smallest constrained-non-negative y_i)."""
        worst = min(np.linalg.eigvalsh((b + b.T) / 2).min() for b in self.block_values(y))
        return float(min(worst, (self.lift @ y)[self.nonneg].min())) if len(self.nonneg) else float(worst)

    @property
    def n_unknowns(self) -> int:
        """Size of the KKT system of the polish."""
        return self.n_y + len(self.eq_b) + sum(n * (n + 1) // 2 for n in self._sizes())

    # ---------------------------------------------------------------- interior point
    def solve_cvxpy(self, solver: str, tolerances: dict) -> tuple[np.ndarray, str, int]:
        """(y, cvxpy status, iterations); raises ValueError when no optimum is found."""
        import cvxpy as cp

        y = cp.Variable(self.n_y)
        u = cp.hstack([self.lift @ y, self.consts]) if len(self.consts) else self.lift @ y
        constraints = []
        for c0, c in self.blocks:
            n = len(c0)
            mat = cp.reshape(c @ y, (n, n), order="C") + c0
            constraints.append((mat + mat.T) / 2 >> 0 if n > 1 else mat >= 0)
        if len(self.eq_b):
            constraints.append(self.eq_a @ y == self.eq_b)
        if len(self.nonneg):
            constraints.append(self.lift[self.nonneg] @ y >= 0)
        problem = cp.Problem(cp.Minimize(self.objective.cvxpy(u)), constraints)
        try:
            with warnings.catch_warnings():  # an inaccurate solve is reported in the result's status
                warnings.simplefilter("ignore", UserWarning)
                problem.solve(solver=solver, **tolerances)
        except cp.error.SolverError as err:
            raise ValueError(f"the {solver} solver failed on this problem: {err}") from err
        if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise ValueError(f"{solver} did not find an optimum: status {problem.status}; "
                             "try solver='SCS' or a larger tau")
        return np.asarray(y.value, dtype=float), problem.status, int(problem.solver_stats.num_iters or 0)

    # ---------------------------------------------------------------- KKT Newton polish
    def _sizes(self) -> list[int]:
        return [len(c0) for c0, _ in self.blocks]

    def _residual(self, z: torch.Tensor, dense: list[torch.Tensor], lift: torch.Tensor) -> torch.Tensor:
        n_y, m = self.n_y, len(self.eq_b)
        y = z[:n_y]
        grad = lift.T @ self.objective.gradient(torch.cat([lift @ y, torch.from_numpy(self.consts)]))[: lift.shape[0]]
        out_eq = []
        out_comp = []
        pos = n_y
        for (c0, _), ct, n in zip(self.blocks, dense, self._sizes()):
            iu = torch.triu_indices(n, n)
            s = torch.zeros(n, n, dtype=z.dtype)
            s = s.index_put((iu[0], iu[1]), z[pos:pos + len(iu[0])])
            s = s + s.T - torch.diag(torch.diagonal(s))
            pos += len(iu[0])
            grad = grad - ct.T @ s.reshape(-1)
            bmat = torch.from_numpy(c0) + (ct @ y).reshape(n, n)
            prod = (bmat @ s + s @ bmat) / 2
            out_comp.append(prod[iu[0], iu[1]])
        lam = z[pos:pos + m]
        if m:
            a = torch.from_numpy(self.eq_a)
            grad = grad - a.T @ lam
            out_eq.append(a @ y - torch.from_numpy(self.eq_b))
        return torch.cat([grad, *out_eq, *out_comp])

    def _initial_duals(self, y0: np.ndarray, null_tol: float) -> np.ndarray:
        """[svec S_1, ..., lambda] from least squares on stationarity with S_l on the null space of B_l(y0)."""
        grad = self.gradient(y0)
        columns, places = [], []
        pos = 0
        for (c0, c), bval in zip(self.blocks, self.block_values(y0)):
            n = len(c0)
            lam, vecs = np.linalg.eigh((bval + bval.T) / 2)
            null = vecs[:, lam <= null_tol * max(1.0, lam.max())]
            r = null.shape[1]
            iu = np.triu_indices(n)
            for p, q in zip(*np.triu_indices(r)):
                e = np.outer(null[:, p], null[:, q])
                e = e + e.T if p != q else e
                columns.append(c.T @ e.ravel())
                places.append((pos, e[iu]))
            pos += len(iu[0])
        for row in self.eq_a:
            columns.append(row)
            places.append(None)
        z = np.zeros(pos + len(self.eq_b))
        if not columns:
            return z
        coef, *_ = np.linalg.lstsq(np.stack(columns, 1), grad, rcond=None)
        eq_index = pos
        for t, place in zip(coef, places):
            if place is None:
                z[eq_index] = t
                eq_index += 1
            else:
                start, svec = place
                z[start:start + len(svec)] += t * svec
        return z

    def _split(self, z: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        y = z[: self.n_y]
        pos, duals = self.n_y, []
        for n in self._sizes():
            iu = np.triu_indices(n)
            s = np.zeros((n, n))
            s[iu] = z[pos:pos + len(iu[0])]
            duals.append(s + s.T - np.diag(np.diag(s)))
            pos += len(iu[0])
        return y, duals, z[pos:]

    def polish(self, y0: np.ndarray, null_tol: float = 1e-6, max_iter: int = 50) -> Polish:
        """Newton on the KKT conditions from the interior-point solution ``y0`` (see the module docstring)."""
        if len(self.nonneg):
            raise ValueError("the polish does not handle non-negativity constraints")
        z = np.concatenate([y0, self._initial_duals(y0, null_tol)])
        dense = [torch.from_numpy(c.toarray()) for _, c in self.blocks]
        lift = torch.from_numpy(self.lift.toarray())

        def residual(zz: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return self._residual(torch.from_numpy(zz), dense, lift).numpy()

        def jacobian(zz: np.ndarray) -> np.ndarray:
            fun = lambda t: self._residual(t, dense, lift)  # noqa: E731
            # vectorized (vmap) for large systems; row by row below (its one-time set-up costs ~0.5 s)
            return torch.autograd.functional.jacobian(fun, torch.from_numpy(zz), vectorize=len(zz) > 200).numpy()

        res = residual(z)
        # round-off level of the residual: the gradient sums terms up to (sum of weights) / tau
        floor = 64 * _EPS * max(1.0, self.objective.total / self.objective.tau)
        iterations = 0
        for iterations in range(1, max_iter + 1):
            norm = np.linalg.norm(res)
            if norm <= floor:
                break
            step = np.linalg.lstsq(jacobian(z), -res, rcond=None)[0]
            t = 1.0
            while True:
                trial = residual(z + t * step)
                if np.linalg.norm(trial) <= (1 - 1e-4 * t) * norm or t < 1e-6:
                    break
                t /= 2
            if np.linalg.norm(trial) >= norm:  # no progress: round-off reached
                break
            z, res = z + t * step, trial
        jac = jacobian(z)
        sv = np.linalg.svd(jac, compute_uv=False)
        cond = sv[0] / sv[-1] if sv[-1] > 0 else np.inf
        y, duals, eq_dual = self._split(z)
        if np.isfinite(cond):
            inverse = np.linalg.inv(jac)
            # one more Newton correction, plus the round-off level of each residual row (16 eps x sum of
            # weights / tau for the gradient rows, 16 eps |z| for the others) carried through J^-1
            row_floor = np.full(len(z), 16 * _EPS * max(1.0, np.abs(z).max()))
            row_floor[: self.n_y] = 16 * _EPS * max(1.0, self.objective.total / self.objective.tau)
            correction = inverse[: self.n_y] @ res
            accuracy = float(np.abs(correction).max() + (np.abs(inverse[: self.n_y]) @ row_floor).max())
        else:
            accuracy = np.inf
        stalled = np.linalg.norm(res) > 1e6 * floor
        worst_b = self.min_eigenvalue(y)
        worst_s = min((float(np.linalg.eigvalsh(s).min()) for s in duals), default=0.0)
        note = ""
        if stalled:
            note = f"Newton did not converge (residual {np.linalg.norm(res):.1e})"
        elif not np.isfinite(cond) or cond > 1e12:
            note = f"the KKT system is singular (condition number {cond:.1e}): degenerate optimum"
        elif worst_b < -1e-9 or worst_s < -1e-9 * max(1.0, max(np.abs(s).max() for s in duals)):
            note = (f"Newton left the cone (min eigenvalue of the blocks {worst_b:.1e}, "
                    f"of the multipliers {worst_s:.1e})")
        elif self.f(y) > self.f(y0) + 1e-9 * abs(self.f(y0)):
            note = "Newton raised the objective"
        accepted = not note
        return Polish(y if accepted else y0, duals, eq_dual, iterations, float(np.linalg.norm(res)),
                      accuracy if accepted else float("nan"), accepted, note)

    # ---------------------------------------------------------------- certificate
    def certified_gap(self, y: np.ndarray, duals: list[np.ndarray], eq_dual: np.ndarray) -> float:
        """f(y) - (a lower bound on the optimum), from multipliers ``duals`` (projected to PSD) and ``eq_dual``."""
        if len(self.nonneg):
            raise ValueError("no certificate with non-negativity constraints")
        proj = []
        for s in duals:
            lam, vecs = np.linalg.eigh((s + s.T) / 2)
            proj.append((vecs * np.clip(lam, 0, None)) @ vecs.T)
        grad = self.gradient(y)
        lag = self.f(y)
        for (c0, c), s, bval in zip(self.blocks, proj, self.block_values(y)):
            grad = grad - c.T @ s.ravel()
            lag -= float((bval * s).sum())
        if len(self.eq_b):
            grad = grad - self.eq_a.T @ eq_dual
            lag -= float(eq_dual @ (self.eq_a @ y - self.eq_b))
        lower = lag - float(grad @ y) - float(np.abs(grad) @ self.bound)
        roundoff = 8 * _EPS * (abs(self.f(y)) + self.objective.total)
        return max(self.f(y) - lower, 0.0) + roundoff
