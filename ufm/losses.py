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

from ufm.errors import FieldError
from ufm._checks import Scalar, check_float_tensor, check_labels, check_positive

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


@dataclass(frozen=True)
class _Augmented:
    """The augmented batch A = B ∪ W with multiplicities instead of copies.

    R = n + k rows (k = 0 without prototypes): the batch rows, then one row per prototype.
    """

    z: torch.Tensor  # [..., R, d] rows of A: the batch h, then the prototypes
    h: torch.Tensor  # [..., n, d] the batch rows alone
    mask: torch.Tensor | None  # [..., n] bool, or None when every batch row exists
    labels: torch.Tensor  # [..., R] class of each row (long)
    k: int  # number of classes
    mult: torch.Tensor  # [..., R] multiplicity of each row as a member of A (1 / 0 for padding / n_w)
    counts: torch.Tensor  # [..., k] class sizes in A: batch counts + n_w
    n: int  # number of batch rows
    unit_mult: bool  # every multiplicity is 1 (no padding, no prototype rows)
    n_w: torch.Tensor  # [...] or []
    tau: torch.Tensor  # [...] or []


def _as_param(value: Scalar, h: torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=h.dtype, device=h.device)
    lead = h.shape[:-2]
    try:
        ok = torch.broadcast_shapes(t.shape, lead) == lead
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(t.shape)} must be a scalar or broadcast to the stack dims {tuple(lead)} of h"
        )
    return t



def check_copies(n_w: Scalar, prototype_anchors: bool, name: str = "n_w") -> None:
    """The one rule for the number of prototype copies (used by the losses, the solver and the configs):
    n_w >= 0, and with prototype anchors n_w is 0 or >= 1.  Each anchor copy of w_a has n_w - 1 other copies
    of itself as positives, a negative count for 0 < n_w < 1 (no meaning there: the loss would have to clamp
    it); without prototype anchors n_w is only a weight and any n_w >= 0 is fine.  ``n_w`` may be a tensor
    (every value is checked)."""
    values = n_w.detach().reshape(-1).tolist() if isinstance(n_w, torch.Tensor) else [n_w]
    for v in values:
        if prototype_anchors and 0 < float(v) < 1:
            raise FieldError(f"with prototype anchors {{{name}}} must be 0 or >= 1, got {float(v):g}: an anchor copy of "
                             f"a prototype would have n_w - 1 < 0 copies of itself as positives; use {{{name}}} >= 1, "
                             "or {prototype_anchors=False} for a weight below one copy")


def _validate(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None,
    n_w: Scalar,
    tau: Scalar,
    num_classes: int | None,
    mask: torch.Tensor | None,
    require_unit_norm: bool,
) -> None:
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ValueError("mask must be a bool tensor [..., n] (True where the row exists)")
        if isinstance(h, torch.Tensor) and mask.shape != h.shape[:-1]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} must have shape {tuple(h.shape[:-1])}")
    check_float_tensor(h, "embeddings h", min_dim=2, require_unit_norm=require_unit_norm, valid=mask)
    check_positive(n_w, "n_w (copies of each prototype)", allow_zero=True)
    check_positive(tau, "temperature tau", allow_zero=False)
    if prototypes is not None:
        if isinstance(prototypes, torch.Tensor) and prototypes.dim() and prototypes.shape[-1] != h.shape[-1]:
            raise ValueError(
                f"prototypes have dimension {prototypes.shape[-1]} but embeddings have {h.shape[-1]}; "
                "build them with prototypes_from_gram(G, d) using the embedding dimension d"
            )
        check_float_tensor(prototypes, "prototypes", min_dim=2, require_unit_norm=require_unit_norm)
        if num_classes is not None and num_classes != prototypes.shape[-2]:
            raise ValueError(f"num_classes={num_classes} but {prototypes.shape[-2]} prototypes were given")
    check_labels(y, h.shape[:-1], prototypes.shape[-2] if prototypes is not None else num_classes)


def _check_bool_rows(x: torch.Tensor, h: torch.Tensor, name: str) -> None:
    """``x`` is a bool tensor that broadcasts to the row shape ``[..., n]`` of h."""
    ok = isinstance(x, torch.Tensor) and x.dtype == torch.bool and x.dim() >= 1
    if ok:
        try:
            ok = torch.broadcast_shapes(x.shape, h.shape[:-1]) == h.shape[:-1]
        except RuntimeError:
            ok = False
    if not ok:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"{name} must be a bool tensor broadcastable to {tuple(h.shape[:-1])} (one flag per row), got {got}"
        )


