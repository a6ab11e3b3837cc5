"""Batch losses over unit-norm embeddings: SCL with fixed prototypes, its class-averaging variant, and CE.

Notation (Kini et al. 2023, "Supervised-contrastive loss learns orthogonal frames and batching
matters", and the fixed-prototype follow-up): a batch holds n embeddings ``h: [..., n, d]`` with
labels ``y: [..., n]``; fixed prototypes ``W: [k, d]`` (or ``[..., k, d]``) enter the batch as
``n_w`` copies each; ``tau`` is the temperature, so a similarity is ``s_il = z_i . z_l / tau``.

SCL, Eq. (1), on the augmented batch A = B ∪ {n_w copies of each w_c}:

    L = sum_{i in anchors} 1/(n_{A,y_i} - 1) sum_{j in A, j != i, y_j = y_i}
            log sum_{l in A, l != i} exp(s_il - s_ij)

where n_{A,c} = (number of class-c samples in B) + n_w.  Anchors are all of A (``prototype_anchors``,
each of the n_w identical copies of a prototype is an anchor) or the batch samples only.  An anchor
with no positive is skipped, as in Eq. (1).

Copies are multiplicities, never rows: every function here costs O(n^2 d + n k d + k^2 d) whatever
n_w is, and ``n_w`` may be a tensor ``[...]`` (one value per stacked run), as may ``tau`` (a learnable
temperature gets its exact gradient).  Large batches (one R x R tensor of the stack over FULL_BYTES)
are computed over row blocks, so their memory is O(R (d + k)) plus one reused block.

All losses are *sums* over anchors, differentiable, on any device and float dtype, with optional
leading stack dims.  ``mask: [..., n]`` (bool) marks the rows of a padded batch that exist; masked rows
are neither anchors, positives nor negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ufm.choices import LOSS_OPTIONS, check_copies
from ufm.errors import FieldError, literal
from ufm._checks import Scalar
from ufm._loss_kernels import (_anchor_sum, _anchor_weight, _as_param, _augment, _check_bool_rows, _logits,
                               _lse_pos_chunked, _positive_counts, _row_shift, _validate, chunked)

__all__ = [
    "scl_loss",
    "class_averaging_loss",
    "ce_fixed_classifier_loss",
    "prop1_loss",
    "limit_loss",
    "LOSSES",
    "LossSpec",
    "batch_loss",
]



def scl_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None = None,
    n_w: Scalar = 0,
    tau: Scalar = 1.0,
    prototype_anchors: bool = True,
    *,
    num_classes: int | None = None,
    mask: torch.Tensor | None = None,
    batch_anchors: torch.Tensor | None = None,
    require_unit_norm: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """Batch SCL with ``n_w`` copies of each fixed prototype (Eq. 1), summed over anchors.

    Args:
        h: embeddings ``[..., n, d]`` (unit rows unless ``require_unit_norm=False``).
        y: integer labels ``[n]`` or ``[..., n]``.
        prototypes: ``W: [k, d]`` or ``[..., k, d]`` unit rows, or None for plain SCL.
        n_w: copies of each prototype (a multiplicity, may be fractional), scalar or ``[...]``.
        tau: temperature > 0, scalar or ``[...]``.
        prototype_anchors: prototype copies are anchors too (True) or only positives/negatives.
        num_classes: k when no prototypes are given (default: max label + 1).
        mask: ``[..., n]`` bool, False for padding rows.
        batch_anchors: ``[..., n]`` bool, the batch rows that are anchors (default: every row that exists);
            the others stay positives and negatives (SupCon's ``contrast_mode='one'``).
        require_unit_norm: refuse rows whose norm is not 1 (tolerance sqrt(eps) of the dtype).
        validate: run the input checks (turn off only in hot loops over inputs already checked).

    Returns:
        ``[...]``: the loss of each stacked batch.
    """
    if validate:
        _validate(h, y, prototypes, n_w, tau, num_classes, mask, require_unit_norm)
        if prototypes is not None:
            check_copies(n_w, prototype_anchors)
        if batch_anchors is not None:
            _check_bool_rows(batch_anchors, h, "batch_anchors")
    a = _augment(h, y, prototypes, n_w, tau, num_classes, mask)
    rows = a.z.shape[-2]
    if chunked(a.z.numel() // (rows * a.z.shape[-1]), rows, a.z.element_size(), a.z.device):
        lse, pos = _lse_pos_chunked(a)
    else:
        logits, pos = _logits(a)
        m = _row_shift(logits)
        lse = m.squeeze(-1) + torch.log(torch.exp(logits - m).sum(-1).clamp_min(torch.finfo(h.dtype).tiny))
    cnt = _positive_counts(a)
    weight = _anchor_weight(a, prototype_anchors)
    if batch_anchors is not None:
        rows = batch_anchors.to(weight.dtype).expand(*h.shape[:-1])
        if weight.shape[-1] > a.n:  # prototype rows keep their weight
            rows = torch.cat([rows, rows.new_ones(()).expand(*rows.shape[:-1], weight.shape[-1] - a.n)], dim=-1)
        weight = weight * rows
    return _anchor_sum(lse, pos, cnt, weight)


def class_averaging_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None = None,
    n_w: Scalar = 0,
    tau: Scalar = 1.0,
    *,
    num_classes: int | None = None,
    mask: torch.Tensor | None = None,
    require_unit_norm: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """Class-averaging SCL (balanced contrastive loss, Zhu et al. 2022, Eq. 6), summed over batch anchors.

    For anchor i (a batch sample; prototypes, if any, are only positives/negatives, as in BCL):

        L_i = 1/|P(i)| sum_{j in P(i)} -log [ exp(s_ij) / sum_{c present} 1/|A_c^i| sum_{l in A_c^i} exp(s_il) ]

    where A_c^i is the set of class-c members of the augmented batch other than i (class-c samples
    plus n_w copies of w_c) and classes with A_c^i empty are left out of the sum.
    Shapes and arguments as in :func:`scl_loss`; returns ``[...]``.
    """
    if validate:
        _validate(h, y, prototypes, n_w, tau, num_classes, mask, require_unit_norm)
    a = _augment(h, y, prototypes, n_w, tau, num_classes, mask)
    onehot = (a.labels.unsqueeze(-1) == torch.arange(a.k, device=h.device)).to(h.dtype)  # [..., R, k], no host sync
    class_cnt = a.counts.unsqueeze(-2) - onehot * a.mult.unsqueeze(-1)  # members other than the anchor
    tiny = torch.finfo(h.dtype).tiny
    rows = a.z.shape[-2]
    if chunked(a.z.numel() // (rows * a.z.shape[-1]), rows, a.z.element_size(), a.z.device):
        # 1/|A_c^i| as a log-weight on the columns of class c; classes with no member are left out
        none = torch.full_like(class_cnt, float("-inf"))
        bias = torch.where(class_cnt > 0, -torch.log(class_cnt.clamp_min(tiny)), none)
        lse, pos = _lse_pos_chunked(a, bias)
    else:
        logits, pos = _logits(a)
        m = _row_shift(logits)
        class_sum = torch.exp(logits - m) @ onehot  # [..., R, k], multiplicities included via the logits
        avg = torch.where(class_cnt > 0, class_sum / class_cnt.clamp_min(tiny), torch.zeros_like(class_sum))
        lse = m.squeeze(-1) + torch.log(avg.sum(-1).clamp_min(tiny))
    cnt = _positive_counts(a)
    return _anchor_sum(lse, pos, cnt, _anchor_weight(a, prototype_anchors=False))


def _fixed_logits(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor,
    tau: Scalar,
    mask: torch.Tensor | None,
    require_unit_norm: bool,
    validate: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(one-hot labels ``[..., n, k]``, zero on masked rows; logits W h / tau ``[..., n, k]``)."""
    if prototypes is None:
        raise ValueError("a fixed classifier needs prototypes W [k, d]; build them with prototypes_from_gram")
    if validate:
        _validate(h, y, prototypes, 0, tau, None, mask, require_unit_norm)
    k = prototypes.shape[-2]
    onehot = (y.long().unsqueeze(-1) == torch.arange(k, device=h.device)).to(h.dtype).expand(*h.shape[:-1], k)
    if mask is not None:
        onehot = onehot * mask.unsqueeze(-1).to(h.dtype)
    t = _as_param(tau, h, "tau")
    return onehot, (h / t[..., None, None]) @ prototypes.transpose(-1, -2)


def ce_fixed_classifier_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor,
    tau: Scalar = 1.0,
    *,
    mask: torch.Tensor | None = None,
    require_unit_norm: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """Cross-entropy with the fixed normalized classifier W: ``-sum_i log softmax_{y_i}(W h_i / tau)``.

    ``h: [..., n, d]``, ``W: [k, d]``; returns ``[...]`` (sum over the batch).
    """
    onehot, logits = _fixed_logits(h, y, prototypes, tau, mask, require_unit_norm, validate)
    return -(torch.log_softmax(logits, dim=-1) * onehot).sum((-2, -1))


def prop1_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor,
    tau: Scalar = 1.0,
    *,
    mask: torch.Tensor | None = None,
    require_unit_norm: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """The large-n_w limit of SCL with prototypes exactly as published (Proposition 1):

        -sum_i [ log softmax_{y_i}(W h_i / tau) + w_{y_i} . h_i / tau ]

    i.e. CE with the fixed classifier plus an alignment term. ``h: [..., n, d]``; returns ``[...]``.
    """
    onehot, logits = _fixed_logits(h, y, prototypes, tau, mask, require_unit_norm, validate)
    return -((torch.log_softmax(logits, dim=-1) + logits) * onehot).sum((-2, -1))


def limit_loss(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor,
    tau: Scalar = 1.0,
    prototype_anchors: bool = True,
    *,
    mask: torch.Tensor | None = None,
    require_unit_norm: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """The exact large-n_w limit of :func:`scl_loss`, up to an h-independent constant (docs/prop1.md):

        scl_loss(h) = n_w-dependent constant + limit_loss(h) + O(1 / n_w),

        limit_loss = sum_i [ -log softmax_{y_i}(W h_i / tau)
                             - w_{y_i} . h_i / tau + sum_c exp(w_c . h_i / tau) / Z_c ]   (prototype anchors)
        limit_loss = sum_i -log softmax_{y_i}(W h_i / tau)                                  (batch anchors only)

    with Z_c = sum_{c'} exp(G*_{cc'} / tau), G* = W W^T.  The batch anchors give CE with the fixed
    classifier; the n_w prototype anchors add the alignment term of Proposition 1 *and* the repulsion
    term sum_c exp(w_c . h_i / tau) / Z_c, which the published form omits.  ``h: [..., n, d]``; returns ``[...]``.
    """
    onehot, logits = _fixed_logits(h, y, prototypes, tau, mask, require_unit_norm, validate)
    loss = -(torch.log_softmax(logits, dim=-1) * onehot).sum((-2, -1))
    if not prototype_anchors:
        return loss
    t = _as_param(tau, h, "tau")[..., None, None]
    gram = prototypes @ prototypes.transpose(-1, -2)
    log_z = torch.logsumexp(gram / t, dim=-1)  # [..., k]
    rows = onehot.sum(-1, keepdim=True)  # 1 for rows that exist, 0 for padding
    repulsion = (torch.exp(logits - log_z.unsqueeze(-2)) * rows).sum((-2, -1))
    return loss - (logits * onehot).sum((-2, -1)) + repulsion


@dataclass(frozen=True)
class LossSpec:
    """A batch loss by name, with what it reads: the simulator and the trainer dispatch through :data:`LOSSES`
    and refuse options a loss would ignore."""

    fn: Callable[..., torch.Tensor]
    uses_n_w: bool  # the number of prototype copies changes the loss
    uses_anchor_convention: bool  # prototype_anchors changes the loss
    description: str


def _scl(h, y, w, n_w, tau, anchors, **kw):
    return scl_loss(h, y, w, n_w, tau, anchors, **kw)


def _class_averaging(h, y, w, n_w, tau, anchors, **kw):
    return class_averaging_loss(h, y, w, n_w, tau, **kw)


def _ce(h, y, w, n_w, tau, anchors, num_classes=None, **kw):
    return ce_fixed_classifier_loss(h, y, w, tau, **kw)


def _limit(h, y, w, n_w, tau, anchors, num_classes=None, **kw):
    return limit_loss(h, y, w, tau, anchors, **kw)


def _prop1(h, y, w, n_w, tau, anchors, num_classes=None, **kw):
    return prop1_loss(h, y, w, tau, **kw)


def _spec(name: str, fn: Callable[..., torch.Tensor], description: str) -> LossSpec:
    """The loss ``name`` with the options :data:`ufm.choices.LOSS_OPTIONS` gives it."""
    return LossSpec(fn, "n_w" in LOSS_OPTIONS[name], "prototype_anchors" in LOSS_OPTIONS[name], description)


LOSSES: dict[str, LossSpec] = {
    "scl": _spec("scl", _scl, "SCL with n_w copies of each prototype (Eq. 1)"),
    "class-averaging": _spec("class-averaging", _class_averaging, "class-averaging SCL (BCL-style; prototypes are "
                             "never anchors)"),
    "ce": _spec("ce", _ce, "CE with the fixed classifier W"),
    "limit": _spec("limit", _limit, "the exact large-n_w limit of SCL (docs/prop1.md)"),
    "prop1": _spec("prop1", _prop1, "the large-n_w limit as published (Proposition 1)"),
}


def batch_loss(
    name: str,
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None,
    n_w: Scalar = 0,
    tau: Scalar = 1.0,
    prototype_anchors: bool = True,
    **kwargs,
) -> torch.Tensor:
    """The loss ``name`` of :data:`LOSSES` on ``h: [..., n, d]`` (keyword options as in :func:`scl_loss`): ``[...]``."""
    if name not in LOSSES:
        raise FieldError(f"unknown {{loss}} {literal(repr(name))}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name].fn(h, y, prototypes, n_w, tau, prototype_anchors, **kwargs)
