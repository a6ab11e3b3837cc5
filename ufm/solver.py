"""Certified optimal geometry of batch SCL with fixed prototypes: a convex program in the Gram matrix.

Collapsed form (every sample of class c equals its unit class mean mu_c).  The unknowns are
M = [mu_a . mu_c] (k x k, diag 1) and, with prototypes W (Gram G_*), X = [mu_a . w_c] (k x k).  The joint
Gram J = [[M, X], [X^T, G_*]] must be PSD (and diag(M) = 1), which is exactly the condition for unit
vectors mu_c to exist next to the fixed w_c.  For a batch with class counts C_b and n_w copies of each
prototype, a class-a sample anchor has, with s = inner product / tau:

    loss = log( sum_c (C_bc - [c = a]) e^{M_ac/tau} + n_w e^{X_ac/tau} )
           - ((C_ba - 1) M_aa + n_w X_aa) / (tau (C_ba - 1 + n_w))

and a copy of w_a (an anchor when ``prototype_anchors``):

    loss = log( sum_c C_bc e^{X_ca/tau} + sum_{c != a} n_w e^{G*_ac/tau} + (n_w - 1) e^{1/tau} )
           - (C_ba X_aa + (n_w - 1)) / (tau (C_ba + n_w - 1)).

The batch loss sums C_ba sample anchors and n_w prototype anchors of each class; the objective sums the
batches.  Each term is a log-sum-exp of affine functions of (M, X) minus an affine function: convex,
over a convex set, so an interior-point solver certifies the global optimum of the collapsed problem.

Numerics: the objective is divided by the number of anchors (so it is O(1) whatever N), excluded terms
are never written as exp(-inf) (padding rows repeat an included term with its weight split exactly),
and tolerances are tight; the result carries the solver's status, the duality gap and the residuals.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import torch

from ufm.geometry import check_gram

__all__ = [
    "SOLVERS",
    "SolveResult",
    "class_groups",
    "collapsed_objective",
    "class_mean_gram",
    "full_objective",
    "solve",
    "solve_collapsed",
    "solve_full",
    "solve_bm",
    "solve_grouped",
]

SOLVERS = ("CLARABEL", "SCS", "BM")
CONIC_SOLVERS = ("CLARABEL", "SCS")
_TOL = {
    "CLARABEL": dict(tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9, tol_ktratio=1e-7, max_iter=500),
    "SCS": dict(eps_abs=1e-9, eps_rel=1e-9, max_iters=200_000),
}


@dataclass(frozen=True)
class SolveResult:
    """Optimal class-mean Gram ``gram`` (k x k), cross-Gram ``cross`` = [mu_a . w_c] (or None), the
    objective (the batch-set loss, not normalized), and how it was certified."""

    gram: np.ndarray
    cross: np.ndarray | None
    objective: float
    status: str
    solver: str
    solve_s: float
    compile_s: float
    residuals: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "objective": self.objective,
            "status": self.status,
            "solver": self.solver,
            "solve_s": self.solve_s,
            "compile_s": self.compile_s,
            "residuals": self.residuals,
            "gram": self.gram.tolist(),
            "cross": None if self.cross is None else self.cross.tolist(),
        }


def _check_compositions(compositions, n_w: float) -> np.ndarray:
    comp = np.atleast_2d(np.asarray(compositions))
    if comp.ndim != 2 or comp.shape[1] < 2:
        raise ValueError(f"compositions must be an integer array [num_batches, k >= 2], got shape {comp.shape}")
    if not np.issubdtype(comp.dtype, np.integer):
        if not np.allclose(comp, np.round(comp)):
            raise ValueError("compositions must hold integer class counts")
        comp = np.round(comp).astype(np.int64)
    if (comp < 0).any():
        raise ValueError("compositions must be >= 0")
    if (comp.sum(0) == 0).any():
        raise ValueError(f"classes {np.nonzero(comp.sum(0) == 0)[0].tolist()} appear in no batch; drop them or add samples")
    if n_w == 0:
        never = np.nonzero(comp.max(0) < 2)[0]
        if len(never):
            raise ValueError(
                f"classes {never.tolist()} never have two samples in one batch: with n_w = 0 their samples have no "
                "positive pair, so nothing ties them together and SCL alone does not determine their mean; "
                "use n_w > 0 or batches with at least two samples of every class"
            )
    return comp


@dataclass(frozen=True)
class _Row:
    """One anchor kind of the objective, on a value matrix V (a Gram block, divided by tau when used):
    weight x [ log sum_{(j, m) in terms} m e^{V[anchor, j] / tau} - sum_{(j, c) in positives} c V[anchor, j] / tau ]."""

    weight: float
    anchor: int
    terms: list[tuple[int, float]]
    positives: list[tuple[int, float]]


def _collapsed_rows(comp: np.ndarray, n_w: float, prototype_anchors: bool) -> tuple[list[_Row], list[_Row]]:
    """Rows on V1 = [M, X] (sample anchors of class a) and V2 = [X^T, G_*] (prototype anchors w_a), both k x 2k."""
    k = comp.shape[1]
    sample_rows, proto_rows = [], []
    for b in range(comp.shape[0]):
        for a in range(k):
            cnt = comp[b].astype(float).copy()
            cnt[a] -= 1
            n_pos = comp[b, a] - 1 + n_w
            if comp[b, a] >= 1 and n_pos > 0:
                terms = [(c, cnt[c]) for c in range(k) if cnt[c] > 0] + [(k + c, n_w) for c in range(k) if n_w > 0]
                positives = [(a, (comp[b, a] - 1) / n_pos), (k + a, n_w / n_pos)]
                sample_rows.append(_Row(float(comp[b, a]), a, terms, positives))
            n_pos = comp[b, a] + n_w - 1
            if prototype_anchors and n_w > 0 and n_pos > 0:
                terms = [(c, float(comp[b, c])) for c in range(k) if comp[b, c] > 0]
                terms += [(k + c, n_w - (c == a)) for c in range(k) if n_w - (c == a) > 0]
                positives = [(a, comp[b, a] / n_pos), (k + a, (n_w - 1) / n_pos)]
                proto_rows.append(_Row(float(n_w), a, terms, positives))
    return sample_rows, proto_rows


def _full_rows(
    labels: np.ndarray, batches: list[np.ndarray], k: int, n_w: float, prototype_anchors: bool
) -> tuple[list[_Row], list[_Row]]:
    """Rows on V1 = [G, X] (N x (N + k), every sample its own row) and V2 = [X^T, G_*] (k x (N + k))."""
    n = len(labels)
    sample_rows, proto_rows = [], []
    for batch in batches:
        for i in batch:
            same = [j for j in batch if j != i and labels[j] == labels[i]]
            n_pos = len(same) + n_w
            if n_pos > 0:
                terms = [(int(j), 1.0) for j in batch if j != i] + [(n + c, n_w) for c in range(k) if n_w > 0]
                positives = [(int(j), 1 / n_pos) for j in same] + [(n + int(labels[i]), n_w / n_pos)]
                sample_rows.append(_Row(1.0, int(i), terms, positives))
        for a in range(k):
            members = [int(j) for j in batch if labels[j] == a]
            n_pos = len(members) + n_w - 1
            if prototype_anchors and n_w > 0 and n_pos > 0:
                terms = [(int(j), 1.0) for j in batch] + [(n + c, n_w - (c == a)) for c in range(k) if n_w - (c == a) > 0]
                positives = [(j, 1 / n_pos) for j in members] + [(n + a, (n_w - 1) / n_pos)]
                proto_rows.append(_Row(float(n_w), a, terms, positives))
    return sample_rows, proto_rows


def _padded(rows: list[_Row], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's terms padded to ``width`` exactly: the first term is repeated with its multiplicity split
    among its copies, so sum_j m_j e^{v_j} is unchanged (no exp(-inf)).  Returns (flat index, log-mult)."""
    index = np.zeros((len(rows), width), dtype=np.int64)
    logw = np.zeros((len(rows), width))
    for r, row in enumerate(rows):
        extra = width - len(row.terms)
        (j0, m0), rest = row.terms[0], row.terms[1:]
        entries = [(j0, m0 / (extra + 1))] * (extra + 1) + rest
        index[r] = [j for j, _ in entries]
        logw[r] = np.log([m for _, m in entries])
    return index, logw


