"""Naive reference losses: literal concatenation of prototype copies and explicit loops.

Slow on purpose (O((n + k n_w)^2) rows and Python loops over anchors); they exist so that tests and
benchmarks can check the multiplicity-aware losses in :mod:`ufm.losses` against Eq. (1) as written.
Inputs are single batches: ``h: [n, d]``, ``y: [n]``, ``W: [k, d]``, integer ``n_w``.
"""

from __future__ import annotations

import torch


def augment(
    h: torch.Tensor, y: torch.Tensor, prototypes: torch.Tensor | None, n_w: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of B ∪ W with every copy materialized: ``(z [n + k n_w, d], labels, is_prototype)``."""
    if prototypes is None or n_w == 0:
        return h, y, torch.zeros(len(y), dtype=torch.bool)
    k = prototypes.shape[0]
    z = torch.cat([h, prototypes.repeat_interleave(n_w, dim=0)])
    labels = torch.cat([y, torch.arange(k, device=y.device).repeat_interleave(n_w)])
    is_w = torch.cat([torch.zeros(len(y), dtype=torch.bool), torch.ones(k * n_w, dtype=torch.bool)])
    return z, labels, is_w


def naive_memory_bytes(labels: torch.Tensor, element_size: int) -> int:
    """Bytes of the (anchor, positive, other) terms that :func:`naive_scl_loss` keeps for backward:
    3 x (sum over classes of count^2) x rows x element size, for the materialized ``labels: [rows]``."""
    pairs = int((torch.bincount(labels) ** 2).sum())
    return 3 * pairs * len(labels) * element_size


def _check_memory(labels: torch.Tensor, element_size: int, max_memory_gb: float | None = None) -> None:
    """Refuse sizes whose naive terms would exceed the memory limit (``max_memory_gb``, else
    ``$UFM_MAX_MEMORY_GB``, else the memory available now; see :func:`ufm._checks.check_memory`)."""
    from ufm._checks import check_memory

    check_memory(naive_memory_bytes(labels, element_size),
                 f"the naive reference ({len(labels)} materialized rows)",
                 "lower {n_w} or the batch size {n} (it is a test oracle, not a training loss)", max_memory_gb)


def naive_scl_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None = None,
    n_w: int = 0,
    tau: float = 1.0,
    prototype_anchors: bool = True,
    max_memory_gb: float | None = None,
) -> torch.Tensor:
    """Eq. (1) term by term: for each anchor i, the mean over positives j of log sum_{l != i} exp(s_il - s_ij).

    Sizes estimated to need more than ``max_memory_gb`` (default ``$UFM_MAX_MEMORY_GB``, else the memory
    available now) are refused before anything is allocated."""
    z, labels, is_w = augment(h, y, prototypes, n_w)
    _check_memory(labels, h.element_size(), max_memory_gb)
    s = z @ z.T / tau
    total = 0 * z.sum()  # keeps the graph (zero gradient) when no anchor has a positive
    for i in range(len(z)):
        if is_w[i] and not prototype_anchors:
            continue
        others = [m for m in range(len(z)) if m != i]
        positives = [j for j in others if labels[j] == labels[i]]
        if not positives:
            continue
        # row j of the matrix holds s_il - s_ij for every l != i
        terms = s[i, others].unsqueeze(0) - s[i, positives].unsqueeze(1)
        total = total + torch.logsumexp(terms, dim=1).sum() / len(positives)
    return total


def concatenated_scl_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None = None,
    n_w: int = 0,
    tau: float = 1.0,
    prototype_anchors: bool = True,
) -> torch.Tensor:
    """Eq. (1) the way SupCon code is usually written: materialize the copies, one (n + k n_w)^2 matrix.

    Vectorized (no Python loops), so it is the fair speed baseline for the multiplicity-aware loss; its
    time and memory grow with n_w squared.
    """
    z, labels, is_w = augment(h, y, prototypes, n_w)
    r = len(z)
    eye = torch.eye(r, dtype=torch.bool, device=z.device)
    s = (z @ z.T / tau).masked_fill(eye, float("-inf"))
    log_prob = s - torch.logsumexp(s, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    n_pos = positive.sum(1)
    mean_pos = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(1) / n_pos.clamp_min(1)
    anchors = n_pos > 0
    if not prototype_anchors:
        anchors = anchors & ~is_w.to(z.device)
    return -(mean_pos * anchors).sum()


def naive_class_averaging_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None = None,
    n_w: int = 0,
    tau: float = 1.0,
) -> torch.Tensor:
    """BCL term by term: -log exp(s_ij) / sum_c mean_{l in class c, l != i} exp(s_il), batch anchors only."""
    z, labels, is_w = augment(h, y, prototypes, n_w)
    s = z @ z.T / tau
    total = 0 * z.sum()  # keeps the graph (zero gradient) when no anchor has a positive
    for i in range(len(z)):
        if is_w[i]:
            continue
        positives = [j for j in range(len(z)) if j != i and labels[j] == labels[i]]
        if not positives:
            continue
        den = z.new_zeros(())
        for c in sorted(set(labels.tolist())):
            members = [m for m in range(len(z)) if m != i and labels[m] == c]
            if members:
                den = den + torch.exp(s[i, members]).mean()
        total = total - (s[i, positives] - torch.log(den)).sum() / len(positives)
    return total


def check_against_reference(
    gram: torch.Tensor,
    n: int = 16,
    d: int = 16,
    n_w: int = 50,
    tau: float = 0.5,
    prototype_anchors: bool = True,
    seed: int = 0,
    max_memory_gb: float | None = None,
) -> dict[str, float]:
    """Compare :func:`ufm.losses.scl_loss` with :func:`naive_scl_loss` on one random float64 batch.

    The batch has n unit embeddings in R^d with random labels over the k = len(gram) classes (so some
    classes are missing or singletons) and prototypes realizing ``gram``.  Returns both losses, the
    absolute loss and gradient differences, the wall times and the row counts of the two computations.
    The naive loss refuses sizes above ``max_memory_gb`` (see :func:`naive_scl_loss`).
    """
    import time

    from ufm.geometry import prototypes_from_gram
    from ufm.losses import scl_loss

    gen = torch.Generator().manual_seed(seed)
    w = prototypes_from_gram(gram, d, seed=seed)
    k = w.shape[0]
    y = torch.randint(0, k, (n,), generator=gen)
    h = torch.nn.functional.normalize(torch.randn(n, d, generator=gen, dtype=torch.float64), dim=-1)
    out = {}
    grads = []
    losses = (("ufm", lambda x: scl_loss(x, y, w, n_w, tau, prototype_anchors)),
              ("naive", lambda x: naive_scl_loss(x, y, w, n_w, tau, prototype_anchors, max_memory_gb)))
    for name, fn in losses:
        for _ in range(2):  # the first call pays one-off start-up costs; time the second
            x = h.clone().requires_grad_()
            start = time.perf_counter()
            loss = fn(x)
            (grad,) = torch.autograd.grad(loss, x, allow_unused=True, materialize_grads=True)
            out[f"time_{name}_s"] = time.perf_counter() - start
        out[f"loss_{name}"] = float(loss.detach())
        grads.append(grad)
    out["loss_abs_diff"] = abs(out["loss_ufm"] - out["loss_naive"])
    out["grad_max_abs_diff"] = float((grads[0] - grads[1]).abs().max())
    out["rows_ufm"] = n + k
    out["rows_naive"] = n + k * n_w
    return out


def check_memory_bytes(cfg) -> float:
    """Bytes of ``ufm check`` (a :class:`ufm.spec.CheckConfig`), float64: the naive loss keeps (anchor, positive,
    other) terms for each of the n + k n_w materialized rows (about k (n / k + n_w)^2 positive pairs with random
    labels), the fast loss an (n + k) x (n + k) similarity matrix, plus the materialized copies."""
    k, n, d, n_w = cfg.k, cfg.n, cfg.d, cfg.n_w
    rows = n + k * n_w
    pairs = k * (n / k + n_w) ** 2
    return 8 * (3 * pairs * rows + 3 * rows * rows + 6 * (n + k) ** 2 + 3 * rows * d)


def run_check(cfg, max_memory_gb: float | None = None, tol: float = 1e-9) -> dict:
    """``ufm check``: :func:`check_against_reference` for a :class:`ufm.spec.CheckConfig`, its size refused first
    when estimated above ``max_memory_gb`` (the same limit reaches the naive loss's own check).  Adds ``agree``:
    |loss difference| <= tol max(1, |loss|) and max |gradient difference| <= tol."""
    from ufm._checks import check_memory

    check_memory(check_memory_bytes(cfg), f"the check (k = {cfg.k}, n = {cfg.n}, d = {cfg.d}, n_w = {cfg.n_w}; the "
                 f"naive loss materializes {cfg.n + cfg.k * cfg.n_w} rows)", "lower {n}, {n_w}, {k} or {d}", max_memory_gb)
    result = check_against_reference(cfg.g_star(), cfg.n, cfg.d, cfg.n_w, cfg.tau, cfg.prototype_anchors,
                                     cfg.seed, max_memory_gb)
    result["agree"] = (result["loss_abs_diff"] <= tol * max(1.0, abs(result["loss_naive"]))
                       and result["grad_max_abs_diff"] <= tol)
    return result
