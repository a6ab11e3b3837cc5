"""Augmentation of a whole batch at once, on the batch's device (no per-image Python).

``crop_flip``: random crop with zero padding and random horizontal flip (the CIFAR recipe), each image
with its own offsets and flip drawn from one generator, so a seed fixes the whole batch.
"""

from __future__ import annotations

import torch

__all__ = ["crop_flip", "two_views", "normalize"]


def crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """``x: [B, C, H, W]`` -> same shape and dtype: every image shifted by its own random offset in
    [-padding, padding]^2 (zeros come in) and, with ``flip``, mirrored with probability 1/2.

    The random numbers are drawn on ``generator``'s device (CPU generators work for CUDA batches too).
    """
    if x.dim() != 4:
        raise ValueError(f"expected a batch [B, C, H, W], got shape {tuple(x.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator, device=generator.device).to(x.device)
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    rows = (offsets[:, 0, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [B, 1, H, 1]
    cols = (offsets[:, 1, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [B, 1, 1, W]
    if flip:
        mirrored = torch.rand(b, generator=generator, device=generator.device).to(x.device) < 0.5
        cols = torch.where(mirrored[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def two_views(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Two independent augmentations of each image, stacked: ``[2B, C, H, W]`` (views of image i at i and B + i)."""
    return torch.cat([crop_flip(x, generator, padding), crop_flip(x, generator, padding)])


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 ``[B, C, H, W]`` on the 0-255 scale -> float (x - mean) / std per channel (mean, std on 0-255)."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float() - m) / s