def _objective(blocks: list[tuple[object, list[_Row]]], tau: float):
    """sum over rows of weight x (LSE - positives), divided by the total weight; cvxpy expression.

    ``blocks``: (value matrix V, its rows); V is a cvxpy expression (or constant) of shape [rows, width]."""
    total = sum(r.weight for _, rows in blocks for r in rows)
    lse_terms, linear = [], 0
    for values, rows in blocks:
        if not rows:
            continue
        n_cols = values.shape[1]
        index, logw = _padded(rows, max(len(r.terms) for r in rows))
        anchors = np.array([r.anchor for r in rows])
        flat = cp.vec(values / tau, order="C")
        logits = cp.reshape(flat[(anchors[:, None] * n_cols + index).ravel()], index.shape, order="C") + logw
        weights = np.array([r.weight for r in rows]) / total
        lse_terms.append(weights @ cp.log_sum_exp(logits, axis=1))
        coef = np.zeros(values.shape)
        for r, w in zip(rows, weights):
            for j, c in r.positives:
                coef[r.anchor, j] += w * c
        linear = linear + cp.sum(cp.multiply(coef, values)) / tau
    return cp.sum(cp.hstack(lse_terms)) - linear, total


def _evaluate(blocks: list[tuple[np.ndarray, list[_Row]]], tau: float) -> float:
    """The same objective in numpy (not normalized), for checking solutions."""
    total = 0.0
    for values, rows in blocks:
        for r in rows:
            v = values[r.anchor] / tau
            cols = np.array([j for j, _ in r.terms])
            mult = np.array([m for _, m in r.terms])
            top = v[cols].max()
            lse = top + np.log((mult * np.exp(v[cols] - top)).sum())
            total += r.weight * (lse - sum(c * v[j] for j, c in r.positives))
    return float(total)


