"""The collapsed problem for one full batch, reduced by symmetry, polished by Newton and certified.

Classes with equal counts form groups; when G_* is constant on the group blocks an optimal (M, X) is too
(average any optimum over the permutations within groups: the problem is convex and invariant).  The
unknowns are then a few numbers per group pair:

    cm_ij = M_ac (a in group i, c in group j, a != c),   xm_ij = X_ac (a != c),   xd_i = X_aa,

and [[M, X], [X^T, G_*]] >= 0 splits into one condition on group-constant vectors,
[[q_m, Y], [Y^T, I_r]] >= 0 with q_x = Y F (F^T F = q_g, the reduced G_*; the unknowns are Y, not q_x), where
q_m = diag(1 + (s_i - 1) cm_ii) + sqrt(s_i s_j) cm_ij off the diagonal (s_i: group sizes) and likewise
q_x, q_g; and one 2 x 2 condition per group of size >= 2 on the zero-sum directions inside the group,
[[1 - cm_ii, xd_i - xm_ii], [xd_i - xm_ii, 1 - e_i]] >= 0 (e_i: G_* inside group i).
The objective is the collapsed one (:attr:`Problem.program`) written on one representative anchor per
group, each variable standing for its block (terms merged, weights times the group size).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from .conic import ConeProgram
from .newton import check_in_factor_form, polish_result
from .problem import LSEProgram, Problem, Row, block_values, collapsed_rows
from .result import SolveResult

__all__ = ["solve_grouped", "solve_cone", "reduced_program"]

TOLERANCES = {  # before a polish: the Newton start must identify the active faces
    "CLARABEL": dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, tol_ktratio=1e-8, max_iter=500),
    "SCS": dict(eps_abs=1e-9, eps_rel=1e-9, max_iters=200_000),
}
UNPOLISHED_TOLERANCES = {  # without a polish (large problems): as tight as the interior point is fast
    "CLARABEL": dict(tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9, tol_ktratio=1e-7, max_iter=500),
    "SCS": dict(eps_abs=1e-9, eps_rel=1e-9, max_iters=200_000),
}


class _Reduction:
    """Index bookkeeping.  The objective reads the entries w = [cm, xm, xd] (then constants); the unknowns
    are y = [cm, Y (G x r), d] with d_i = xd_i - xm_ii (groups of size >= 2), and w = L y:
    xm_ij = (Y F)_ij / sqrt(s_i s_j) (i != j), xm_ii = ((Y F)_ii - d_i) / s_i, xd_i = xm_ii + d_i
    (xd_i = (Y F)_ii for a group of one)."""

    def __init__(self, problem: Problem, groups: list[np.ndarray]):
        self.problem, self.groups = problem, groups
        k = problem.k
        self.size = np.array([len(g) for g in groups])
        self.group_of = np.zeros(k, dtype=np.int64)
        for i, g in enumerate(groups):
            self.group_of[g] = i
        n_g = len(groups)
        self.cm, self.xm, self.xd = {}, {}, {}
        n = 0
        for i in range(n_g):
            for j in range(i, n_g):
                if i != j or self.size[i] >= 2:
                    self.cm[(i, j)] = self.cm[(j, i)] = n
                    n += 1
        self.n_cm = n
        if problem.with_prototypes:
            for i in range(n_g):
                for j in range(n_g):
                    if i != j or self.size[i] >= 2:
                        self.xm[(i, j)] = n
                        n += 1
                self.xd[i] = n
                n += 1
            within, block = block_values(problem.g_star, groups)
            root = np.sqrt(self.size)
            q_g = np.outer(root, root) * block
            np.fill_diagonal(q_g, 1 + (self.size - 1) * within)
            lam, vecs = np.linalg.eigh(q_g)
            keep = lam > 1e-9 * max(lam.max(), 1.0)
            self.f_mat = np.sqrt(lam[keep])[:, None] * vecs[:, keep].T  # [r, G], F^T F = q_g
            self.within = within
        self.n_w = n  # entries read by the objective
        r = self.f_mat.shape[0] if problem.with_prototypes else 0
        self.y_index = self.n_cm + np.arange(n_g * r).reshape(n_g, r)  # Y, after cm in y
        self.d = {}
        m = self.n_cm + n_g * r
        if problem.with_prototypes:
            for i in range(n_g):
                if self.size[i] >= 2:
                    self.d[i] = m
                    m += 1
        self.n_y = m
        self.consts: list[float] = [1.0]
        self._const_index: dict[float, int] = {1.0: self.n_w}

    def const(self, value: float) -> int:
        value = float(value)
        if value not in self._const_index:
            self._const_index[value] = self.n_w + len(self.consts)
            self.consts.append(value)
        return self._const_index[value]

    def index(self, flat: int) -> int:
        """Index in u = [w, consts] of entry ``flat`` of v = [vec M, vec X, vec G_*]."""
        k = self.problem.k
        part, rest = divmod(int(flat), k * k)
        a, c = divmod(rest, k)
        i, j = self.group_of[a], self.group_of[c]
        if part == 0:
            return self.n_w if a == c else self.cm[(i, j)]
        if part == 1:
            return self.xd[i] if a == c else self.xm[(i, j)]
        return self.const(self.problem.g_star[a, c])

    def lift(self) -> sp.csr_matrix:
        """L [n_w, n_y] with w = L y."""
        rows, cols, vals = [], [], []

        def add(r, c, v):
            rows.append(r)
            cols.append(c)
            vals.append(v)

        for idx in sorted(set(self.cm.values())):
            add(idx, idx, 1.0)
        if self.problem.with_prototypes:
            n_g, s = len(self.groups), self.size
            for (i, j), idx in self.xm.items():
                scale = 1 / np.sqrt(s[i] * s[j]) if i != j else 1 / s[i]
                for p in range(self.f_mat.shape[0]):
                    add(idx, self.y_index[i, p], self.f_mat[p, j] * scale)
                if i == j:
                    add(idx, self.d[i], -1 / s[i])
            for i, idx in self.xd.items():
                for p in range(self.f_mat.shape[0]):
                    add(idx, self.y_index[i, p], self.f_mat[p, i] / s[i])
                if s[i] >= 2:
                    add(idx, self.d[i], 1 - 1 / s[i])
            del n_g
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.n_w, self.n_y))


def _merge(pairs: list[tuple[int, float]]) -> list[tuple[int, float]]:
    out: dict[int, float] = {}
    for j, m in pairs:
        out[j] = out.get(j, 0.0) + m
    return [(j, m) for j, m in out.items() if m != 0]


def reduced_program(problem: Problem, groups: list[np.ndarray]) -> tuple[ConeProgram, _Reduction]:
    """The reduced problem as a :class:`ConeProgram` (see the module docstring)."""
    red = _Reduction(problem, groups)
    rows = []
    for i, g in enumerate(groups):
        for row in collapsed_rows(problem.compositions, problem.n_w, problem.prototype_anchors, classes=[int(g[0])]):
            terms = _merge([(red.index(j), m) for j, m in row.terms])
            positives = _merge([(red.index(j), c) for j, c in row.positives])
            rows.append(Row(row.weight * red.size[i], terms, positives))
    objective = LSEProgram.from_rows(rows, red.n_w + len(red.consts), problem.tau)
    n_g, n_y, s = len(groups), red.n_y, red.size
    root = np.sqrt(s)
    bound = np.ones(n_y)

    def block(n: int, entries) -> tuple[np.ndarray, sp.csr_matrix]:
        """(C0, C) from (row, col, variable of y or None for a constant, coefficient) entries."""
        c0, rows_, cols, vals = np.zeros((n, n)), [], [], []
        for a, b, var, coef in entries:
            if var is None:
                c0[a, b] += coef
            else:
                rows_.append(a * n + b)
                cols.append(var)
                vals.append(coef)
        return c0, sp.csr_matrix((vals, (rows_, cols)), shape=(n * n, n_y))

    # q_m: diagonal 1 + (s_i - 1) cm_ii, off-diagonal sqrt(s_i s_j) cm_ij (cm is first in y and in w)
    q_m = [(i, i, None, 1.0) for i in range(n_g)]
    for i in range(n_g):
        for j in range(n_g):
            if i != j:
                q_m.append((i, j, red.cm[(i, j)], root[i] * root[j]))
            elif s[i] >= 2:
                q_m.append((i, i, red.cm[(i, i)], s[i] - 1.0))
    blocks = []
    if not problem.with_prototypes:
        blocks.append(block(n_g, q_m))
        blocks += [block(1, [(0, 0, None, 1.0), (0, 0, red.cm[(i, i)], -1.0)]) for i in range(n_g) if s[i] >= 2]
    else:
        r = red.y_index.shape[1]
        entries = list(q_m) + [(n_g + p, n_g + p, None, 1.0) for p in range(r)]
        for i in range(n_g):
            for p in range(r):
                entries += [(i, n_g + p, red.y_index[i, p], 1.0), (n_g + p, i, red.y_index[i, p], 1.0)]
                bound[red.y_index[i, p]] = np.sqrt(s[i])
        blocks.append(block(n_g + r, entries))
        for i, d in red.d.items():
            bound[d] = 2.0
            blocks.append(block(2, [(0, 0, None, 1.0), (0, 0, red.cm[(i, i)], -1.0), (1, 1, None, 1 - red.within[i]),
                                    (0, 1, d, 1.0), (1, 0, d, 1.0)]))
    nonneg = np.zeros(0, dtype=np.int64)
    if problem.nonnegative:
        nonneg = np.arange(red.n_w, dtype=np.int64)
    cone = ConeProgram(objective, np.array(red.consts), blocks, np.zeros((0, n_y)), np.zeros(0), bound, nonneg,
                       red.lift())
    return cone, red


def _expand(red: _Reduction, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    k, groups = red.problem.k, red.groups
    y = red.lift() @ y  # the entries w = [cm, xm, xd]
    gram, cross = np.ones((k, k)), None
    for (i, j), idx in red.cm.items():
        gram[np.ix_(groups[i], groups[j])] = y[idx]
    np.fill_diagonal(gram, 1.0)
    if red.problem.with_prototypes:
        cross = np.zeros((k, k))
        for (i, j), idx in red.xm.items():
            cross[np.ix_(groups[i], groups[j])] = y[idx]
        for i, idx in red.xd.items():
            cross[groups[i], groups[i]] = y[idx]
    return gram, cross


MAX_POLISH_UNKNOWNS = 1000  # the KKT polish of the cone program (dense); above it, the factor-form polish


def solve_cone(problem: Problem, groups: list[np.ndarray], method: str, solver: str = "CLARABEL",
               polish: bool = True, certificate=None) -> SolveResult:
    """Interior point on the (reduced) cone program of ``groups``, then a Newton polish: on the KKT system
    of the cone program while it has at most ``MAX_POLISH_UNKNOWNS`` unknowns, else in factor form
    (:mod:`.newton`); none with non-negativity constraints.  Certificate: the reduced one from the polished
    KKT multipliers, else ``certificate(gram, cross)`` -> gap when given."""
    if solver not in TOLERANCES:
        raise ValueError(f"solver {solver!r} is not supported here; choose one of {', '.join(TOLERANCES)}")
    start = time.perf_counter()
    cone, red = reduced_program(problem, groups)
    compile_s = time.perf_counter() - start
    kkt = polish and cone.n_unknowns <= MAX_POLISH_UNKNOWNS
    start = time.perf_counter()
    y0, status, iterations = cone.solve_cvxpy(solver, (TOLERANCES if polish else UNPOLISHED_TOLERANCES)[solver])
    solve_s = time.perf_counter() - start
    start = time.perf_counter()
    y, newton, accuracy, source, note, gap = y0, 0, None, "none", "", None
    if problem.nonnegative and not polish:
        note = "not polished"
    elif problem.nonnegative and cone.n_unknowns > MAX_POLISH_UNKNOWNS:
        note = f"not polished: its KKT system has {cone.n_unknowns} unknowns (> {MAX_POLISH_UNKNOWNS})"
    elif problem.nonnegative:
        y, newton, accuracy, source, note, gap = _polish_nonnegative(cone, y0)
    elif not polish:
        note = "not polished"
    elif kkt:
        for null_tol in (1e-6, 1e-5, 1e-7):  # the numerical null spaces that start Newton
            result = cone.polish(y0, null_tol)
            newton += result.iterations
            if result.accepted:
                break
        note = result.note
        if result.accepted:
            y, accuracy, source = result.y, result.entry_accuracy, "newton"
            gap = cone.certified_gap(y, result.duals, result.eq_dual)
    gram, cross = _expand(red, y)
    objective = cone.f(y)
    if gap is None and not problem.nonnegative:  # (no certificate of the ReLU relaxation without its polish)
        gap = certificate(gram, cross) if certificate is not None else \
            cone.certified_gap(y, *cone._split(np.concatenate([y, cone._initial_duals(y, 1e-6)]))[1:])
    polish_s = time.perf_counter() - start
    min_eig = cone.min_eigenvalue(y)
    rel = None if gap is None else gap / abs(objective)
    ok = status == "optimal" and min_eig >= -1e-8 and (rel is None or rel <= 1e-6)
    out = SolveResult(gram, cross, objective, "optimal" if ok else "optimal_inaccurate", method, solver,
                      iterations, newton, min_eig, 0.0, gap, rel, accuracy, source, note,
                      tuple(int(v) for v in red.size) if method == "grouped" else None, compile_s, solve_s, polish_s)
    if polish and not problem.nonnegative:
        # a KKT-polished answer is checked in factor form; one the KKT polish did not reach (too large) or refused (a
        # degenerate optimum) is polished in factor form from the interior point
        out = check_in_factor_form(problem, out) if source == "newton" else polish_result(problem, out)
    return out


def _polish_nonnegative(cone: ConeProgram, y0: np.ndarray, active_tol: float = 1e-7):
    """KKT polish of the ReLU relaxation with the entries at zero (within ``active_tol``) as equalities:
    accepted when Newton converges, the free entries stay >= 0 and the multipliers of the active ones are
    >= 0 (then the active set is right and weak duality holds).  (y, Newton iterations, accuracy, source,
    note, certified gap)."""
    entries = cone.entries(y0)
    active = cone.nonneg[entries[cone.nonneg] <= active_tol]
    rows = cone.lift[active].toarray()
    fixed = ConeProgram(cone.objective, cone.consts, cone.blocks, np.vstack([cone.eq_a, rows]),
                        np.concatenate([cone.eq_b, np.zeros(len(active))]), cone.bound, np.zeros(0, dtype=np.int64),
                        cone.lift)
    newton, result = 0, None
    for null_tol in (1e-6, 1e-5, 1e-7):
        result = fixed.polish(y0, null_tol)
        newton += result.iterations
        if result.accepted:
            break
    def fallback(why: str):  # the interior point, certified with least-squares multipliers (lambda >= 0)
        _, duals, eq_dual = fixed._split(np.concatenate([y0, fixed._initial_duals(y0, 1e-6)]))
        eq_dual[len(cone.eq_b):] = np.clip(eq_dual[len(cone.eq_b):], 0, None)
        return y0, newton, None, "none", f"ReLU active-set polish refused: {why}", fixed.certified_gap(y0, duals, eq_dual)

    if not result.accepted:
        return fallback(result.note)
    y = result.y
    lam = result.eq_dual[len(cone.eq_b):]
    scale = max(1.0, float(np.abs(result.eq_dual).max(initial=0.0)))
    if cone.entries(y)[cone.nonneg].min(initial=0.0) < -1e-12 or lam.min(initial=0.0) < -1e-9 * scale:
        return fallback("an entry went negative or a multiplier of an entry at zero is negative (wrong active set)")
    eq_dual = result.eq_dual.copy()
    eq_dual[len(cone.eq_b):] = np.clip(lam, 0, None)  # any multipliers >= 0 give a valid lower bound
    gap = fixed.certified_gap(y, result.duals, eq_dual)
    return y, newton, result.entry_accuracy, "newton", f"ReLU: {len(active)} entries at zero (active set)", gap


def solve_grouped(problem: Problem, solver: str = "CLARABEL", polish: bool = True) -> SolveResult:
    """The collapsed problem by symmetry reduction (see the module docstring); ``problem.groups`` must not
    be None (one full batch, G_* constant on the blocks of equal-count classes).  The interior-point
    solution is polished by Newton on the KKT conditions and certified in the reduced space."""
    if problem.groups is None:
        raise ValueError("the symmetry reduction does not apply: it needs one full batch and g_star constant on the "
                         "blocks of equal-count classes; use the interior-point or Burer-Monteiro method")
    return solve_cone(problem, problem.groups, "grouped", solver, polish)
