"""Newton polish of a collapsed solution in factor form, at any k where a dense Hessian of its unknowns fits.

From a near-optimal feasible (M, X) (an interior point too large for the KKT polish of :mod:`.conic`, or a
Burer-Monteiro solution) take the rank p of the joint Gram and write every feasible point of that rank as

    M = U U^T,  X = U W~^T,   U = [U_1, L]  ([k, r] and [k, p - r]),   W~ = [F, 0]   (F F^T = G_*, rank r),

with L lower-trapezoidal after a row permutation (the rotations that fix W~ are gauged away, so the unknowns
theta are exactly the free coordinates).  Newton on the Lagrangian Lambda(theta, nu) = f(U) - sum_a nu_a
(|u_a|^2 - 1) / 2 (the unit-row constraints), with its dense Hessian from ``torch.func`` (reverse over
reverse, chunked), converges quadratically to a local optimum of rank p when the optimum is non-degenerate;
it is accepted only when the residual reaches round-off, the bordered Hessian is well conditioned and the
full-space certificate (:func:`.certificate.certificate`) proves the point globally optimal to 1e-10 relative.

Entry-accuracy estimate: with delta = the size of one more Newton correction plus the round-off level of each
gradient entry (:func:`_gradient_floor`: every contribution in absolute value times (16 + |logit| + 2 p / tau) eps;
the fixed G_* block moves no unknown, so the floor does not grow with n_w) carried through |H^-1|, both mapped to
each row u_a, an entry M_ac = u_a . u_c or X_ac = u_a . w_c moves by at most |du_a| + |du_c| (unit rows), so the
estimate is 2 max_a |du_a|_2 (after quadratic convergence the error is of the size of the next correction).  A
Newton that stalls above 10x its round-off level gives no estimate (the next correction no longer bounds the error:
tau = 0.05 stalls at 30-60x).  Checked against 60-digit references (``benchmarks/solver_references.py``).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg
import torch

from .certificate import gram_certificate
from .problem import Problem
from .result import SolveResult

__all__ = ["FactorPolish", "polish_factor", "polish_result", "check_in_factor_form", "factor_unknowns",
           "MAX_FACTOR_UNKNOWNS", "MAX_CHECK_UNKNOWNS"]

_EPS = np.finfo(float).eps
MAX_FACTOR_UNKNOWNS = 6000  # dense Hessian: 8 N^2 bytes (288 MB) and an N^3 / 3 factorization
MAX_CHECK_UNKNOWNS = 1200  # the factor-form second opinion on a KKT polish runs up to this size (about k = 24)
MAX_HESSIAN_WORK = 3e8  # unknowns x log-sum-exp terms: the Hessian costs one gradient per unknown


@dataclass(frozen=True)
class FactorPolish:
    """Outcome: polished ``gram``, ``cross`` (None without prototypes), ``rank`` p, Newton ``iterations``,
    ``entry_accuracy`` (NaN when refused), ``certified_gap``, ``accepted`` and ``note`` (why not)."""

    gram: np.ndarray
    cross: np.ndarray | None
    rank: int
    iterations: int
    entry_accuracy: float
    certified_gap: float
    accepted: bool
    note: str = ""


@dataclass(frozen=True, eq=False)
class Rows:
    """What the polish needs: a program on v = [vec M (n x n), vec X (n x k), vec G_*] with unit rows next to
    fixed rows of Gram ``g_star [k, k]`` (None: no prototypes) and its eigen-factor ``factor [k, r]``; the
    collapsed problem (n = k) and the full one (n = N samples) alike."""

    program: object
    n: int
    k: int
    g_star: np.ndarray | None
    factor: np.ndarray | None

    @classmethod
    def of(cls, problem: "Problem | Rows") -> "Rows":
        if isinstance(problem, Rows):
            return problem
        if problem.nonnegative:
            raise ValueError("the factor polish does not handle non-negativity constraints")
        return cls(problem.program, problem.k, problem.k, problem.g_star, problem.factor)

    @property
    def with_prototypes(self) -> bool:
        return self.g_star is not None

    def values(self, gram, cross) -> np.ndarray:
        x = np.zeros((self.n, self.k)) if cross is None else np.asarray(cross, dtype=float)
        g = np.eye(self.k) if self.g_star is None else self.g_star
        return np.concatenate([np.asarray(gram, dtype=float).ravel(), x.ravel(), g.ravel()])


def factor_unknowns(problem, rank: int) -> int:
    """Number of unknowns (theta and nu) of the factor-form Newton system at rank ``rank``."""
    problem = Rows.of(problem)
    k = problem.n
    r = 0 if problem.factor is None else problem.factor.shape[1]
    q = rank - r
    return k * r + k * q - q * (q - 1) // 2 + k


def _start(problem: Rows, gram: np.ndarray, cross: np.ndarray | None, rank: int):
    """U_1 = X F (F^T F)^-1 and L from the Schur complement M - U_1 U_1^T at rank ``rank`` (gauge-fixed)."""
    k = problem.n
    f = problem.factor
    if f is None:
        u1 = np.zeros((k, 0))
        rest = gram
    else:
        u1 = cross @ f / (f * f).sum(0)  # F's columns are orthogonal (eigen-factor)
        rest = gram - u1 @ u1.T
    q = rank - u1.shape[1]
    lam, vecs = np.linalg.eigh((rest + rest.T) / 2)
    u2 = vecs[:, ::-1][:, :q] * np.sqrt(np.clip(lam[::-1][:q], 0, None))
    if q == 0:
        return u1, np.zeros((k, 0)), np.arange(k)
    # rotate u2 to lower-trapezoidal form in pivoted row order: u2[perm] = R^T Q^T
    _, r_mat, perm = scipy.linalg.qr(u2.T, pivoting=True, mode="economic")
    low = np.zeros((k, q))
    low[perm] = r_mat.T
    return u1, low, perm


def polish_factor(problem, gram: np.ndarray, cross: np.ndarray | None, start_gap: float | None = None,
                  max_iter: int = 30) -> FactorPolish:
    """Newton polish in factor form (see the module docstring) of ``problem`` (a :class:`Problem` or
    :class:`Rows`), trying the ranks at the largest gaps of the joint Gram's spectrum; returns the input
    unchanged (``accepted`` False, with a note) when none passes."""
    problem = Rows.of(problem)
    gram = np.asarray(gram, dtype=float)
    joint = gram if cross is None else np.block([[gram, cross], [cross.T, problem.g_star]])
    lam = np.clip(np.linalg.eigvalsh((joint + joint.T) / 2)[::-1], 0, None)
    r = 0 if problem.factor is None else problem.factor.shape[1]
    top = max(lam[0], 1.0)
    # a rank drops only eigenvalues that are numerically zero next to the start's accuracy (<= 1e-4 of the top)
    candidates = [p for p in range(max(r, 1), min(len(lam), problem.n + r) + 1)
                  if lam[p - 1] > 1e-10 * top and (p == len(lam) or lam[p] <= 1e-4 * top)]
    # the largest relative drops lam_p / lam_(p+1) first (a numerical rank); full rank counts as a drop to 1e-16
    ratio = {p: lam[p - 1] / max(lam[p] if p < len(lam) else 0.0, 1e-16 * top) for p in candidates}
    candidates = sorted(candidates, key=lambda p: -ratio[p])[:3]
    notes = []
    for p in candidates:
        n = factor_unknowns(problem, p)
        if n > MAX_FACTOR_UNKNOWNS:
            notes.append(f"rank {p}: {n} unknowns > {MAX_FACTOR_UNKNOWNS}")
            continue
        if n * problem.program.index.size > MAX_HESSIAN_WORK:
            notes.append(f"rank {p}: {n} unknowns x {problem.program.index.size} terms > {MAX_HESSIAN_WORK:.0e}")
            continue
        out = _polish_rank(problem, gram, cross, p, start_gap, max_iter)
        if out.accepted:
            return out
        notes.append(f"rank {p}: {out.note}")
    why = "; ".join(notes) or "no numerical rank: no eigenvalue of the joint Gram is below 1e-4 of the largest"
    return FactorPolish(gram, cross, 0, 0, float("nan"), float("nan"), False, f"factor polish refused ({why})")


def _polish_rank(problem: Rows, gram, cross, p: int, start_gap: float | None, max_iter: int) -> FactorPolish:
    k, n_proto = problem.n, problem.k
    u1, low, perm = _start(problem, gram, cross, p)
    r, q = u1.shape[1], low.shape[1]
    mask = np.zeros((k, q), dtype=bool)
    for pos, row in enumerate(perm):  # row perm[pos] holds coordinates 0..pos
        mask[row, : min(pos + 1, q)] = True
    flat = torch.from_numpy(np.flatnonzero(mask))  # row-major, as low[mask]
    w_rows = torch.zeros(n_proto, r + q, dtype=torch.float64)
    if problem.factor is not None:
        w_rows[:, :r] = torch.from_numpy(problem.factor)
    g_flat = torch.from_numpy(problem.g_star if problem.g_star is not None else np.eye(n_proto)).reshape(-1)
    program = problem.program
    n_theta = k * r + int(mask.sum())

    def rows(theta: torch.Tensor) -> torch.Tensor:
        first = theta[: k * r].reshape(k, r)
        second = torch.zeros(k * q, dtype=theta.dtype).index_add(0, flat, theta[k * r:]).reshape(k, q)
        return torch.cat([first, second], 1)

    def values(u: torch.Tensor) -> torch.Tensor:
        return torch.cat([(u @ u.T).reshape(-1), (u @ w_rows.T).reshape(-1), g_flat])

    def lagrangian(z: torch.Tensor) -> torch.Tensor:
        u = rows(z[:n_theta])
        nu = z[n_theta:]
        return program.torch(values(u)) - (nu * ((u * u).sum(1) - 1)).sum() / 2

    grad_fn = torch.func.grad(lagrangian)
    # chunks of directions sized so that one vmapped pass holds about 2e7 logits
    hess_fn = torch.func.jacrev(grad_fn, chunk_size=int(max(1, min(256, 2e7 / program.index.size))))
    theta0 = np.concatenate([u1.ravel(), low[mask]])
    u0 = rows(torch.from_numpy(theta0))
    u0 = u0 / u0.norm(dim=1, keepdim=True)
    theta0 = np.concatenate([u0[:, :r].numpy().ravel(), u0[:, r:].numpy()[mask]])
    z = torch.from_numpy(np.concatenate([theta0, np.zeros(k)]))
    # nu from stationarity row by row: grad_u f = nu_a u_a
    gu = torch.func.grad(lambda t: lagrangian(torch.cat([t, torch.zeros(k, dtype=t.dtype)])))(z[:n_theta])
    full_grad = torch.zeros(k, r + q, dtype=torch.float64)
    full_grad[:, :r] = gu[: k * r].reshape(k, r)
    full_grad[:, r:] = torch.zeros(k * q, dtype=torch.float64).index_add(0, flat, gu[k * r:]).reshape(k, q)
    # the masked-out coordinates are gauge-fixed (not unknowns); use the rows' own coordinates for nu
    uu = rows(z[:n_theta])
    nu0 = ((full_grad * uu).sum(1) / (uu * uu).sum(1)).detach()
    z = torch.cat([z[:n_theta], nu0])
    def floor_of(z: torch.Tensor) -> np.ndarray:
        u = rows(z[:n_theta]).detach()
        return _gradient_floor(program, values(u), u, w_rows, mask, r, len(z))

    floor = 4 * float(np.linalg.norm(floor_of(z)))
    f0 = program.numpy(_values(problem, gram, cross))
    iterations = 0
    res = grad_fn(z)
    for iterations in range(1, max_iter + 1):
        norm = float(res.norm())
        if norm <= floor:
            break
        hess = hess_fn(z).numpy()
        try:  # an ill-conditioned step is judged by its progress and the final check, not by a warning per step
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                step = torch.from_numpy(scipy.linalg.solve(hess, -res.numpy(), assume_a="sym"))
        except (np.linalg.LinAlgError, ValueError):
            return _refuse(gram, cross, p, iterations, "singular Hessian")
        t = 1.0
        while True:
            trial = grad_fn(z + t * step)
            if float(trial.norm()) <= (1 - 1e-4 * t) * norm or t < 1e-6:
                break
            t /= 2
        if float(trial.norm()) >= norm:  # no progress: round-off reached
            break
        z, res = z + t * step, trial
    hess = hess_fn(z).numpy()
    norm = float(res.norm())
    if norm > 10 * floor:  # stalled above round-off: one more correction no longer bounds the error
        return _refuse(gram, cross, p, iterations, f"Newton stalled above round-off (residual {norm:.1e}, "
                                                   f"round-off {floor:.1e}): entries not bounded")
    lam = np.abs(np.linalg.eigvalsh((hess + hess.T) / 2))  # the Hessian of the Lagrangian is symmetric
    cond = lam.max() / lam.min() if lam.min() > 0 else np.inf
    if cond > 1e12:
        return _refuse(gram, cross, p, iterations, f"singular Hessian (condition number {cond:.1e})")
    inverse = np.linalg.inv(hess)
    row_floor = floor_of(z)
    delta = np.abs(inverse @ res.numpy())[:n_theta] + (np.abs(inverse) @ row_floor)[:n_theta]
    du = rows(torch.from_numpy(delta)).numpy()
    u = rows(z[:n_theta]).detach()
    u = u / u.norm(dim=1, keepdim=True)
    accuracy = float(2 * np.linalg.norm(du, axis=1).max() + 8 * _EPS * (r + q))
    new_gram = (u @ u.T).numpy()
    new_gram = (new_gram + new_gram.T) / 2
    np.fill_diagonal(new_gram, 1.0)
    new_cross = (u @ w_rows.T).numpy() if problem.with_prototypes else None
    cert = gram_certificate(program, new_gram, new_cross, problem.g_star, n_proto)
    value = program.numpy(_values(problem, new_gram, new_cross))
    if cert["relative_gap"] > 1e-10:
        return _refuse(gram, cross, p, iterations, f"not certified (relative gap {cert['relative_gap']:.1e}): "
                                                   "not the global optimum at this rank")
    if value > f0 + (start_gap or 0.0) + 1e-12 * abs(f0):
        return _refuse(gram, cross, p, iterations, "Newton raised the objective")
    return FactorPolish(new_gram, new_cross, p, iterations, accuracy, cert["certified_gap"], True)


def _gradient_floor(program, v: torch.Tensor, u: torch.Tensor, w_rows: torch.Tensor, mask: np.ndarray, r: int,
                    size: int) -> np.ndarray:
    """Round-off level of each entry of the Lagrangian's gradient ``[size]`` (theta, then nu) at rows ``u [n, p]``
    (``v`` their values [vec M, vec X, vec G_*]): the gradient with every contribution taken in absolute value,
    times (16 + the largest |logit| + 2 p / tau) eps (a softmax weight is exact to that relative to itself, p the
    rank: an inner product of unit rows of p coordinates is exact to p eps).  The fixed prototype block (G_*)
    contributes nothing: many copies make its softmax weights large but they move no unknown, so the floor does not
    grow with n_w."""
    g, largest_logit = program.gradient_magnitude(v)
    n, k = u.shape[0], w_rows.shape[0]
    a = g[: n * n].reshape(n, n)
    b = g[n * n: n * n + n * k].reshape(n, k)
    per_row = (a + a.T) @ u.abs() + b @ w_rows.abs()
    # a softmax weight is exact to 2 x its logit's error relative to itself: the logit's own rounding (|logit| eps)
    # and that of the inner product u_a . u_c of unit rows ((r + q) eps), over tau
    scale = (16 + largest_logit + 2 * u.shape[1] / program.tau) * _EPS
    out = np.full(size, 16 * _EPS)
    n_theta = n * r + int(mask.sum())
    out[:n_theta] = scale * np.concatenate([per_row[:, :r].numpy().ravel(), per_row[:, r:].numpy()[mask]])
    return out


def _values(problem: Rows, gram, cross) -> np.ndarray:
    return problem.values(gram, cross)


def _refuse(gram, cross, p, iterations, note) -> FactorPolish:
    return FactorPolish(gram, cross, p, iterations, float("nan"), float("nan"), False, note)


def polish_result(problem: Problem, result: SolveResult) -> SolveResult:
    """``result`` polished in factor form when accepted (gram, cross, objective, certificate, entry accuracy
    from Newton, ``newton_iterations``, a note naming the rank); else ``result`` with the refusal in its note."""
    start = time.perf_counter()
    out = polish_factor(problem, result.gram, result.cross, result.certified_gap)
    return _with_polish(problem, result, out, time.perf_counter() - start)


def _with_polish(problem: Problem, result: SolveResult, out: FactorPolish, spent: float) -> SolveResult:
    """``result`` replaced by the factor polish ``out`` when accepted, else with its refusal noted."""
    if not out.accepted:
        note = "; ".join(n for n in (result.note, out.note) if n)
        return replace(result, note=note, polish_s=result.polish_s + spent)
    objective = problem.objective(out.gram, out.cross)
    joint = out.gram if out.cross is None else np.block([[out.gram, out.cross], [out.cross.T, problem.g_star]])
    return replace(result, gram=out.gram, cross=out.cross, objective=objective, status="optimal",
                   newton_iterations=out.iterations, min_eigenvalue=float(np.linalg.eigvalsh(joint).min()),
                   max_diag_error=float(np.abs(np.diag(out.gram) - 1).max()), certified_gap=out.certified_gap,
                   relative_gap=out.certified_gap / abs(objective), entry_accuracy=out.entry_accuracy,
                   accuracy_source="newton", note=f"Newton-polished in factor form (rank {out.rank})",
                   polish_s=result.polish_s + spent)


def check_in_factor_form(problem: Problem, result: SolveResult) -> SolveResult:
    """A second opinion on a KKT-polished ``result`` (:mod:`.conic`): the same point polished in factor form, whose
    entry estimate carries the gradient's round-off coordinate by coordinate.  The KKT estimate can understate
    the error where the optimum is nearly degenerate (tau = 0.05, n_w = 100: 1.1e-6 reported, 2.4e-5 true, against
    a 60-digit reference), so the factor-form result is returned when it is accepted, with a note when the two
    differ by more than their estimates together; when the factor form is refused, ``result`` without an entry bound
    (never seen in the test suite's solves, but that is where the KKT estimate is least to be trusted).  Only while
    the factor form has at most ``MAX_CHECK_UNKNOWNS`` unknowns (its dense Hessian costs one gradient per unknown);
    above, ``result`` unchanged."""
    rank = problem.k + (0 if problem.factor is None else problem.factor.shape[1])
    if factor_unknowns(problem, rank) > MAX_CHECK_UNKNOWNS:
        return result
    start = time.perf_counter()
    out = polish_factor(problem, result.gram, result.cross, result.certified_gap)
    checked = _with_polish(problem, result, out, time.perf_counter() - start)
    if not out.accepted:
        # refused where the KKT estimate is least to be trusted (a near-degenerate optimum): no bound is given
        # (status optimal_inaccurate; `auto` then tries Burer-Monteiro, `ufm solve` refuses to print it)
        return replace(checked, status="optimal_inaccurate", entry_accuracy=None, accuracy_source="none",
                       note=f"{checked.note}; the KKT polish's entry estimate is not trusted without it")
    moved = float(np.abs(checked.gram - result.gram).max())
    if result.cross is not None:
        moved = max(moved, float(np.abs(checked.cross - result.cross).max()))
    if moved > (result.entry_accuracy or 0.0) + checked.entry_accuracy:
        note = (f"the KKT polish's entry estimate {result.entry_accuracy:.1e} understated its error ({moved:.1e}, "
                f"against the factor form)")
        checked = replace(checked, note=f"{checked.note}; {note}")
    return checked