def _gram_variables(n_rows: int, g: np.ndarray | None, nonnegative: bool):
    """(Gram variable [n, n] with unit diagonal, cross expression X [n, k] or None, constraints).

    G_* = U diag(lam) U^T is often singular (the ETF has rank k - 1), and then [[G, X], [X^T, G_*]] >= 0
    has no interior point.  With X = Y diag(lam)^(1/2) U^T the condition is [[G, Y], [Y^T, I_r]] >= 0,
    which has one (interior-point solvers need it)."""
    m = cp.Variable((n_rows, n_rows), symmetric=True)
    constraints = [cp.diag(m) == 1]
    x = None
    if g is None:
        constraints.append(m >> 0)
    else:
        lam, vecs = np.linalg.eigh(g)
        keep = lam > 1e-9 * lam.max()
        factor = np.sqrt(lam[keep])[:, None] * vecs[:, keep].T  # [r, k]
        y = cp.Variable((n_rows, int(keep.sum())))
        x = y @ factor
        constraints.append(cp.bmat([[m, y], [y.T, np.eye(int(keep.sum()))]]) >> 0)
    if nonnegative:
        if g is not None and (g < -1e-9).any():
            raise ValueError("G_* has negative cosines, which non-negative (ReLU) features cannot reach next to "
                             "non-negative prototypes; use a non-negative G_* such as the orthogonal frame")
        constraints.append(m >= 0)
        if x is not None:
            constraints.append(x >= 0)
    return m, x, constraints


def _run(objective, constraints, solver: str, verbose: bool) -> tuple[cp.Problem, float, float]:
    problem = cp.Problem(cp.Minimize(objective), constraints)
    start = time.perf_counter()
    try:
        problem.get_problem_data(solver)
        compile_s = time.perf_counter() - start
        with warnings.catch_warnings():  # an inaccurate solve is reported in the result's status
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=solver, verbose=verbose, **_TOL[solver])
    except cp.error.SolverError as err:
        raise ValueError(f"the {solver} solver failed on this problem: {err}") from err
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise ValueError(f"{solver} did not find an optimum: status {problem.status}; try --solver SCS or a larger tau")
    return problem, compile_s, time.perf_counter() - start


def _check_common(tau: float, n_w: float, solver: str, allowed: tuple[str, ...] = CONIC_SOLVERS) -> None:
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be > 0, got {tau}")
    if not (np.isfinite(n_w) and n_w >= 0):
        raise ValueError(f"n_w must be >= 0, got {n_w}")
    if solver not in allowed:
        raise ValueError(f"solver {solver!r} is not supported here; choose one of {', '.join(allowed)}")


def _target(g_star, n_w: float, k: int) -> np.ndarray | None:
    if n_w <= 0:
        return None
    if g_star is None:
        raise ValueError("prototypes (n_w > 0) need their Gram g_star")
    g = check_gram(g_star).numpy()
    if g.shape != (k, k):
        raise ValueError(f"g_star is {g.shape[0]} x {g.shape[0]} but the problem has k = {k} classes")
    return g


def _result(problem, m, x, g, total, solver, compile_s, solve_s) -> SolveResult:
    gram = (np.asarray(m.value) + np.asarray(m.value).T) / 2
    cross = None if x is None else np.asarray(x.value)
    joint = gram if x is None else np.block([[gram, cross], [cross.T, g]])
    residuals = {
        "min_eigenvalue": float(np.linalg.eigvalsh((joint + joint.T) / 2).min()),
        "max_diag_error": float(np.abs(np.diag(gram) - 1).max()),
        "iterations": problem.solver_stats.num_iters,
    }
    return SolveResult(gram, cross, float(problem.value) * total, problem.status, solver, solve_s, compile_s, residuals)


def collapsed_objective(
    gram: np.ndarray,
    cross: np.ndarray | None,
    compositions,
    tau: float,
    g_star: np.ndarray | None = None,
    n_w: float = 0.0,
    prototype_anchors: bool = True,
) -> float:
    """The batch-set loss of collapsed features with class-mean Gram ``gram`` and cross-Gram ``cross``
    (numpy, for checking a solution or a simulator's geometry)."""
    comp = _check_compositions(compositions, n_w)
    k = comp.shape[1]
    m = np.asarray(gram, dtype=float)
    x = np.zeros((k, k)) if cross is None else np.asarray(cross, dtype=float)
    g = np.eye(k) if g_star is None else np.asarray(g_star, dtype=float)
    sample_rows, proto_rows = _collapsed_rows(comp, n_w, prototype_anchors)
    return _evaluate([(np.hstack([m, x]), sample_rows), (np.hstack([x.T, g]), proto_rows)], tau)


