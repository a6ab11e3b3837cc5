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


MAX_NAIVE_BYTES = 2 * 1024**3


def _check_memory(labels: torch.Tensor, element_size: int) -> None:
    """Refuse sizes whose (anchor, positive, other) terms, kept for backward, would exceed MAX_NAIVE_BYTES."""
    pairs = int((torch.bincount(labels) ** 2).sum())
    need = 3 * pairs * len(labels) * element_size
    if need > MAX_NAIVE_BYTES:
        raise ValueError(
            f"the naive reference would need about {need / 1024**3:.1f} GiB for {len(labels)} materialized rows; "
            f"lower n_w or the batch size (it is a test oracle, not a training loss)"
        )


def naive_scl_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None = None,
    n_w: int = 0,
    tau: float = 1.0,
    prototype_anchors: bool = True,
) -> torch.Tensor:
    """Eq. (1) term by term: for each anchor i, the mean over positives j of log sum_{l != i} exp(s_il - s_ij)."""
    z, labels, is_w = augment(h, y, prototypes, n_w)
    _check_memory(labels, h.element_size())
    s = z @ z.T / tau
    total = 0 * z.sum()  # keeps the graph (zero gradient) when no anchor has a positive
    for i in range(len(z)):
        if is_w[i] and not prototype_anchors:
            continue
        others = [l for l in range(len(z)) if l != i]
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
            members = [l for l in range(len(z)) if l != i and labels[l] == c]
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
) -> dict[str, float]:
    """Compare :func:`ufm.losses.scl_loss` with :func:`naive_scl_loss` on one random float64 batch.

    The batch has n unit embeddings in R^d with random labels over the k = len(gram) classes (so some
    classes are missing or singletons) and prototypes realizing ``gram``.  Returns both losses, the
    absolute loss and gradient differences, the wall times and the row counts of the two computations.
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
    for name, fn in (("ufm", scl_loss), ("naive", naive_scl_loss)):
        for _ in range(2):  # the first call pays one-off start-up costs; time the second
            x = h.clone().requires_grad_()
            start = time.perf_counter()
            loss = fn(x, y, w, n_w, tau, prototype_anchors)
            (grad,) = torch.autograd.grad(loss, x, allow_unused=True, materialize_grads=True)
            out[f"time_{name}_s"] = time.perf_counter() - start
        out[f"loss_{name}"] = float(loss.detach())
        grads.append(grad)
    out["loss_abs_diff"] = abs(out["loss_ufm"] - out["loss_naive"])
    out["grad_max_abs_diff"] = float((grads[0] - grads[1]).abs().max())
    out["rows_ufm"] = n + k
    out["rows_naive"] = n + k * n_w
    return out
