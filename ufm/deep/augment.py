"""Augmentation of a whole batch at once, on the batch's device (no per-image Python).

``crop_flip``: random crop with zero padding and random horizontal flip (the CIFAR recipe), each image
with its own offsets and flip drawn from one generator, so a seed fixes the whole batch.
"""

from __future__ import annotations

import torch

__all__ = ["AUGMENTATIONS", "crop_flip", "supcon_augment", "two_views", "normalize"]

AUGMENTATIONS = ("crop-flip", "supcon")


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


def supcon_augment(x: torch.Tensor, generator: torch.Generator, scale: tuple[float, float] = (0.2, 1.0),
                   jitter: float = 0.4, p_jitter: float = 0.8, p_gray: float = 0.2) -> torch.Tensor:
    """The SupCon recipe (Khosla et al. 2020) on a whole uint8 batch ``[B, C, H, W]`` -> float in [0, 255]:
    random resized crop (area fraction in ``scale``, aspect ratio in [3/4, 4/3], bilinear, one affine
    grid per image), horizontal flip, colour jitter (brightness, contrast, saturation by factors in
    [1 - jitter, 1 + jitter], with probability ``p_jitter``) and grayscale (probability ``p_gray``)."""
    if x.dim() != 4:
        raise ValueError(f"expected a batch [B, C, H, W], got shape {tuple(x.shape)}")
    b, c = x.shape[:2]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=generator.device).to(x.device)

    area = scale[0] + (scale[1] - scale[0]) * rand(b)
    log_ratio = torch.log(torch.tensor(3 / 4)) + (torch.log(torch.tensor(4 / 3)) - torch.log(torch.tensor(3 / 4))) * rand(b)
    ratio = torch.exp(log_ratio)
    sx = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width / image width
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    tx = (1 - sx) * (2 * rand(b) - 1)
    ty = (1 - sy) * (2 * rand(b) - 1)
    flip = torch.where(rand(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if c == 3:
        apply = (rand(b) < p_jitter)[:, None, None, None]
        factors = 1 - jitter + 2 * jitter * rand(b, 3)
        jittered = out * factors[:, 0, None, None, None]  # brightness
        mean = jittered.mean((1, 2, 3), keepdim=True)
        jittered = mean + (jittered - mean) * factors[:, 1, None, None, None]  # contrast
        gray_j = (jittered * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        jittered = gray_j + (jittered - gray_j) * factors[:, 2, None, None, None]  # saturation
        out = torch.where(apply, jittered, out)
        gray = (out * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        out = torch.where((rand(b) < p_gray)[:, None, None, None], gray.expand_as(out), out)
    return out.clamp(0, 255)
