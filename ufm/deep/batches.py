"""The batches of a training epoch: sample indices and augmentation draws, planned on the CPU from the run's one
seeded generator (:func:`epoch_plan`), and the check that a training subset can give the configured batches."""

from __future__ import annotations

import torch

from ufm.batching import epoch_batches
from ufm.deep.config import TrainConfig
from ufm.errors import FieldError

__all__ = ["first_of_each_class", "check_batches", "epoch_plan"]


def first_of_each_class(labels: torch.Tensor, k: int) -> torch.Tensor:
    """``[k]``: the first sample of each class in the training subset's order (Kini et al. 2023's binding)."""
    first = torch.full((k,), len(labels), dtype=torch.long)
    return first.scatter_reduce_(0, labels.long(), torch.arange(len(labels)), reduce="amin")


def check_batches(cfg: TrainConfig, labels: torch.Tensor, k: int) -> None:
    """Refuse a batch size or batching that the training subset (``labels: [N]`` of ``k`` classes) cannot give:
    checked before a run writes anything (``ufm train`` has no full batching to fall back on)."""
    if cfg.batch_size < k:
        raise FieldError(f"batch size {{batch_size}} = {cfg.batch_size} is smaller than the number of classes k = {k} "
                         f"of the data: some class is missing from every batch; use {{batch_size}} >= {k}")
    bound = first_of_each_class(labels, k) if cfg.batching == "binding" else None
    epoch_batches(labels, cfg.batch_size, cfg.batching, torch.Generator().manual_seed(0), k, bound)


def epoch_plan(cfg: TrainConfig, labels: torch.Tensor, k: int, bound: torch.Tensor | None, gen: torch.Generator,
                augment) -> tuple[torch.Tensor, list[int], dict[str, torch.Tensor]]:
    """One epoch on the CPU: ``(rows, offsets, draws)``, the batches' sample indices concatenated (padding
    dropped; batch s is ``rows[offsets[s]:offsets[s+1]]``) and the augmentation draws of every view
    (views of batch s at ``2 offsets[s] : 2 offsets[s+1]``: the first views of its images, then the second)."""
    batches = epoch_batches(labels, cfg.batch_size, cfg.batching, gen, k, bound)
    parts = [index[keep] for index, keep in zip(batches.index, batches.mask)]
    offsets = [0]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    rows = torch.cat(parts)
    return rows, offsets, augment.draw(2 * len(rows), gen)
