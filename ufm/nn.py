"""A drop-in ``nn.Module`` for other people's SupCon training code: SCL with fixed prototypes.

:class:`PrototypeSupConLoss` follows the calling convention of SupContrast's ``SupConLoss``
(Khosla et al. 2020, github.com/HobbitLong/SupContrast): ``loss(features, labels)`` with
``features: [bsz, n_views, d]`` (already L2-normalized by the model, as there), ``labels: [bsz]``, the
views concatenated into 2B = bsz * n_views embeddings, ``contrast_mode`` 'all' (every view is an anchor)
or 'one' (only view 0), and the scale ``temperature / base_temperature``.  It adds ``n_w`` copies of each
fixed prototype ``W: [k, d]`` to the batch (Eq. 1 of the paper), computed with multiplicities by
:func:`ufm.losses.scl_loss` (cost independent of n_w).  With ``n_w = 0`` and ``reduction='mean'`` it is
SupConLoss itself.

Under ``torch.distributed`` (DDP), ``gather=True`` computes the loss of the global batch on every rank: features and
labels are all-gathered (slices of any size), this rank's own slice keeps its autograd path (the others are
constants here: their gradients are computed on their own ranks), and the gradient is scaled by the number of ranks,
so that DDP's averaging of parameter gradients gives exactly the single-process gradient of the global batch.  The
value returned is the global batch's loss (the same on every rank).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ufm._checks import check_float_tensor
from ufm.losses import scl_loss

__all__ = ["PrototypeSupConLoss", "REDUCTIONS"]

REDUCTIONS = ("mean", "sum", "2B")


class PrototypeSupConLoss(nn.Module):
    """SupCon with ``n_w`` copies of each fixed prototype in every batch.

    loss = (temperature / base_temperature) * sum_{anchors} L_anchor / D, where L_anchor is Eq. (1)'s
    term of an anchor (mean over its positives of -log softmax) and D depends on ``reduction``:

    - ``'mean'`` (default): D = number of anchors, counted with multiplicity: bsz * n_views batch anchors
      ('all'; bsz for 'one') plus k * n_w prototype copies when ``prototype_anchors``.  This is SupCon's
      mean over anchors, so with n_w = 0 the module returns exactly SupConLoss's value and gradient (a
      drop-in swap changes nothing until prototypes are turned on), and the per-anchor scale does not
      grow with n_w (a sum over k n_w prototype anchors divided by the batch size would raise the
      effective learning rate with n_w).
    - ``'sum'``: D = 1, the sum over anchors (the paper's Eq. 1 as written).
    - ``'2B'``: D = bsz * n_views, the number of batch embeddings (this project's trainer convention).

    Anchors without a positive (a singleton class with one view and n_w = 0) add 0 but are counted in D,
    as in SupContrast.

    Args:
        prototypes: ``W: [k, d]`` unit rows (e.g. ``ufm.prototypes_from_gram(ufm.etf_gram(k), d)``),
            registered as a buffer (moves with ``.to()``, saved in ``state_dict``, never trained) and
            renormalized in the features' dtype at each call.
        n_w: copies of each prototype in each batch (>= 0; may be fractional).
        temperature: tau > 0.
        learnable_temperature: make tau an ``nn.Parameter`` (its gradient is exact; keep
            ``base_temperature=None`` then, or the tau / base_tau factor is trained too).
        base_temperature: SupCon's base temperature (the loss is scaled by tau / base_tau), or None for
            no scaling.
        contrast_mode: 'all' (every view is an anchor) or 'one' (view 0 only; all views stay contrasts).
        prototype_anchors: the prototype copies are anchors too (True) or only positives/negatives.
        reduction: 'mean', 'sum' or '2B' (see above).
        validate: check inputs each call (unit-norm rows, labels in range); costs a host sync per call.
        gather: under an initialized ``torch.distributed`` process group, the loss of the global batch (see the
            module docstring: exact DDP gradients); without one, the plain loss.
    """

    def __init__(
        self,
        prototypes: torch.Tensor,
        n_w: float = 100.0,
        temperature: float = 0.07,
        *,
        learnable_temperature: bool = False,
        base_temperature: float | None = 0.07,
        contrast_mode: str = "all",
        prototype_anchors: bool = True,
        reduction: str = "mean",
        validate: bool = True,
        gather: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(prototypes, torch.Tensor) or prototypes.dim() != 2 or not prototypes.is_floating_point():
            raise ValueError("prototypes must be a float tensor W [k, d]; build it with ufm.prototypes_from_gram(G, d)")
        if contrast_mode not in ("all", "one"):
            raise ValueError(f"contrast_mode must be 'all' or 'one', got {contrast_mode!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        if not float(n_w) >= 0 or float(n_w) == float("inf"):
            raise ValueError(f"n_w (copies of each prototype) must be finite and >= 0, got {n_w}")
        if not 0 < float(temperature) < float("inf"):
            raise ValueError(f"temperature must be finite and > 0, got {temperature}")
        if base_temperature is not None and not 0 < float(base_temperature) < float("inf"):
            raise ValueError(f"base_temperature must be finite and > 0 or None, got {base_temperature}")
        check_float_tensor(prototypes, "prototypes", min_dim=2, require_unit_norm=True)
        self.register_buffer("prototypes", prototypes.detach().clone())
        self.n_w = float(n_w)
        tau = torch.tensor(float(temperature), dtype=prototypes.dtype)
        if learnable_temperature:
            self.temperature = nn.Parameter(tau)
        else:
            self.register_buffer("temperature", tau)
        self.base_temperature = base_temperature
        self.contrast_mode = contrast_mode
        self.prototype_anchors = prototype_anchors
        self.reduction = reduction
        self.validate = validate
        self.gather = gather

    def extra_repr(self) -> str:
        k, d = self.prototypes.shape
        return (f"k={k}, d={d}, n_w={self.n_w:g}, contrast_mode={self.contrast_mode!r}, "
                f"prototype_anchors={self.prototype_anchors}, reduction={self.reduction!r}, "
                f"base_temperature={self.base_temperature}, gather={self.gather}")

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """A scalar, for either calling convention:

        - SupContrast's ``features: [bsz, n_views, d]`` (or ``[bsz, n_views, ...]``, flattened), ``labels: [bsz]``;
        - metric-learning code's ``embeddings: [n, d]``, ``labels: [n]`` (one view: the same as ``[n, 1, d]``)."""
        if isinstance(features, torch.Tensor) and features.dim() == 2:
            features = features.unsqueeze(1)  # [n, d]: one view per sample
        if not isinstance(features, torch.Tensor) or features.dim() < 3:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"features must be [bsz, n_views, d] (SupConLoss) or [n, d] (one view), got {shape}")
        if features.dim() > 3:
            features = features.reshape(features.shape[0], features.shape[1], -1)
        bsz, views, _ = features.shape
        if not isinstance(labels, torch.Tensor) or labels.reshape(-1).shape[0] != bsz:
            got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(f"labels must be [bsz] = [{bsz}] (one label per sample, shared by its views), got {got}")
        labels = labels.reshape(-1).to(features.device)
        world = _world_size() if self.gather else 1
        if world > 1:
            features, labels = _gather_batch(features, labels)
            bsz = features.shape[0]
        # SupContrast's order: view 0 of every sample, then view 1, ... (the loss does not depend on it)
        h = features.transpose(0, 1).reshape(views * bsz, -1)
        y = labels.repeat(views)
        anchors = None
        if self.contrast_mode == "one":
            anchors = torch.arange(views * bsz, device=features.device) < bsz
        tau = self.temperature
        # renormalized in the features' dtype: a float32 buffer is unit-norm only to float32 precision
        w = F.normalize(self.prototypes.to(h.dtype), dim=-1)
        total = scl_loss(h, y, w, self.n_w, tau, self.prototype_anchors,
                         batch_anchors=anchors, validate=self.validate)
        batch = bsz * (1 if self.contrast_mode == "one" else views)
        if self.reduction == "sum":
            loss = total
        elif self.reduction == "2B":
            loss = total / (bsz * views)
        else:
            copies = self.prototypes.shape[0] * self.n_w if self.prototype_anchors else 0.0
            loss = total / (batch + copies)
        if self.base_temperature is not None:
            loss = loss * (tau / self.base_temperature)
        if world > 1:  # the value of the global loss, its gradient times the ranks: DDP's mean is then exact
            loss = loss + (world - 1) * (loss - loss.detach())
        return loss


def _world_size() -> int:
    """The number of ranks of an initialized default process group, else 1."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _gather_batch(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's ``features [b_r, views, d]`` and ``labels [b_r]`` concatenated in rank order (slices of any size);
    this rank's slice is ``features`` itself (its autograd path kept), the others are constants."""
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    sizes = [torch.zeros(1, dtype=torch.long, device=features.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([features.shape[0]], device=features.device))
    sizes = [int(n) for n in sizes]
    most = max(sizes)
    pad = most - features.shape[0]
    padded = F.pad(features.detach(), (0, 0, 0, 0, 0, pad)).contiguous()
    padded_labels = F.pad(labels, (0, pad)).contiguous()
    parts = [torch.empty_like(padded) for _ in range(world)]
    label_parts = [torch.empty_like(padded_labels) for _ in range(world)]
    dist.all_gather(parts, padded)
    dist.all_gather(label_parts, padded_labels)
    parts = [features if r == rank else parts[r][:sizes[r]] for r in range(world)]
    return torch.cat(parts), torch.cat([label_parts[r][:sizes[r]] for r in range(world)])