def solve_collapsed(
    compositions,
    tau: float = 0.1,
    g_star=None,
    n_w: float = 0.0,
    prototype_anchors: bool = True,
    solver: str = "CLARABEL",
    verbose: bool = False,
    nonnegative: bool = False,
) -> SolveResult:
    """Globally optimal collapsed geometry for the batch compositions ``[num_batches, k]`` (class counts
    of each batch; one row for full batch), temperature ``tau`` and, with ``n_w > 0``, fixed prototypes
    of Gram ``g_star``.  Raises ValueError when the solver does not certify an optimum.

    ``nonnegative`` (ReLU features, the UFM+): also M >= 0 and X >= 0 entrywise.  Gram matrices of
    non-negative vectors form the completely positive cone; PSD and entrywise >= 0 (doubly non-negative)
    is a relaxation of it, exact for matrices of order <= 4 (Maxfield and Minc 1962) and otherwise a lower
    bound on the ReLU optimum, tight whenever the returned Gram is itself realizable by non-negative
    vectors (for instance the orthogonal frame, realized by the standard basis)."""
    _check_common(tau, n_w, solver)
    comp = _check_compositions(compositions, n_w)
    k = comp.shape[1]
    g = _target(g_star, n_w, k)
    m, x, constraints = _gram_variables(k, g, nonnegative)
    sample_rows, proto_rows = _collapsed_rows(comp, n_w, prototype_anchors)
    v1 = cp.hstack([m, x if x is not None else np.zeros((k, k))])
    v2 = cp.hstack([x.T, g]) if x is not None else np.zeros((k, 2 * k))
    objective, total = _objective([(v1, sample_rows), (v2, proto_rows)], tau)
    problem, compile_s, solve_s = _run(objective, constraints, solver, verbose)
    result = _result(problem, m, x, g, total, solver, compile_s, solve_s)
    if not nonnegative:  # the certificate is for the PSD problem (no multipliers for M, X >= 0)
        result.residuals.update(certify(result.gram, result.cross, comp, tau, g, n_w, prototype_anchors))
    return result


