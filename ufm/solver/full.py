"""Every sample its own row (no collapse assumed): the certified optimal N x N Gram of a batch-set.

The objective is an :class:`ufm.solver.problem.LSEProgram` on v = [vec G (N x N), vec X (N x k), vec G_*];
the unknowns are G (unit diagonal) and X = Y diag(lam)^(1/2) U^T (G_* = U diag(lam) U^T) with
[[G, Y], [Y^T, I_r]] >= 0, which has an interior point even when G_* is singular.
"""

from __future__ import annotations

import time
import warnings

import cvxpy as cp
import numpy as np

from .grouped import UNPOLISHED_TOLERANCES as TOLERANCES
from ufm.losses import check_copies

from .certificate import gram_certificate
from .newton import Rows, polish_factor
from .problem import LSEProgram, Row, check_solve_size, check_solver_n_w, check_tau_n_w, prototype_gram
from .result import FullSolveResult

__all__ = ["solve_full", "full_objective", "full_program", "class_mean_gram", "within_class_min", "check_full"]


def full_program(labels: np.ndarray, batches: list[np.ndarray], k: int, n_w: float, prototype_anchors: bool,
                 tau: float) -> LSEProgram:
    """The batch-set loss of N samples on v = [vec G, vec X, vec G_*]."""
    check_copies(n_w, prototype_anchors)
    check_solver_n_w(n_w, prototype_anchors)
    n = len(labels)
    x0, g0 = n * n, n * n + n * k
    rows = []
    for batch in batches:
        for i in batch:
            same = [int(j) for j in batch if j != i and labels[j] == labels[i]]
            n_pos = len(same) + n_w
            if n_pos > 0:
                terms = [(int(i) * n + int(j), 1.0) for j in batch if j != i]
                terms += [(x0 + int(i) * k + c, float(n_w)) for c in range(k) if n_w > 0]
                positives = [(int(i) * n + j, 1 / n_pos) for j in same]
                positives += [(x0 + int(i) * k + int(labels[i]), n_w / n_pos)] if n_w > 0 else []
                rows.append(Row(1.0, terms, positives))
        for a in range(k):
            members = [int(j) for j in batch if labels[j] == a]
            n_pos = len(members) + n_w - 1
            if prototype_anchors and n_w > 0 and n_pos > 0:
                terms = [(x0 + int(j) * k + a, 1.0) for j in batch]
                terms += [(g0 + a * k + c, n_w - (c == a)) for c in range(k) if n_w - (c == a) > 0]
                positives = [(x0 + j * k + a, 1 / n_pos) for j in members]
                positives += [(g0 + a * k + a, (n_w - 1) / n_pos)] if n_w != 1 else []
                rows.append(Row(float(n_w), terms, positives))
    if not rows:
        raise ValueError("no anchor has a positive pair in these batches (and n_w = 0): the loss is empty")
    return LSEProgram.from_rows(rows, n * n + n * k + k * k, tau)


def check_full(labels, batches, g_star, n_w, num_classes) -> tuple[np.ndarray, list[np.ndarray], int,
                                                                    np.ndarray | None]:
    labels = np.asarray(labels).astype(np.int64)
    batches = [np.asarray(b).astype(np.int64) for b in batches]
    n = len(labels)
    if n < 2 or not batches:
        raise ValueError("need at least 2 samples (labels) and one batch (batches)")
    if any(((b < 0) | (b >= n)).any() or len(set(b.tolist())) != len(b) for b in batches):
        raise ValueError("each batch must hold distinct sample indices in [0, N)")
    k = num_classes or (int(labels.max()) + 1 if g_star is None else len(np.asarray(g_star)))
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must lie in [0, {k})")
    return labels, batches, k, prototype_gram(g_star, n_w, k)


def full_objective(gram: np.ndarray, cross: np.ndarray | None, labels, batches, tau: float, g_star=None,
                   n_w: float = 0.0, prototype_anchors: bool = True) -> float:
    """The batch-set loss of N samples with Gram ``gram [N, N]`` and cross-Gram ``cross [N, k]``."""
    check_tau_n_w(tau, n_w)
    labels, batches, k, g = check_full(labels, batches, g_star, n_w, None)
    n = len(labels)
    x = np.zeros((n, k)) if cross is None else np.asarray(cross, dtype=float)
    g = np.eye(k) if g is None else g
    program = full_program(labels, batches, k, n_w, prototype_anchors, tau)
    return program.numpy(np.concatenate([np.asarray(gram, dtype=float).ravel(), x.ravel(), g.ravel()]))


