"""The options of ``ufm verify-prop1`` (:class:`Prop1Config`), checked when built, torch-free (the command refuses bad
input before importing torch); :mod:`ufm.prop1` computes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ufm._config import Range, check_device_name, check_values
from ufm._config import option as _opt

__all__ = ["Prop1Config"]


@dataclass(frozen=True)
class Prop1Config:
    """``ufm verify-prop1``: the UFM minimizations behind :func:`ufm.prop1.minimizers` and :func:`ufm.prop1.scl_vs_ce`
    (the gaps of :func:`ufm.prop1.verify` need no options)."""

    epochs: int = _opt(2000, "epochs of the UFM minimizations (minimizers and the CE comparison)")
    device: str = _opt("cpu", "device of the UFM minimizations: cpu, cuda, cuda:N or auto")

    def __post_init__(self) -> None:
        check_values(self, {"epochs": Range(1)})
        check_device_name(self.device)

    def without_effect(self) -> dict[str, str]:
        return {}
