"""The collapsed problem, validated once, and its objective written once as coefficients.

Every objective in :mod:`ufm.solver` is a *log-sum-exp program* on a flat vector ``v`` of cosines:

    f(v) = sum_r w_r [ log sum_t m_rt e^{v[i_rt] / tau} ] - c . v / tau,

stored as :class:`LSEProgram` (indices ``i``, log-multiplicities ``log m``, row weights ``w``, linear
coefficients ``c``), from which the numpy, torch and cvxpy forms are generated.  For the collapsed problem
``v = [vec M, vec X, vec G_*]`` (each k x k, row-major): M = [mu_a . mu_c], X = [mu_a . w_c].  A class-a
sample anchor of a batch with class counts C has, with s = inner product / tau,

    loss = log( sum_c (C_c - [c = a]) e^{M_ac/tau} + n_w sum_c e^{X_ac/tau} )
           - ((C_a - 1) M_aa + n_w X_aa) / (tau (C_a - 1 + n_w)),

and a copy of w_a (an anchor when ``prototype_anchors``)

    loss = log( sum_c C_c e^{X_ca/tau} + sum_c (n_w - [c = a]) e^{G*_ac/tau} )
           - (C_a X_aa + (n_w - 1)) / (tau (C_a + n_w - 1)).

The batch loss sums C_a sample anchors and n_w prototype anchors of each class; the objective sums the
batches.  Excluded terms are never written as exp(-inf): padding repeats a row's first term with its
multiplicity split exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ufm.choices import MAX_SOLVER_N_W, check_solver_n_w  # noqa: F401 (re-exported)
from ufm.errors import FieldError
from ufm.geometry import check_gram
from ufm.losses import check_copies

__all__ = ["Problem", "LSEProgram", "Row", "collapsed_rows", "class_groups", "block_values", "solve_memory_bytes",
           "check_solve_size", "check_solver_n_w", "MAX_SOLVER_N_W"]


@dataclass(frozen=True)
class Row:
    """One anchor kind: weight x [log sum_{(j, m) in terms} m e^{v_j/tau} - sum_{(j, c) in positives} c v_j/tau]."""

    weight: float
    terms: list[tuple[int, float]]
    positives: list[tuple[int, float]]


@dataclass(frozen=True, eq=False)
class LSEProgram:
    """f(v) = sum_r weight_r logsumexp_t(v[index_rt] / tau + logw_rt) - coef . v / tau; ``v`` has ``n_values``
    entries.  ``index, logw [R, T]``, ``weight [R]``, ``coef [n_values]``."""

    index: np.ndarray
    logw: np.ndarray
    weight: np.ndarray
    coef: np.ndarray
    tau: float
    n_terms: np.ndarray  # [R] terms of each row before padding

    @classmethod
    def from_rows(cls, rows: list[Row], n_values: int, tau: float) -> "LSEProgram":
        width = max((len(r.terms) for r in rows), default=1)
        index = np.zeros((len(rows), width), dtype=np.int64)
        logw = np.zeros((len(rows), width))
        coef = np.zeros(n_values)
        for r, row in enumerate(rows):
            extra = width - len(row.terms)
            (j0, m0), rest = row.terms[0], row.terms[1:]
            entries = [(j0, m0 / (extra + 1))] * (extra + 1) + list(rest)
            index[r] = [j for j, _ in entries]
            logw[r] = np.log([m for _, m in entries])
            for j, c in row.positives:
                coef[j] += row.weight * c
        return cls(index, logw, np.array([r.weight for r in rows], dtype=float), coef, float(tau),
                   np.array([len(r.terms) for r in rows], dtype=np.int64))

    @property
    def total(self) -> float:
        """Sum of the row weights (the number of anchors): objectives are divided by it inside cvxpy."""
        return float(self.weight.sum())

    def torch(self, v: torch.Tensor) -> torch.Tensor:
        """f(v) for a float64 tensor ``v [n_values]`` (differentiable)."""
        logits = v[torch.from_numpy(self.index)] / self.tau + torch.from_numpy(self.logw)
        lse = (torch.from_numpy(self.weight) * torch.logsumexp(logits, 1)).sum()
        return lse - torch.from_numpy(self.coef) @ v / self.tau

    def _scattered(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits ``[R, T]``, the rows' softmax weights x weight / tau scattered to their entries ``[n_values]``)."""
        index = torch.from_numpy(self.index)
        logits = v[index] / self.tau + torch.from_numpy(self.logw)
        p = torch.softmax(logits, 1) * torch.from_numpy(self.weight)[:, None] / self.tau
        return logits, torch.zeros_like(v).index_add(0, index.reshape(-1), p.reshape(-1))

    def gradient(self, v: torch.Tensor) -> torch.Tensor:
        """grad f(v) ``[n_values]``, in closed form (softmax weights scattered to their entries)."""
        return self._scattered(v)[1] - torch.from_numpy(self.coef) / self.tau

    def gradient_magnitude(self, v: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(the gradient with every contribution in absolute value ``[n_values]``, the largest |logit|): what the
        round-off of :meth:`gradient` is measured against."""
        logits, scattered = self._scattered(v)
        return scattered + torch.from_numpy(abs(self.coef)) / self.tau, float(logits.abs().max())

    def numpy(self, v: np.ndarray) -> float:
        """f(v) in float64."""
        with torch.no_grad():
            return float(self.torch(torch.as_tensor(np.asarray(v, dtype=float).ravel())))

    def cvxpy(self, v):
        """f(v) / total as a cvxpy expression of a cvxpy vector ``v [n_values]`` (O(1) whatever the size)."""
        import cvxpy as cp

        width = self.index.shape[1]
        lse = 0
        for n in np.unique(self.n_terms):  # unpadded, one block per row length (each term is an exp cone)
            rows = np.nonzero(self.n_terms == n)[0]
            index = self.index[rows, width - n:]
            logw = self.logw[rows, width - n:].copy()
            logw[:, 0] += np.log(width - n + 1)  # the first term's copies merged back
            logits = cp.reshape(v[index.ravel()], index.shape, order="C") / self.tau + logw
            lse = lse + (self.weight[rows] / self.total) @ cp.log_sum_exp(logits, axis=1)
        return lse - (self.coef / self.total) @ v / self.tau


def check_compositions(compositions, n_w: float) -> np.ndarray:
    """Validated integer class counts of each batch ``[num_batches, k]``."""
    comp = np.atleast_2d(np.asarray(compositions))
    if comp.ndim != 2 or comp.shape[1] < 2:
        raise ValueError(f"compositions must be an integer array [num_batches, k >= 2], got shape {comp.shape}")
    if not np.issubdtype(comp.dtype, np.integer):
        if not (np.isfinite(comp).all() and np.allclose(comp, np.round(comp))):
            raise ValueError("compositions must hold integer class counts")
        comp = np.round(comp).astype(np.int64)
    if (comp < 0).any():
        raise ValueError("compositions must be >= 0")
    if (comp.sum(0) == 0).any():
        absent = np.nonzero(comp.sum(0) == 0)[0].tolist()
        raise ValueError(f"classes {absent} appear in no batch; drop them or add samples")
    if n_w == 0:
        never = np.nonzero(comp.max(0) < 2)[0]
        if len(never):
            raise FieldError(
                f"classes {never.tolist()} never have two samples in one batch: with {{n_w}} = 0 their samples have "
                "no positive pair, so nothing ties them together and SCL alone does not determine their mean; "
                "use {n_w} > 0 or batches with at least two samples of every class"
            )
    return comp.astype(np.int64)


def prototype_gram(g_star, n_w: float, k: int) -> np.ndarray | None:
    """The validated ``[k, k]`` Gram of the prototypes when there are copies (n_w > 0), else None."""
    if n_w <= 0:
        return None
    if g_star is None:
        raise ValueError("prototypes (n_w > 0) need their Gram g_star")
    g = check_gram(g_star).numpy()
    if g.shape != (k, k):
        raise ValueError(f"g_star is {g.shape[0]} x {g.shape[0]} but the problem has k = {k} classes")
    return g


def check_tau_n_w(tau: float, n_w: float) -> None:
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be > 0, got {tau}")
    if not (np.isfinite(n_w) and n_w >= 0):
        raise ValueError(f"n_w must be >= 0, got {n_w}")


def collapsed_rows(comp: np.ndarray, n_w: float, prototype_anchors: bool, classes=None) -> list[Row]:
    """Rows of the collapsed objective on v = [vec M, vec X, vec G_*] for the anchors of ``classes`` (default all)."""
    k = comp.shape[1]
    m0, x0, g0 = 0, k * k, 2 * k * k
    classes = range(k) if classes is None else classes
    rows = []
    for b in range(comp.shape[0]):
        for a in classes:
            cnt = comp[b].astype(float)
            cnt[a] -= 1
            n_pos = comp[b, a] - 1 + n_w
            if comp[b, a] >= 1 and n_pos > 0:
                terms = [(m0 + a * k + c, cnt[c]) for c in range(k) if cnt[c] > 0]
                terms += [(x0 + a * k + c, float(n_w)) for c in range(k) if n_w > 0]
                positives = [(m0 + a * k + a, (comp[b, a] - 1) / n_pos), (x0 + a * k + a, n_w / n_pos)]
                rows.append(Row(float(comp[b, a]), terms, [(j, c) for j, c in positives if c]))
            n_pos = comp[b, a] + n_w - 1
            if prototype_anchors and n_w > 0 and n_pos > 0:
                terms = [(x0 + c * k + a, float(comp[b, c])) for c in range(k) if comp[b, c] > 0]
                terms += [(g0 + a * k + c, n_w - (c == a)) for c in range(k) if n_w - (c == a) > 0]
                positives = [(x0 + a * k + a, comp[b, a] / n_pos), (g0 + a * k + a, (n_w - 1) / n_pos)]
                rows.append(Row(float(n_w), terms, [(j, c) for j, c in positives if c]))
    return rows


def class_groups(counts) -> list[np.ndarray]:
    """Classes with equal counts, as index arrays in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for c, n in enumerate(np.asarray(counts).tolist()):
        groups.setdefault(n, []).append(c)
    return [np.array(v) for v in groups.values()]


def block_values(g: np.ndarray, groups: list[np.ndarray], tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray] | None:
    """(within-group off-diagonal value per group, group x group block values) of a block-constant matrix;
    None when ``g`` is not constant on the blocks."""
    within = np.zeros(len(groups))
    block = np.zeros((len(groups), len(groups)))
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


@dataclass(frozen=True, eq=False)
class Problem:
    """The collapsed problem, validated: class counts of each batch ``compositions [B, k]``, temperature
    ``tau``, ``n_w`` copies of each prototype per batch with Gram ``g_star [k, k]`` (None when n_w = 0),
    whether prototype copies are anchors, and ``nonnegative`` (ReLU features: M, X >= 0 too).  Build it
    with :meth:`Problem.make`; every solver method reads from it."""

    compositions: np.ndarray
    tau: float
    g_star: np.ndarray | None
    n_w: float
    prototype_anchors: bool = True
    nonnegative: bool = False

    @classmethod
    def make(cls, compositions, tau: float = 0.1, g_star=None, n_w: float = 0.0, prototype_anchors: bool = True,
             nonnegative: bool = False) -> "Problem":
        """Validate once: counts (integers >= 0, every class present, a positive pair for every class when
        n_w = 0), tau > 0, n_w >= 0 (0 or >= 1 with prototype anchors: :func:`ufm.losses.check_copies`), G_* (a k x k Gram, given when n_w > 0), non-negative G_* with
        ``nonnegative``."""
        if isinstance(compositions, Problem):
            return compositions
        check_tau_n_w(float(tau), float(n_w))
        check_copies(float(n_w), bool(prototype_anchors))
        check_solver_n_w(float(n_w), bool(prototype_anchors))
        comp = check_compositions(compositions, float(n_w))
        k = comp.shape[1]
        g = prototype_gram(g_star, n_w, k)
        if nonnegative and g is not None and (g < -1e-9).any():
            raise ValueError("g_star has negative cosines, which non-negative (ReLU) features cannot reach next to "
                                 "non-negative prototypes; use a non-negative g_star such as the orthogonal frame")
        return cls(comp, float(tau), g, float(n_w), bool(prototype_anchors), bool(nonnegative))

    @property
    def k(self) -> int:
        return self.compositions.shape[1]

    @property
    def with_prototypes(self) -> bool:
        return self.g_star is not None

    @cached_property
    def factor(self) -> np.ndarray | None:
        """Rows w~_c ``[k, r]`` with w~ w~^T = G_* (r = rank G_*, eigen-factor), or None without prototypes."""
        if self.g_star is None:
            return None
        lam, vecs = np.linalg.eigh(self.g_star)
        keep = lam > 1e-9 * lam.max()
        return vecs[:, keep] * np.sqrt(lam[keep])

    @cached_property
    def program(self) -> LSEProgram:
        """The collapsed objective on v = [vec M, vec X, vec G_*]."""
        rows = collapsed_rows(self.compositions, self.n_w, self.prototype_anchors)
        return LSEProgram.from_rows(rows, 3 * self.k ** 2, self.tau)

    def values(self, gram: np.ndarray, cross: np.ndarray | None) -> np.ndarray:
        """v = [vec M, vec X, vec G_*] (X = 0 and G_* = I when there are no prototypes; they carry no weight)."""
        k = self.k
        x = np.zeros((k, k)) if cross is None else np.asarray(cross, dtype=float)
        g = np.eye(k) if self.g_star is None else self.g_star
        return np.concatenate([np.asarray(gram, dtype=float).ravel(), x.ravel(), g.ravel()])

    def objective(self, gram: np.ndarray, cross: np.ndarray | None = None) -> float:
        """The batch-set loss of collapsed features with class-mean Gram ``gram`` and cross-Gram ``cross``."""
        return self.program.numpy(self.values(gram, cross))

    @cached_property
    def groups(self) -> list[np.ndarray] | None:
        """Classes of equal counts when the symmetry reduction applies (one full batch and G_* constant on the
        blocks of equal-count classes), else None."""
        if self.compositions.shape[0] != 1:
            return None
        groups = class_groups(self.compositions[0])
        if self.g_star is not None and block_values(self.g_star, groups) is None:
            return None
        return groups


def solve_memory_bytes(k: int, batches: int, with_prototypes: bool, method: str, samples: int | None = None,
                       groups: int | None = None) -> float:
    """Estimated peak memory (bytes) of solving a problem of ``k`` classes and ``batches`` batches by ``method``:
    "dense" (only the k x k matrices every method returns: M, X, G_*, the joint Gram and its eigenvalues),
    "grouped" (with ``groups`` of equal counts), "interior", "bm", or "full" / "full-bm" with ``samples`` N.  Coarse upper-bound
    models, for refusing up front what cannot run (:func:`check_solve_size`), not for planning:

    - k x k matrices: 100 k^2 bytes (about a dozen float64 copies);
    - the collapsed objective (interior, bm): about 200 bytes per log-sum-exp term while it is built and
      evaluated, B k^2 terms (4 B k^2 with prototypes);
    - interior point: 128 e^2 bytes, e = n (n + 1) / 2 the entries of its PSD block of order n = k (2k with
      prototypes) (its dense Hessian block with the factorization's workspace; the full solve uses the same;
      the grouped solve has n = G, 2G with prototypes, for G groups);
    - Burer-Monteiro: 880 k p bytes (the factor, its gradient and 50 L-BFGS pairs), p = k (2k with prototypes);
    - the factor-form Newton polish: 32 n^2 bytes, n = min(k p, its limit 6000)."""
    proto = 2 if with_prototypes else 1
    dense = 100.0 * k * k
    if method == "dense":
        return dense
    if method == "grouped":
        n = proto * int(groups or k)
        return dense + 200.0 * batches * int(groups or k) * k * 4 + 128.0 * (n * (n + 1) / 2) ** 2 + \
            32.0 * min(k * proto * k, 6000) ** 2
    terms = 200.0 * batches * k * k * (4 if with_prototypes else 1)
    polish = 32.0 * min(k * proto * k, 6000) ** 2
    if method == "interior":
        n = proto * k
        return dense + terms + 128.0 * (n * (n + 1) / 2) ** 2 + polish
    if method == "bm":
        return dense + terms + 880.0 * k * proto * k + polish
    if method in ("full", "full-bm"):
        n = int(samples or 0)
        rows = n + k
        base = 100.0 * rows * rows + 200.0 * n * (n + (2 * k if with_prototypes else 0))
        if method == "full":
            e = (n + (k if with_prototypes else 0)) * (n + (k if with_prototypes else 0) + 1) / 2
            return base + 128.0 * e * e
        return base + 880.0 * n * (k + k)
    raise ValueError(f"unknown method {method!r}")


_SIZE_FIX = {  # FieldError placeholders: the command line names its flags
    "dense": "lower {k} (the k x k matrices alone need this)",
    "grouped": "use fewer distinct class counts (groups), or {solver=BM}",
    "interior": "use {solver=BM} (Burer-Monteiro, low rank) or fewer classes (the interior point's "
                "PSD block has order k, 2k with prototypes)",
    "bm": "use fewer classes, or one full batch with equal-count groups (the symmetry reduction)",
    "full": "solve fewer samples (N up to ~60 is practical), use the Burer-Monteiro full solve ({solver=BM}), or "
            "drop the full solve ({full=False}) for the collapsed problem",
    "full-bm": "solve fewer samples (lower {k} or {n_major}), or drop the full solve ({full=False}) for the "
               "collapsed problem",
}


def check_solve_size(k: int, batches: int, with_prototypes: bool, method: str, max_memory_gb: float | None = None,
                     samples: int | None = None, groups: int | None = None) -> None:
    """Refuse (ValueError, one line with the estimate, the limit and what to change) a solve whose
    :func:`solve_memory_bytes` estimate exceeds the memory limit (``max_memory_gb``, else
    ``$UFM_MAX_MEMORY_GB``, else the available memory)."""
    from ufm._checks import check_memory

    what = {"dense": f"a collapsed solve with k = {k} classes", "grouped": f"the symmetry-reduced solve (k = {k}, {groups} groups of equal counts)",
            "interior": f"the interior-point solve (k = {k}, {batches} batch(es))",
            "bm": f"the Burer-Monteiro solve (k = {k}, {batches} batch(es))",
            "full": f"the full N x N interior-point solve ({samples} samples)",
            "full-bm": f"the full N x N Burer-Monteiro solve ({samples} samples)"}[method]
    check_memory(solve_memory_bytes(k, batches, with_prototypes, method, samples, groups), what, _SIZE_FIX[method],
                 max_memory_gb)
