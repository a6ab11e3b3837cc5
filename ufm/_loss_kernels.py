"""The private kernels of :mod:`ufm.losses`: the augmented batch (prototype copies as multiplicities), input
validation, the logits and their custom autograd functions, and the row-block (chunked) path for large batches.

Nothing here is public API; :mod:`ufm.losses` builds the losses from these pieces.  The notation is that of
:mod:`ufm.losses`: ``R = n + k`` rows (the batch and one row per prototype with multiplicity ``n_w``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ufm._checks import Scalar, check_float_tensor, check_labels, check_positive

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
