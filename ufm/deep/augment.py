"""Augmentation of a whole batch at once, on the batch's device (no per-image Python).

Each augmentation is split in two: ``draw`` takes every random number for ``n`` images from one
seeded CPU generator (so a seed fixes the result on any device), and ``apply`` uses them on the batch's
device.  The trainer draws a whole epoch's numbers at once and moves them to the device in one copy,
so the step loop never waits on the host.

- ``crop-flip``: random crop with zero padding and random horizontal flip (the CIFAR recipe);
- ``supcon``: the SupCon recipe (Khosla et al. 2020): resized crop, flip, colour jitter, grayscale;
- ``none``: the images as they are (the two views of an image coincide).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ufm.choices import AUGMENTATIONS

__all__ = ["AUGMENTATIONS", "Augmentation", "AUGMENT", "crop_flip", "supcon_augment", "two_views", "normalize"]

Params = dict[str, torch.Tensor]


def _check_batch(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected a batch [B, C, H, W], got shape {tuple(x.shape)}")


def draw_crop_flip(n: int, generator: torch.Generator, padding: int = 4) -> Params:
    """Offsets ``[n, 2]`` in [0, 2 padding] and mirror flags ``[n]`` for :func:`apply_crop_flip`."""
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=generator.device)
    mirrored = torch.rand(n, generator=generator, device=generator.device) < 0.5
    return {"offsets": offsets, "mirrored": mirrored}


def apply_crop_flip(x: torch.Tensor, params: Params, padding: int = 4) -> torch.Tensor:
    """``x: [B, C, H, W]`` -> same shape and dtype: image b shifted by ``offsets[b] - padding`` (zeros come
    in) and mirrored where ``mirrored[b]``."""
    _check_batch(x)
    b, c, h, w = x.shape
    offsets = params["offsets"].to(x.device)
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    rows = (offsets[:, 0, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [B, 1, H, 1]
    cols = (offsets[:, 1, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [B, 1, 1, W]
    cols = torch.where(params["mirrored"].to(x.device)[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """``x: [B, C, H, W]`` -> same shape and dtype: every image shifted by its own random offset in
    [-padding, padding]^2 (zeros come in) and, with ``flip``, mirrored with probability 1/2."""
    _check_batch(x)
    params = draw_crop_flip(len(x), generator, padding)
    if not flip:
        params["mirrored"] = torch.zeros_like(params["mirrored"])
    return apply_crop_flip(x, params, padding)


def two_views(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Two independent augmentations of each image, stacked: ``[2B, C, H, W]`` (views of image i at i and B + i)."""
    return torch.cat([crop_flip(x, generator, padding), crop_flip(x, generator, padding)])


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 ``[B, C, H, W]`` on the 0-255 scale -> float (x - mean) / std per channel (mean, std on 0-255)."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float() - m) / s


def draw_supcon(n: int, generator: torch.Generator) -> Params:
    """The random numbers of :func:`apply_supcon` for ``n`` images, each ``[n]`` (``jitter_factor: [n, 3]``)."""

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=generator.device)

    names = ("area", "ratio", "tx", "ty", "flip", "jitter", "gray")
    params = {name: rand(n) for name in names}
    params["jitter_factor"] = rand(n, 3)
    return params


_GRAY = (0.299, 0.587, 0.114)


def apply_supcon(x: torch.Tensor, params: Params, scale: tuple[float, float] = (0.2, 1.0), jitter: float = 0.4,
                 p_jitter: float = 0.8, p_gray: float = 0.2) -> torch.Tensor:
    """The SupCon recipe on a uint8 batch ``[B, C, H, W]`` -> float in [0, 255]: random resized crop (area
    fraction in ``scale``, aspect ratio in [3/4, 4/3], bilinear, one affine grid per image), horizontal flip,
    colour jitter (brightness, contrast, saturation by factors in [1 - jitter, 1 + jitter], with probability
    ``p_jitter``) and grayscale (probability ``p_gray``); colour steps only for 3 channels."""
    _check_batch(x)
    b, c = x.shape[:2]
    u = {name: value.to(x.device) for name, value in params.items()}
    area = scale[0] + (scale[1] - scale[0]) * u["area"]
    ratio = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u["ratio"])
    sx = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width / image width
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    flip = torch.where(u["flip"] < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx * flip, (1 - sx) * (2 * u["tx"] - 1)
    theta[:, 1, 1], theta[:, 1, 2] = sy, (1 - sy) * (2 * u["ty"] - 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if c == 3:
        weights = torch.tensor(_GRAY, device=x.device).view(1, 3, 1, 1)
        factors = 1 - jitter + 2 * jitter * u["jitter_factor"]
        jittered = out * factors[:, 0, None, None, None]  # brightness
        mean = jittered.mean((1, 2, 3), keepdim=True)
        jittered = mean + (jittered - mean) * factors[:, 1, None, None, None]  # contrast
        gray_j = (jittered * weights).sum(1, keepdim=True)
        jittered = gray_j + (jittered - gray_j) * factors[:, 2, None, None, None]  # saturation
        out = torch.where((u["jitter"] < p_jitter)[:, None, None, None], jittered, out)
        gray = (out * weights).sum(1, keepdim=True)
        out = torch.where((u["gray"] < p_gray)[:, None, None, None], gray.expand_as(out), out)
    return out.clamp(0, 255)


def supcon_augment(x: torch.Tensor, generator: torch.Generator, scale: tuple[float, float] = (0.2, 1.0),
                   jitter: float = 0.4, p_jitter: float = 0.8, p_gray: float = 0.2) -> torch.Tensor:
    """:func:`apply_supcon` with fresh random numbers from ``generator``."""
    _check_batch(x)
    return apply_supcon(x, draw_supcon(len(x), generator), scale, jitter, p_jitter, p_gray)


@dataclass(frozen=True)
class Augmentation:
    """``draw(n, generator) -> params`` (CPU, seeded) and ``apply(x, params) -> x'`` (on x's device)."""

    draw: Callable[[int, torch.Generator], Params]
    apply: Callable[[torch.Tensor, Params], torch.Tensor]


AUGMENT: dict[str, Augmentation] = {
    "crop-flip": Augmentation(draw_crop_flip, apply_crop_flip),
    "supcon": Augmentation(lambda n, g: draw_supcon(n, g), apply_supcon),
    "none": Augmentation(lambda n, g: {}, lambda x, params: x),
}
assert tuple(AUGMENT) == AUGMENTATIONS  # the names the configs check (ufm.choices)