def full_objective(
    gram: np.ndarray, cross: np.ndarray | None, labels, batches, tau: float, g_star=None, n_w: float = 0.0,
    prototype_anchors: bool = True,
) -> float:
    """The batch-set loss of N samples with Gram ``gram`` [N, N] and cross-Gram ``cross`` [N, k] (numpy)."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if g_star is None else len(np.asarray(g_star))
    x = np.zeros((len(labels), k)) if cross is None else np.asarray(cross, dtype=float)
    g = np.eye(k) if g_star is None else np.asarray(g_star, dtype=float)
    sample_rows, proto_rows = _full_rows(labels, [np.asarray(b) for b in batches], k, n_w, prototype_anchors)
    return _evaluate([(np.hstack([np.asarray(gram, dtype=float), x]), sample_rows), (np.hstack([x.T, g]), proto_rows)], tau)


def solve_full(
    labels,
    batches,
    tau: float = 0.1,
    g_star=None,
    n_w: float = 0.0,
    prototype_anchors: bool = True,
    solver: str = "CLARABEL",
    num_classes: int | None = None,
) -> SolveResult:
    """Globally optimal Gram of all N samples (no collapse assumed) for a batch-set: ``labels [N]`` and
    ``batches``, a list of sample-index arrays (e.g. the rows of a :class:`ufm.batching.Batches` with its
    mask applied).  ``gram`` is N x N, ``cross`` N x k.  The certificate that class collapse is (or is not)
    optimal for this batch-set.  Practical up to N of about 60."""
    _check_common(tau, n_w, solver)
    labels = np.asarray(labels).astype(np.int64)
    batches = [np.asarray(b).astype(np.int64) for b in batches]
    n = len(labels)
    if n < 2 or not batches:
        raise ValueError("need at least 2 samples and one batch")
    if any(((b < 0) | (b >= n)).any() or len(set(b.tolist())) != len(b) for b in batches):
        raise ValueError("each batch must hold distinct sample indices in [0, N)")
    k = num_classes or (int(labels.max()) + 1 if g_star is None else len(np.asarray(g_star)))
    g = _target(g_star, n_w, k)
    m, x, constraints = _gram_variables(n, g, nonnegative=False)
    sample_rows, proto_rows = _full_rows(labels, batches, k, n_w, prototype_anchors)
    if not sample_rows and not proto_rows:
        raise ValueError("no anchor has a positive pair in these batches (and n_w = 0): the loss is empty")
    v1 = cp.hstack([m, x if x is not None else np.zeros((n, k))])
    v2 = cp.hstack([x.T, g]) if x is not None else np.zeros((k, n + k))
    objective, total = _objective([(v1, sample_rows), (v2, proto_rows)], tau)
    problem, compile_s, solve_s = _run(objective, constraints, solver, False)
    return _result(problem, m, x, g, total, solver, compile_s, solve_s)


def _torch_rows(rows: list[_Row], n_cols: int, n_anchor_rows: int):
    """Padded index, log-multiplicities, weights and positive coefficients of ``rows`` as tensors."""
    index, logw = _padded(rows, max(len(r.terms) for r in rows))
    coef = np.zeros((n_anchor_rows, n_cols))
    for r in rows:
        for j, c in r.positives:
            coef[r.anchor, j] += r.weight * c
    anchors = torch.tensor([r.anchor for r in rows])
    weights = torch.tensor([r.weight for r in rows], dtype=torch.float64)
    return anchors, torch.from_numpy(index), torch.from_numpy(logw), weights, torch.from_numpy(coef)


def _torch_objective(values: torch.Tensor, pack, tau: float) -> torch.Tensor:
    anchors, index, logw, weights, coef = pack
    logits = values[anchors[:, None], index] / tau + logw
    return (weights * torch.logsumexp(logits, dim=1)).sum() - (coef * values).sum() / tau


def solve_bm(
    compositions,
    tau: float = 0.1,
    g_star=None,
    n_w: float = 0.0,
    prototype_anchors: bool = True,
    seeds: tuple[int, ...] = (0, 1),
    max_iter: int = 2000,
) -> SolveResult:
    """The collapsed problem by Burer-Monteiro with a certificate of optimality; for k where the
    interior-point solve is slow (its PSD block has order 2k - 1).

    Factor the class means as unit rows u_a in R^p (p = k + rank G_*, enough for the optimum of the
    convex problem), prototypes as fixed rows w~_c with w~ w~^T = G_*, and minimize the objective with
    L-BFGS (float64).  Certificate: with the gradient of the objective at J0 = [[M, X], [X^T, G_*]],
    nu_a from the stationarity of u_a on its sphere and Omega from that of the fixed block, the dual matrix
    S = grad f(J0) - blkdiag(diag nu, Omega) gives f* >= f(J0) - <S, J0> + tr(J) min(0, lambda_min(S))
    (weak duality; tr J = 2k), i.e. ``residuals["certified_gap"]`` bounds how far f(J0) is above the
    optimum.  ``residuals["entry_spread"]`` is the largest entry difference between the solutions from the
    different ``seeds`` (an empirical accuracy of each entry).  Status "optimal" when the certified gap is
    below 1e-4 of the objective, else "optimal_inaccurate"."""
    _check_common(tau, n_w, "BM", ("BM",))
    comp = _check_compositions(compositions, n_w)
    k = comp.shape[1]
    g = _target(g_star, n_w, k)
    start = time.perf_counter()
    sample_rows, proto_rows = _collapsed_rows(comp, n_w, prototype_anchors)
    g_t = torch.from_numpy(g if g is not None else np.zeros((k, k)))
    pack1 = _torch_rows(sample_rows, 2 * k, k)
    pack2 = _torch_rows(proto_rows, 2 * k, k) if proto_rows else None
    if g is not None:
        lam, vecs = torch.linalg.eigh(g_t)
        keep = lam > 1e-9 * lam.max()
        w_rows = vecs[:, keep] * lam[keep].sqrt()  # [k, r]
    else:
        w_rows = torch.zeros(k, 0, dtype=torch.float64)
    p = k + w_rows.shape[1]
    w_rows = torch.nn.functional.pad(w_rows, (0, p - w_rows.shape[1]))

    def objective(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = _torch_objective(torch.cat([m, x], 1), pack1, tau)
        if pack2 is not None:
            out = out + _torch_objective(torch.cat([x.T, g_t], 1), pack2, tau)
        return out

    solutions = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        u = torch.nn.functional.normalize(torch.randn(k, p, generator=gen, dtype=torch.float64), dim=1).requires_grad_()
        opt = torch.optim.LBFGS([u], lr=1, max_iter=max_iter, history_size=50, tolerance_grad=1e-12,
                                tolerance_change=1e-16, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            un = torch.nn.functional.normalize(u, dim=1)
            loss = objective(un @ un.T, un @ w_rows.T)
            loss.backward()
            return loss

        for _ in range(3):
            opt.step(closure)
        un = torch.nn.functional.normalize(u.detach(), dim=1)
        solutions.append((float(objective(un @ un.T, un @ w_rows.T)), un))
    value, un = min(solutions, key=lambda s: s[0])
    gram = (un @ un.T).numpy()
    cross = (un @ w_rows.T).numpy() if g is not None else None
    residuals = _certificate(torch.from_numpy(gram), None if cross is None else torch.from_numpy(cross), g_t if g is not None else None, objective)
    residuals["entry_spread"] = max(float((s[1] @ s[1].T - un @ un.T).abs().max()) for s in solutions)
    residuals["max_diag_error"] = float(np.abs(np.diag(gram) - 1).max())
    status = "optimal" if residuals["relative_gap"] <= 1e-4 else "optimal_inaccurate"
    return SolveResult(gram, cross, value, status, "BM", time.perf_counter() - start, 0.0, residuals)


def _certificate(m: torch.Tensor, x: torch.Tensor | None, g_t: torch.Tensor | None, objective) -> dict:
    """Weak-duality bound on the suboptimality of a feasible (M, X) for the convex collapsed problem.

    With the gradient of the objective at J0 = [[M, X], [X^T, G_*]], take nu_a from the stationarity of
    the sphere constraint of class a, nu_a = (sym(grad_M) M + grad_X X^T / 2)_aa, and Omega from that of
    the fixed block: Omega G_* = grad_X^T X / 2 fixes it on range(G_*); with N a basis of the null space
    the symmetric solution is A - (A - A^T) N N^T (A = grad_X^T X G_*^+ / 2) plus any N Y N^T, taken
    large so that S >= 0 along N (this does not change <S, J0> since G_* N = 0).  Then
    S = grad f(J0) - blkdiag(diag nu, Omega) and, for every feasible J, f(J) >= f(J0) - <S, J0> +
    tr(J) min(0, lambda_min(S)) with tr J = k (+ k with prototypes)."""
    m = m.clone().requires_grad_()
    zeros = torch.zeros_like(m)
    x = (x if x is not None else zeros).clone().requires_grad_()
    value = objective(m, x)
    grad_m, grad_x = torch.autograd.grad(value, (m, x))
    m, x = m.detach(), x.detach()
    sym = (grad_m + grad_m.T) / 2
    nu = torch.diagonal(sym @ m + 0.5 * grad_x @ x.T)
    top = sym - torch.diag(nu)
    k = len(m)
    if g_t is not None:
        lam, vecs = torch.linalg.eigh(g_t)
        null_basis = vecs[:, lam <= 1e-9 * lam.max()]
        a = 0.5 * grad_x.T @ x @ torch.linalg.pinv(g_t, hermitian=True, rtol=1e-9)
        omega = a - ((a - a.T) @ null_basis) @ null_basis.T
        omega = (omega + omega.T) / 2
        dual = torch.cat([torch.cat([top, 0.5 * grad_x], 1), torch.cat([0.5 * grad_x.T, -omega], 1)], 0)
        dual[k:, k:] += 10 * torch.linalg.matrix_norm(dual, 2) * (null_basis @ null_basis.T)
        joint = torch.cat([torch.cat([m, x], 1), torch.cat([x.T, g_t], 1)], 0)
    else:
        dual, joint = top, m
    lam_min = float(torch.linalg.eigvalsh((dual + dual.T) / 2).min())
    gap = float((dual * joint).sum()) - float(torch.trace(joint)) * min(0.0, lam_min)
    return {"certified_gap": gap, "relative_gap": gap / abs(float(value.detach())), "dual_min_eigenvalue": lam_min}


def certify(
    gram: np.ndarray, cross: np.ndarray | None, compositions, tau: float, g_star=None, n_w: float = 0.0,
    prototype_anchors: bool = True,
) -> dict:
    """Certified suboptimality of a collapsed geometry (any source: a solver, the simulator's G_M and
    cross-Gram): ``certified_gap`` >= objective(gram, cross) - optimum.  See :func:`_certificate`."""
    comp = _check_compositions(compositions, n_w)
    k = comp.shape[1]
    g = _target(g_star, n_w, k)
    sample_rows, proto_rows = _collapsed_rows(comp, n_w, prototype_anchors)
    pack1 = _torch_rows(sample_rows, 2 * k, k)
    pack2 = _torch_rows(proto_rows, 2 * k, k) if proto_rows else None
    g_t = torch.from_numpy(g) if g is not None else None

    def objective(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = _torch_objective(torch.cat([m, x], 1), pack1, tau)
        if pack2 is not None:
            out = out + _torch_objective(torch.cat([x.T, g_t], 1), pack2, tau)
        return out

    m = torch.as_tensor(np.asarray(gram, dtype=float))
    x = torch.as_tensor(np.asarray(cross, dtype=float)) if cross is not None else None
    return _certificate((m + m.T) / 2, x, g_t, objective)


def class_groups(counts) -> list[np.ndarray]:
    """Classes with equal counts, as index arrays in order of first appearance."""
    counts = np.asarray(counts)
    groups: dict[int, list[int]] = {}
    for c, n in enumerate(counts.tolist()):
        groups.setdefault(n, []).append(c)
    return [np.array(v) for v in groups.values()]


def _block_values(g: np.ndarray, groups: list[np.ndarray], tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray] | None:
    """(within-group off-diagonal value per group, group x group block values) of a block-constant matrix;
    None when ``g`` is not constant on the blocks."""
    n_groups = len(groups)
    within = np.zeros(n_groups)
    block = np.zeros((n_groups, n_groups))
    for i, gi in enumerate(groups):
        for j, gj in enumerate(groups):
            sub = g[np.ix_(gi, gj)]
            values = sub[~np.eye(len(gi), dtype=bool)] if i == j else sub.ravel()
            if values.size == 0:
                continue
            if np.ptp(values) > tol:
                return None
            block[i, j] = values.mean()
            if i == j:
                within[i] = values.mean()
    return within, block


def solve_grouped(
    counts,
    tau: float = 0.1,
    g_star=None,
    n_w: float = 0.0,
    prototype_anchors: bool = True,
    solver: str = "CLARABEL",
) -> SolveResult:
    """:func:`solve_collapsed` for one full batch, reduced by symmetry: classes with equal counts form
    groups, and when G_* is constant on the group blocks an optimal (M, X) is too (average any optimum
    over the permutations within groups: the problem is convex and invariant).  The unknowns are then a
    few numbers per group pair, and J >= 0 splits into one 2 x 2 condition per group (vectors summing
    to zero inside a group) and one 2G x 2G condition (group-constant vectors).  Returns the expanded
    k x k solution."""
    _check_common(tau, n_w, solver)
    counts = np.asarray(counts).astype(np.int64).ravel()
    comp = _check_compositions(counts[None], n_w)
    k = len(counts)
    with_w = n_w > 0
    g_full = _target(g_star, n_w, k) if with_w else np.eye(k)
    groups = class_groups(comp[0])
    size = np.array([len(gr) for gr in groups], dtype=float)
    n_of = np.array([comp[0, gr[0]] for gr in groups], dtype=float)
    n_groups = len(groups)
    blocks = _block_values(g_full, groups)
    if blocks is None:
        raise ValueError(
            "G_* is not constant on the blocks of equal-count classes, so the symmetry reduction does not apply; "
            "use solve_collapsed"
        )
    e_within, g_block = blocks
    root = np.sqrt(size)

    start = time.perf_counter()
    cm = cp.Variable((n_groups, n_groups), symmetric=True)  # diag: within-group cosine, off: across groups
    q_m = cp.diag(1 - cp.diag(cm)) + cp.multiply(np.outer(root, root), cm)
    constraints = [q_m >> 0] if not with_w else []
    for i in range(n_groups):
        if size[i] >= 2 and not with_w:
            constraints.append(1 - cm[i, i] >= 0)
    xm = xd = None
    if with_w:
        xm = cp.Variable((n_groups, n_groups))  # diag: mu_a . w_c within a group (a != c), off: across
        xd = cp.Variable(n_groups)  # mu_a . w_a
        q_x = cp.diag(xd - cp.diag(xm)) + cp.multiply(np.outer(root, root), xm)
        q_g = np.diag(1 - e_within) + np.outer(root, root) * (g_block - np.diag(np.diag(g_block)) + np.diag(e_within))
        lam, vecs = np.linalg.eigh(q_g)
        keep = lam > 1e-9 * max(lam.max(), 1.0)
        factor = np.sqrt(lam[keep])[:, None] * vecs[:, keep].T
        y = cp.Variable((n_groups, int(keep.sum())))
        constraints += [q_x == y @ factor, cp.bmat([[q_m, y], [y.T, np.eye(int(keep.sum()))]]) >> 0]
        for i in range(n_groups):
            if size[i] >= 2:
                gap = 1 - e_within[i]
                pair = cp.bmat([[cp.reshape(1 - cm[i, i], (1, 1), order="C"), cp.reshape(xd[i] - xm[i, i], (1, 1), order="C")],
                                [cp.reshape(xd[i] - xm[i, i], (1, 1), order="C"), np.array([[gap]])]])
                constraints.append(pair >> 0)

    rows, weights, linear = [], [], 0
    for i in range(n_groups):
        n_i, s_i = n_of[i], size[i]
        entries = []
        if n_i >= 2:
            entries.append((np.log(n_i - 1), 1.0))
        for j in range(n_groups):
            mult = (s_i - 1) * n_i if j == i else size[j] * n_of[j]
            if mult > 0:
                entries.append((np.log(mult), cm[i, j]))
            if with_w:
                mult_w = (s_i - 1) * n_w if j == i else size[j] * n_w
                if mult_w > 0:
                    entries.append((np.log(mult_w), xm[i, j]))
        if with_w:
            entries.append((np.log(n_w), xd[i]))
        n_pos = n_i - 1 + n_w
        if n_pos > 0:
            rows.append(entries)
            weights.append(s_i * n_i)
            linear = linear + s_i * n_i * ((n_i - 1) + n_w * (xd[i] if with_w else 0)) / (tau * n_pos)
        if with_w and prototype_anchors and n_i + n_w - 1 > 0:
            entries = [(np.log(n_i), xd[i])]
            if n_w > 1:
                entries.append((np.log(n_w - 1), 1.0))
            for j in range(n_groups):
                mult = (s_i - 1) * n_i if j == i else size[j] * n_of[j]
                if mult > 0:
                    entries.append((np.log(mult), xm[j, i]))  # mu_c . w_a, c in group j
                mult_w = (s_i - 1) * n_w if j == i else size[j] * n_w
                if mult_w > 0:
                    entries.append((np.log(mult_w), e_within[i] if j == i else g_block[i, j]))
            rows.append(entries)
            weights.append(s_i * n_w)
            linear = linear + s_i * n_w * (n_i * xd[i] + (n_w - 1)) / (tau * (n_i + n_w - 1))
    total = float(sum(weights))
    lse = [cp.log_sum_exp(cp.hstack([lw + v / tau for lw, v in entries])) for entries in rows]
    objective = cp.sum(cp.hstack([w / total * t for w, t in zip(weights, lse)])) - linear / total
    problem = cp.Problem(cp.Minimize(objective), constraints)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=solver, **_TOL[solver])
    except cp.error.SolverError as err:
        raise ValueError(f"the {solver} solver failed on this problem: {err}") from err
    solve_s = time.perf_counter() - start
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise ValueError(f"{solver} did not find an optimum: status {problem.status}")

    def expand(within: np.ndarray, block: np.ndarray, diag: np.ndarray) -> np.ndarray:
        out = np.zeros((k, k))
        for i, gi in enumerate(groups):
            for j, gj in enumerate(groups):
                out[np.ix_(gi, gj)] = block[i, j] if i != j else within[i]
            out[gi, gi] = diag[i]
        return out

    cmv = np.asarray(cm.value)
    gram = expand(np.diag(cmv), cmv, np.ones(n_groups))
    cross = expand(np.diag(xm.value), np.asarray(xm.value), np.asarray(xd.value)) if with_w else None
    # the eigenvalues of the block-constant J are those of the reduced matrices: exact and cheap
    blocks = [np.asarray(q_m.value)]
    if with_w:
        qx = np.asarray(q_x.value)
        blocks = [np.block([[blocks[0], qx], [qx.T, q_g]])]
        blocks += [np.array([[1 - cmv[i, i], xd.value[i] - xm.value[i, i]], [xd.value[i] - xm.value[i, i], 1 - e_within[i]]])
                   for i in range(n_groups) if size[i] >= 2]
    else:
        blocks += [np.array([[1 - cmv[i, i]]]) for i in range(n_groups) if size[i] >= 2]
    residuals = {
        "min_eigenvalue": float(min(np.linalg.eigvalsh((b + b.T) / 2).min() for b in blocks)),
        "max_diag_error": 0.0,
        "iterations": problem.solver_stats.num_iters,
        "groups": [len(gr) for gr in groups],
    }
    return SolveResult(gram, cross, float(problem.value) * total, problem.status, solver, solve_s, 0.0, residuals)


def class_mean_gram(sample_gram: np.ndarray, labels) -> np.ndarray:
    """G_M (normalized class means) from the N x N Gram of the samples: M_ab = mean_{i in a, j in b} G_ij,
    then scaled to unit diagonal.  ``[k, k]``."""
    labels = np.asarray(labels)
    onehot = np.eye(int(labels.max()) + 1)[labels]
    onehot = onehot / onehot.sum(0)
    m = onehot.T @ np.asarray(sample_gram) @ onehot
    d = 1 / np.sqrt(np.diag(m))
    return m * d[:, None] * d[None, :]


def solve(
    compositions,
    tau: float = 0.1,
    g_star=None,
    n_w: float = 0.0,
    prototype_anchors: bool = True,
    solver: str = "auto",
    reduce: bool = True,
    nonnegative: bool = False,
) -> SolveResult:
    """The optimal collapsed geometry: :func:`solve_grouped` when it applies (one full batch, ``reduce``,
    G_* constant on the blocks of equal-count classes, not ``nonnegative``), else :func:`solve_collapsed`
    with ``solver`` (``auto``: Clarabel up to k = 30 classes, the certified Burer-Monteiro solve
    :func:`solve_bm` above, where the interior-point solve becomes slow)."""
    comp = np.atleast_2d(np.asarray(compositions))
    if solver == "auto":
        solver = "CLARABEL" if comp.shape[-1] <= 30 or nonnegative else "BM"
    if solver == "BM":
        if nonnegative:
            raise ValueError("the BM solver does not handle --relu; use CLARABEL")
        return solve_bm(comp, tau, g_star, n_w, prototype_anchors)
    if nonnegative:
        return solve_collapsed(comp, tau, g_star, n_w, prototype_anchors, solver, nonnegative=True)
    if reduce and comp.shape[0] == 1 and comp.shape[1] >= 2:
        groups = class_groups(comp[0])
        target = check_gram(g_star).numpy() if (n_w > 0 and g_star is not None) else np.eye(comp.shape[1])
        if len(groups) < comp.shape[1] and target.shape == (comp.shape[1],) * 2 and _block_values(target, groups):
            return solve_grouped(comp[0], tau, g_star, n_w, prototype_anchors, "CLARABEL" if solver == "BM" else solver)
    return solve_collapsed(comp, tau, g_star, n_w, prototype_anchors, solver)
