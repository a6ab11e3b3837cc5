"""Batch-sets: the batches of one epoch as an index tensor, for every batching scheme in the literature.

An epoch is ``Batches(index [B, n], mask [B, n])``: row b lists the samples of batch b; ``mask`` is
False on padding.  A last batch with fewer samples is kept at its true size and padded (never dropped,
never filled with repeats), so every loss sees exactly the batch it would see in a loop.

Schemes (Kini et al. 2023, "Supervised-contrastive loss learns orthogonal frames and batching matters"):

- ``full``: one batch with all N samples.
- ``shuffle``: random reshuffling, a new seeded permutation each epoch cut into batches of n.
- ``balanced``: class-balanced sampling: every batch holds n // k samples of each class (the n mod k
  remaining slots go to randomly chosen classes), drawn without replacement inside a batch; the epoch
  has ceil(N / n) batches, so minority samples repeat and majority samples may be missed.
- ``binding``: batch binding: k samples, one per class, chosen once per run (``bound``), are appended
  to every batch of a random reshuffling of the other N - k samples, so every batch contains every
  class; batches then have n + k rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ufm.choices import SCHEMES
from ufm.errors import FieldError, literal
from ufm.imbalance import labels_from_counts

__all__ = ["SCHEMES", "Batches", "bound_examples", "epoch_batches", "batch_compositions", "epoch_compositions"]



@dataclass(frozen=True)
class Batches:
    """One epoch's batch-set: ``index: [B, n]`` (long) sample indices, ``mask: [B, n]`` (bool) real rows."""

    index: torch.Tensor
    mask: torch.Tensor

    @property
    def ragged(self) -> bool:
        """True when some batch is padded."""
        return not bool(self.mask.all())

    def to(self, device: torch.device | str) -> "Batches":
        return Batches(self.index.to(device), self.mask.to(device))


def _pad_chunks(order: torch.Tensor, n: int) -> Batches:
    """Cut ``order`` into consecutive batches of n; the last one is padded (index 0, mask False)."""
    num = math.ceil(len(order) / n)
    index = torch.zeros(num * n, dtype=torch.long)
    mask = torch.zeros(num * n, dtype=torch.bool)
    index[: len(order)] = order
    mask[: len(order)] = True
    return Batches(index.view(num, n), mask.view(num, n))


def bound_examples(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """``[k]``: one sample of each class chosen at random (the bound examples of batch binding)."""
    perm = torch.randperm(len(labels), generator=generator)
    shuffled = labels[perm]
    first = torch.full((num_classes,), len(labels), dtype=torch.long)
    first.scatter_reduce_(0, shuffled, torch.arange(len(labels)), reduce="amin")
    return perm[first]


def _check(labels: torch.Tensor, batch_size: int, num_classes: int, scheme: str) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=num_classes)
    if scheme not in SCHEMES:
        raise FieldError(f"unknown {{batching}} scheme {literal(repr(scheme))}; choose one of {', '.join(SCHEMES)}")
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"classes {missing} have no samples; every class 0..{num_classes - 1} needs at least one")
    if scheme != "full":
        if batch_size < num_classes:
            raise FieldError(
                f"batch size n={batch_size} is smaller than the number of classes k={num_classes}: some class is "
                f"missing from every batch; use {{batch_size}} >= {num_classes} (or {{batching=full}})"
            )
        if batch_size > len(labels):
            raise FieldError(f"batch size n={batch_size} exceeds the number of samples N={len(labels)}; use "
                             f"{{batch_size}} <= {len(labels)}")
    return counts


def epoch_batches(
    labels: torch.Tensor,
    batch_size: int,
    scheme: str,
    generator: torch.Generator,
    num_classes: int | None = None,
    bound: torch.Tensor | None = None,
) -> Batches:
    """The batch-set of one epoch for ``labels: [N]`` (CPU); draws from ``generator`` (seeded per run).

    ``bound: [k]`` are the bound examples for ``binding`` (default: drawn now; pass the same ones every
    epoch, see :func:`bound_examples`).
    """
    labels = labels.cpu().long()
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    counts = _check(labels, batch_size, k, scheme)
    n_total = len(labels)
    if scheme == "full":
        return _pad_chunks(torch.arange(n_total), n_total)
    if scheme == "shuffle":
        return _pad_chunks(torch.randperm(n_total, generator=generator), batch_size)
    if scheme == "binding":
        if bound is None:
            bound = bound_examples(labels, k, generator)
        rest = torch.ones(n_total, dtype=torch.bool)
        rest[bound] = False
        others = torch.nonzero(rest).flatten()
        chunks = _pad_chunks(others[torch.randperm(len(others), generator=generator)], batch_size)
        num = chunks.index.shape[0]
        return Batches(
            torch.cat([chunks.index, bound.expand(num, k)], dim=1),
            torch.cat([chunks.mask, torch.ones(num, k, dtype=torch.bool)], dim=1),
        )
    # balanced
    num = math.ceil(n_total / batch_size)
    per_class = torch.full((num, k), batch_size // k, dtype=torch.long)
    extra = batch_size % k
    if extra:
        chosen = torch.rand(num, k, generator=generator).argsort(dim=1)[:, :extra]
        per_class.scatter_add_(1, chosen, torch.ones_like(chosen))
    if bool((per_class > counts).any()):
        raise ValueError(
            f"class-balanced batches need up to {int(per_class.max())} distinct samples of each class per batch, "
            f"but the smallest class has {int(counts.min())}; lower the batch size"
        )
    by_class = torch.argsort(labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    picks, keep = [], []
    for c in range(k):  # one vectorized draw per class: for every batch, distinct class-c samples
        most = int(per_class[:, c].max())
        draw = torch.multinomial(torch.ones(num, int(counts[c])), most, replacement=False, generator=generator)
        picks.append(by_class[starts[c] + draw])
        keep.append(torch.arange(most).unsqueeze(0) < per_class[:, c : c + 1])
    index = torch.cat(picks, dim=1)[torch.cat(keep, dim=1)].view(num, batch_size)
    return Batches(index, torch.ones(num, batch_size, dtype=torch.bool))


def batch_compositions(labels: torch.Tensor, batches: Batches, num_classes: int) -> torch.Tensor:
    """``[B, k]`` class counts of each batch (padding excluded): the input of the convex solver."""
    y = labels.to(batches.index.device)[batches.index]
    onehot = torch.nn.functional.one_hot(y, num_classes) * batches.mask.unsqueeze(-1)
    return onehot.sum(1)


def epoch_compositions(counts, batch_size: int, scheme: str, seed: int = 0) -> torch.Tensor:
    """``[B, k]`` class counts of the batches of one seeded epoch for the class ``counts``: the batch-set
    that the convex solver optimizes for (``full`` gives the single row ``counts``)."""
    counts = torch.as_tensor(counts, dtype=torch.long)
    labels = labels_from_counts(counts)
    k = len(counts)
    batches = epoch_batches(labels, batch_size, scheme, torch.Generator().manual_seed(seed), k)
    return batch_compositions(labels, batches, k)