def _augment(
    h: torch.Tensor,
    y: torch.Tensor,
    prototypes: torch.Tensor | None,
    n_w: Scalar,
    tau: Scalar,
    num_classes: int | None,
    mask: torch.Tensor | None,
) -> _Augmented:
    if prototypes is not None:
        k = prototypes.shape[-2]
    elif num_classes is not None:
        k = num_classes
    else:
        k = int(y.max()) + 1 if y.numel() else 1
    lead, n = h.shape[:-2], h.shape[-2]
    nw = _as_param(n_w, h, "n_w")
    t = _as_param(tau, h, "tau")
    labels = y.long().expand(*lead, n)
    mult = mask.to(h.dtype) if mask is not None else h.new_ones(()).expand(*lead, n)
    z = h
    # n_w == 0 (a Python number) is plain SCL: leave the prototype rows out altogether.
    if prototypes is not None and not (isinstance(n_w, (int, float)) and n_w == 0):
        w = prototypes.to(h.dtype).expand(*lead, *prototypes.shape[-2:])
        z = torch.cat([h, w], dim=-2)
        classes = torch.arange(k, device=h.device).expand(*lead, k)
        labels = torch.cat([labels, classes], dim=-1)
        mult = torch.cat([mult, nw.unsqueeze(-1).expand(*lead, k)], dim=-1)
    return _Augmented(
        z=z,
        h=h,
        mask=mask,
        labels=labels,
        k=k,
        mult=mult,
        counts=mult.new_zeros(*lead, k).scatter_add(-1, labels, mult.expand(*lead, labels.shape[-1])),
        n=n,
        unit_mult=mask is None and z is h,
        n_w=nw,
        tau=t,
    )


class _Logits(torch.autograd.Function):
    """Logits and positive sums of the augmented batch from its rows z ``[..., R, d]``, in one matmul.

    Forward, with s = z z^T / tau:
      L = s + log w_col (column multiplicities), diagonal -inf for the first n (batch) rows and
      s_rr + log(n_w - 1) for the prototype rows;
      P_r = sum_l [y_l = y_r] mult_l s_rl - s_rr, the positives of row r with their multiplicities
      (with ``masked_positives=False`` only the -s_rr part: the caller adds the rest from class sums).
    Backward: dz = ((G + G^T) / tau) z for the combined gradient G on s: one matmul, not two, no copies
    of R x R gradients for in-place edits, and the positive mask is rebuilt from the labels.  Every
    output is linear in s = z z^T * inv_tau (the log-multiplicity terms are constants), so
    d/d inv_tau = sum_rl G_rl (z_r . z_l) = 1/2 sum((G + G^T) z * z), read off the same matmul; it is
    computed only when inv_tau requires grad (a learnable temperature).
    """

    @staticmethod
    def forward(ctx, z, inv_tau, labels, mult, n, proto_diag_logw, masked_positives):  # noqa: D102
        s = (z @ z.transpose(-1, -2)).mul_(inv_tau)
        diag = s.diagonal(dim1=-2, dim2=-1)
        if masked_positives:
            pos = (s * _positive_weight(labels, mult)).sum(-1) - diag
        else:
            pos = -diag
        self_sim = diag[..., n:].clone()
        if mult is not None:
            s.add_(torch.log(mult).unsqueeze(-2))
        diag[..., :n] = float("-inf")
        if s.shape[-1] > n:
            diag[..., n:] = self_sim + proto_diag_logw
        ctx.save_for_backward(z, inv_tau, labels, mult)
        ctx.n = n
        ctx.masked_positives = masked_positives
        return s, pos

    @staticmethod
    def backward(ctx, grad, grad_pos):  # noqa: D102
        z, inv_tau, labels, mult = ctx.saved_tensors
        n = ctx.n
        g = torch.zeros_like(z[..., :1]).expand(*z.shape[:-1], z.shape[-2]) if grad is None else grad
        if grad_pos is not None and ctx.masked_positives:
            g = g + grad_pos.unsqueeze(-1) * _positive_weight(labels, mult)
        else:
            g = g.clone()
        diag = g.diagonal(dim1=-2, dim2=-1)
        if grad is not None:
            diag[..., :n] -= grad.diagonal(dim1=-2, dim2=-1)[..., :n]  # the -inf entries are constants
        if grad_pos is not None:
            diag -= grad_pos
        g = g + g.transpose(-1, -2)
        gz = g @ z
        grad_inv_tau = None
        if ctx.needs_input_grad[1]:
            grad_inv_tau = (0.5 * (gz * z).sum((-2, -1), keepdim=True)).sum_to_size(inv_tau.shape)
        grad_z = gz.mul_(inv_tau) if ctx.needs_input_grad[0] else None
        return grad_z, grad_inv_tau, None, None, None, None, None