def solve_full(labels, batches, tau: float = 0.1, g_star=None, n_w: float = 0.0, prototype_anchors: bool = True,
               solver: str = "CLARABEL", num_classes: int | None = None, polish: bool = True,
               max_memory_gb: float | None = None) -> FullSolveResult:
    """Globally optimal Gram of all N samples (no collapse assumed) for a batch-set: ``labels [N]`` and
    ``batches``, a list of sample-index arrays (e.g. the rows of a :class:`ufm.batching.Batches` with its
    mask applied).  ``gram`` is N x N, ``cross`` N x k.  The certificate that class collapse is (or is not)
    optimal for this batch-set.  Practical up to N of about 60.  Certified by weak duality on the N + k joint
    Gram (:func:`.certificate.gram_certificate`), and with ``polish`` Newton-polished in factor form
    (:mod:`.newton`), which gives the entry-accuracy estimate (``accuracy_source`` "newton"; "none" with a note
    when the polish is refused).  Refuses up front a solve over the memory limit (``max_memory_gb``)."""
    check_tau_n_w(tau, n_w)
    if solver not in TOLERANCES:
        raise ValueError(f"solver {solver!r} is not supported here; choose one of {', '.join(TOLERANCES)}")
    labels, batches, k, g = check_full(labels, batches, g_star, n_w, num_classes)
    n = len(labels)
    check_solve_size(k, len(batches), g is not None, "full", max_memory_gb, samples=n)
    program = full_program(labels, batches, k, n_w, prototype_anchors, tau)
    start = time.perf_counter()
    m = cp.Variable((n, n), symmetric=True)
    constraints = [cp.diag(m) == 1]
    if g is None:
        constraints.append(m >> 0)
        x, v = None, cp.hstack([cp.vec(m, order="C"), np.zeros(n * k), np.eye(k).ravel()])
    else:
        lam, vecs = np.linalg.eigh(g)
        keep = lam > 1e-9 * lam.max()
        factor = np.sqrt(lam[keep])[:, None] * vecs[:, keep].T  # [r, k]
        y = cp.Variable((n, int(keep.sum())))
        x = y @ factor
        constraints.append(cp.bmat([[m, y], [y.T, np.eye(int(keep.sum()))]]) >> 0)
        v = cp.hstack([cp.vec(m, order="C"), cp.vec(x, order="C"), g.ravel()])
    problem = cp.Problem(cp.Minimize(program.cvxpy(v)), constraints)
    try:
        problem.get_problem_data(solver)
        compile_s = time.perf_counter() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=solver, **TOLERANCES[solver])
    except cp.error.SolverError as err:
        raise ValueError(f"the {solver} solver failed on this problem: {err}") from err
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise ValueError(f"{solver} did not find an optimum: status {problem.status}; try solver='SCS' or a larger tau")
    solve_s = time.perf_counter() - start - compile_s
    gram = (np.asarray(m.value) + np.asarray(m.value).T) / 2
    cross = None if x is None else np.asarray(x.value)
    start = time.perf_counter()
    rows = Rows(program, n, k, g, None if g is None else _eigen_factor(g))
    cert = gram_certificate(program, gram, cross, g, k)
    gap, accuracy, source, newton, note = cert["certified_gap"], None, "none", 0, ""
    if polish:
        out = polish_factor(rows, gram, cross, gap)
        if out.accepted:
            gram, cross, gap, accuracy, source, newton = (out.gram, out.cross, out.certified_gap, out.entry_accuracy,
                                                          "newton", out.iterations)
            note = f"Newton-polished in factor form (rank {out.rank})"
        else:
            note = out.note
    else:
        note = "not polished"
    joint = gram if cross is None else np.block([[gram, cross], [cross.T, g]])
    value = program.numpy(rows.values(gram, cross))
    polish_s = time.perf_counter() - start
    rel = gap / abs(value)
    status = "optimal_inaccurate" if rel > 1e-6 else ("optimal" if source == "newton" else problem.status)
    return FullSolveResult(gram, cross, value, status, "full", solver, int(problem.solver_stats.num_iters or 0),
                           newton, float(np.linalg.eigvalsh(joint).min()), float(np.abs(np.diag(gram) - 1).max()), gap,
                           rel, accuracy, source, note, None, compile_s, solve_s, polish_s,
                           class_mean_gram(gram, labels), within_class_min(gram, labels))


def _eigen_factor(g: np.ndarray) -> np.ndarray:
    lam, vecs = np.linalg.eigh(g)
    keep = lam > 1e-9 * lam.max()
    return vecs[:, keep] * np.sqrt(lam[keep])


def class_mean_gram(sample_gram: np.ndarray, labels) -> np.ndarray:
    """G_M (normalized class means) from the N x N Gram of the samples: M_ab = mean_{i in a, j in b} G_ij,
    then scaled to unit diagonal.  ``[k, k]``."""
    labels = np.asarray(labels)
    onehot = np.eye(int(labels.max()) + 1)[labels]
    onehot = onehot / onehot.sum(0)
    m = onehot.T @ np.asarray(sample_gram) @ onehot
    d = 1 / np.sqrt(np.diag(m))
    return m * d[:, None] * d[None, :]


def within_class_min(sample_gram: np.ndarray, labels) -> np.ndarray:
    """The smallest cosine between two samples of each class ``[k]`` (1 for a class that collapses; NaN for a
    label without samples)."""
    labels = np.asarray(labels)
    g = np.asarray(sample_gram)
    return np.array([g[np.ix_(labels == a, labels == a)].min() if (labels == a).any() else np.nan
                     for a in range(int(labels.max()) + 1)])
