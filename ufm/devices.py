"""Device resolution shared by the simulator and the trainer (one place for what ``--device`` means)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ufm.errors import FieldError, literal

__all__ = ["resolve_device"]

if TYPE_CHECKING:
    import torch


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``device`` option: ``auto`` is CUDA when present, else CPU; ``cpu``, ``cuda``,
    ``cuda:N``.  A device that is not here is refused (ValueError) with what to use instead (torch is imported here,
    when a command computes: the configs check a device name's spelling without it)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise FieldError(f"unknown {{device}} {literal(repr(name))}: use auto, cpu or cuda") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FieldError("{device=cuda} was asked for but CUDA is not available here; use {device=cpu} or {device=auto}")
    return device
