"""The CIFAR ResNet-18 (3x3 stem, no max-pool) with a width multiplier and a unit-norm embedding head.

Widths are ``width x (1, 2, 4, 8)`` (``width = 64`` is the standard 512-d network).  Heads:

- ``relu``: the pooled post-ReLU features themselves (non-negative, as in Kini et al. 2023, whose SCL
  geometry is the orthogonal frame); the embedding dimension is 8 x width;
- ``linear``: a linear map of the pooled features to ``embed_dim`` (can reach negative cosines, such as
  the simplex ETF).

The output is L2-normalized: ``[B, d]`` unit rows, ready for :func:`ufm.losses.scl_loss`.
"""

from __future__ import annotations

import torch
from torch import nn

from ufm.choices import HEADS
from ufm.errors import FieldError

__all__ = ["HEADS", "ResNet18", "check_head_reaches", "activation_floats"]



class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """``forward(x: [B, C, 32, 32] float) -> [B, d]`` unit embeddings; ``features(x)`` the pooled features."""

    def __init__(self, width: int = 64, head: str = "linear", embed_dim: int = 128, in_channels: int = 3) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        if width < 1 or embed_dim < 1:
            raise ValueError(f"width and embed_dim must be >= 1, got {width}, {embed_dim}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, c_in = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            c_out = width * 2**i
            layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, embed_dim) if head == "linear" else nn.Identity()
        self.embed_dim = embed_dim if head == "linear" else c_in

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head(self.features(x)), dim=-1)


def check_head_reaches(g_star: torch.Tensor, head: str, embed_dim: int | None = None) -> None:
    """Refuse a target with negative cosines for the non-negative ``relu`` head, and one whose rank exceeds the
    embedding dimension (no ``embed_dim``-dimensional prototypes realize it)."""
    if embed_dim is not None:
        lam = torch.linalg.eigvalsh(torch.as_tensor(g_star, dtype=torch.float64))
        rank = int((lam > 1e-9 * lam.max()).sum())
        if rank > embed_dim:
            raise FieldError(f"the target G_* has rank {rank}, more than the embedding dimension {{embed_dim}} = "
                             f"{embed_dim}: no prototypes realize it; use {{embed_dim}} >= {rank} or a lower-rank "
                             "target")
    if head == "relu" and bool((torch.as_tensor(g_star) < -1e-9).any()):
        raise FieldError(
            "the target G_* has negative cosines, which non-negative (relu-head) embeddings cannot reach; "
            "use {head=linear}, or an orthogonal-frame target ({geometry=orthogonal})"
        )


def activation_floats(width: int, head: str, embed_dim: int, channels: int, size: tuple[int, int]) -> int:
    """Numbers in the outputs of every module for one image of ``channels x size``: about what a training step keeps
    for the backward per image.  Counted on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        model = ResNet18(width, head, embed_dim, channels).eval()  # eval: BatchNorm takes a single tiny image
        total = 0

        def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            nonlocal total
            if isinstance(output, torch.Tensor):
                total += output.numel()

        hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
        model(torch.empty(1, channels, *size))
        for hook in hooks:
            hook.remove()
    return total