def _positive_weight(labels: torch.Tensor, mult: torch.Tensor | None) -> torch.Tensor:
    """[y_l = y_r] mult_l, ``[..., R, R]`` (bool when every multiplicity is 1)."""
    same = labels.unsqueeze(-1) == labels.unsqueeze(-2)
    return same if mult is None else same * mult.unsqueeze(-2)


def _logits(a: _Augmented) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L [..., R, R], P [..., R])``: L_rl = s_rl + log(multiplicity of l as a member other than r), and
    P_r the sum of s_rl over the positives of r, with multiplicities.

    The multiplicity is mult_l, less one on the diagonal: the anchor itself is excluded (-inf for a
    batch row, log(n_w - 1) for a prototype row whose other n_w - 1 copies remain).
    """
    mult = None if a.unit_mult else a.mult.expand(a.labels.shape).contiguous()
    proto_diag = torch.log((a.n_w.unsqueeze(-1) - 1).clamp_min(0))
    rows, d = a.z.shape[-2:]
    masked = masked_positives(rows, d)
    logits, pos = _Logits.apply(a.z, 1 / a.tau[..., None, None], a.labels.contiguous(), mult, a.n, proto_diag, masked)
    if not masked:
        pos = pos + (a.z * _own_class_sums(a)).sum(-1) / a.tau.unsqueeze(-1)
    return logits, pos


def masked_positives(rows: int, d: int) -> bool:
    """How to sum the positives: a masked row-sum of the R x R similarities (O(R^2)) when R <= d, else
    class sums by index-add (O(R d)).  Both are exact; this picks the cheaper one (benchmarks/bench_ufm.py)."""
    return rows <= d


def _own_class_sums(a: _Augmented) -> torch.Tensor:
    """C_{y_r} for every row r, ``[..., R, d]``, with C_c = sum_l mult_l z_l [y_l = c] (batch class sums
    plus n_w w_c): an index-add and an index-select over the flattened stack, no one-hot matmul."""
    lead, (n_rows, d), k = a.z.shape[:-2], a.z.shape[-2:], a.k
    stack = a.z.numel() // (n_rows * d)
    offsets = k * torch.arange(stack, device=a.z.device).unsqueeze(-1)  # [M, 1]
    slot = (a.labels.reshape(stack, n_rows) + offsets).flatten()  # row -> (stack item, class)
    src = a.h if a.mask is None else a.h * a.mask.unsqueeze(-1)
    sums = a.z.new_zeros(stack * k, d).index_add(0, slot.view(stack, n_rows)[:, : a.n].flatten(), src.reshape(-1, d))
    sums = sums.view(*lead, k, d)
    if n_rows > a.n:  # the n_w copies of each prototype
        sums = sums + a.n_w[..., None, None] * a.z[..., a.n :, :]
    return sums.reshape(stack * k, d).index_select(0, slot).view(*lead, n_rows, d)


CHUNK_BYTES = 4 * 1024**2  # size of one row block [..., c, R] in the chunked path
FULL_BYTES = 16 * 1024**2  # CPU: above this size of one [..., R, R] tensor, the loss is computed in row blocks
FULL_BYTES_CACHED = 2 * 1024**3  # devices with a caching allocator (CUDA): row blocks only to save memory


def chunked(stack: int, rows: int, itemsize: int, device: torch.device) -> bool:
    """Compute the log-sum-exp over row blocks (True) rather than on full ``[..., R, R]`` logits.

    On CPU, when one R x R tensor of the stack would exceed FULL_BYTES: large temporaries allocated and
    freed at every step cost more in the kernel (the C allocator maps and unmaps them) than in compute;
    row blocks of CHUNK_BYTES live in one reused workspace and nothing R x R is allocated
    (benchmarks/bench_ufm.py).  Elsewhere (CUDA's caching allocator reuses blocks) only above
    FULL_BYTES_CACHED, to bound memory."""
    limit = FULL_BYTES if device.type == "cpu" else FULL_BYTES_CACHED
    return stack * rows * rows * itemsize > limit


def _block_logits(out, z, zc, inv_tau, log_cols, bias, labels, start, n, proto_diag, scratch):
    """Rows start..start+c of the logits L (see :class:`_Logits`) written into ``out`` (a view of a
    reused workspace), ``[M, c, R]``, in place: no allocation beyond ``[M, c]``."""
    c = zc.shape[-2]
    torch.bmm(zc, z.transpose(-1, -2), out=out)
    out.mul_(inv_tau)
    rows = torch.arange(c, device=z.device)
    idx = rows + start
    self_sim = out[:, rows, idx]  # [M, c] s_rr (a copy)
    out.add_(log_cols.unsqueeze(-2))
    if bias is not None:  # per-(anchor, class) log-weights, gathered at each column's class
        out.add_(torch.gather(bias[:, start : start + c], -1, labels.unsqueeze(-2).expand(-1, c, -1), out=scratch))
        self_sim = self_sim + bias[:, idx].gather(-1, labels[:, idx].unsqueeze(-1)).squeeze(-1)
    out[:, rows, idx] = torch.where(idx >= n, self_sim + proto_diag, torch.full_like(self_sim, float("-inf")))
    return out


def _workspace(z: torch.Tensor, block: int, bias: torch.Tensor | None):
    """One ``[M * block * R]`` buffer (two with a bias) reused by every block, and the ``[M, c, R]`` views."""
    stack, rows = z.shape[:2]
    buf = z.new_empty(stack * block * rows)
    scratch = z.new_empty(stack * block * rows) if bias is not None else None

    def views(c: int):
        size = stack * c * rows
        return buf[:size].view(stack, c, rows), None if scratch is None else scratch[:size].view(stack, c, rows)

    return views


class _ChunkedLSE(torch.autograd.Function):
    """lse_r = log sum_l exp(L_rl) over row blocks, ``[M, R]``: the logits of :class:`_Logits` (plus an
    optional per-(anchor, class) log-weight ``bias [M, R, k]``), never materialized beyond ``[M, c, R]``.

    Backward recomputes each block: G_rl = grad_r softmax_rl, dz = ((G + G^T) / tau) z accumulated block
    by block, d/d inv_tau = sum_rl G_rl z_r . z_l.  Same numbers as the full path up to rounding.  All
    blocks share one workspace, and the products accumulate in place (baddbmm), so a call allocates
    O(M c R) once instead of several O(M R^2) temporaries.
    """

    @staticmethod
    def forward(ctx, z, inv_tau, log_cols, bias, labels, n, proto_diag, block):  # noqa: D102
        rows = z.shape[-2]
        out = z.new_empty(z.shape[0], rows)
        tiny = torch.finfo(z.dtype).tiny
        views = _workspace(z, block, bias)
        for start in range(0, rows, block):
            stop = min(start + block, rows)
            buf, scratch = views(stop - start)
            logits = _block_logits(buf, z, z[:, start:stop], inv_tau, log_cols, bias, labels, start, n, proto_diag,
                                   scratch)
            m = logits.amax(-1, keepdim=True)
            m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
            out[:, start:stop] = m.squeeze(-1) + torch.log(logits.sub_(m).exp_().sum(-1).clamp_min(tiny))
        ctx.save_for_backward(z, inv_tau, log_cols, bias, labels, proto_diag, out)
        ctx.n, ctx.block = n, block
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # noqa: D102
        z, inv_tau, log_cols, bias, labels, proto_diag, lse = ctx.saved_tensors
        rows = z.shape[-2]
        gz = torch.zeros_like(z)
        g_tau = z.new_zeros(z.shape[0], 1, 1)
        views = _workspace(z, ctx.block, bias)
        for start in range(0, rows, ctx.block):
            stop = min(start + ctx.block, rows)
            zc = z[:, start:stop]
            buf, scratch = views(stop - start)
            g = _block_logits(buf, z, zc, inv_tau, log_cols, bias, labels, start, ctx.n, proto_diag, scratch)
            g.sub_(lse[:, start:stop].unsqueeze(-1)).exp_().mul_(grad[:, start:stop].unsqueeze(-1))  # G_c
            rows_part = torch.bmm(g, z)  # (G z) for the block's rows, [M, c, d]
            gz[:, start:stop] += rows_part
            gz.baddbmm_(g.transpose(-1, -2), zc)  # (G^T z): every row gets the block's contribution
            if ctx.needs_input_grad[1]:
                g_tau += (rows_part * zc).sum((-2, -1), keepdim=True)
        grad_tau = g_tau.sum_to_size(inv_tau.shape) if ctx.needs_input_grad[1] else None
        return gz.mul_(inv_tau), grad_tau, None, None, None, None, None, None


def _lse_pos_chunked(a: _Augmented, bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(lse ``[..., R]``, positives P ``[..., R]``) without any ``[..., R, R]`` tensor: the log-sum-exp over
    row blocks, the positives from class sums (O(R d))."""
    lead, (rows, d) = a.z.shape[:-2], a.z.shape[-2:]
    stack = a.z.numel() // (rows * d)
    z = a.z.expand(*lead, rows, d).reshape(stack, rows, d)
    inv_tau = (1 / a.tau).expand(lead).reshape(stack, 1, 1)
    mult = a.mult.expand(*lead, rows).reshape(stack, rows)
    labels = a.labels.expand(*lead, rows).reshape(stack, rows).contiguous()
    proto_diag = torch.log((a.n_w.expand(lead).reshape(stack, 1) - 1).clamp_min(0))
    flat_bias = None if bias is None else bias.expand(*lead, rows, a.k).reshape(stack, rows, a.k)
    block = max(1, CHUNK_BYTES // (stack * rows * a.z.element_size()))
    lse = _ChunkedLSE.apply(z, inv_tau, torch.log(mult), flat_bias, labels, a.n, proto_diag, block)
    pos = (a.z * _own_class_sums(a)).sum(-1) / a.tau.unsqueeze(-1) - (a.z * a.z).sum(-1) / a.tau.unsqueeze(-1)
    return lse.view(*lead, rows), pos


def _row_shift(logits: torch.Tensor) -> torch.Tensor:
    """Largest logit of each row, detached, 0 for an empty row: ``[..., R, 1]``."""
    m = logits.amax(-1, keepdim=True).detach()
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


def _positive_counts(a: _Augmented) -> torch.Tensor:
    """Number of positives of each row with multiplicities, |A_{y_r}| - 1, ``[..., R]``."""
    return a.counts.gather(-1, a.labels) - 1


def _anchor_sum(lse: torch.Tensor, pos: torch.Tensor, cnt: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum_r weight_r (lse_r - pos_r / cnt_r) over anchors with weight > 0 and at least one positive."""
    use = (cnt > 0) & (weight > 0)
    per_anchor = lse - pos / cnt.clamp_min(torch.finfo(lse.dtype).tiny)
    return (torch.where(use, per_anchor, torch.zeros_like(per_anchor)) * weight).sum(-1)


def _anchor_weight(a: _Augmented, prototype_anchors: bool) -> torch.Tensor:
    """Anchor multiplicity of each row: the batch rows that exist, and n_w per prototype if they are anchors."""
    if prototype_anchors:
        return a.mult
    weight = a.mult.clone()
    weight[..., a.n :] = 0
    return weight


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


LOSSES: dict[str, LossSpec] = {
    "scl": LossSpec(_scl, True, True, "SCL with n_w copies of each prototype (Eq. 1)"),
    "class-averaging": LossSpec(_class_averaging, True, False, "class-averaging SCL (BCL-style; prototypes are "
                                "never anchors)"),
    "ce": LossSpec(_ce, False, False, "CE with the fixed classifier W"),
    "limit": LossSpec(_limit, False, True, "the exact large-n_w limit of SCL (docs/prop1.md)"),
    "prop1": LossSpec(_prop1, False, False, "the large-n_w limit as published (Proposition 1)"),
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
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name].fn(h, y, prototypes, n_w, tau, prototype_anchors, **kwargs)
