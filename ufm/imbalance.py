"""Class-count profiles (balanced, STEP, long-tail) and the labels they give.

STEP (Cao et al. 2019; Kini et al. 2023): the first k - floor(rho k) classes are majorities with
n samples, the last floor(rho k) are minorities with n // R samples.  Long-tail (exponential,
Cui et al. 2019): class c in 0..k-1 has floor(n R^(-c/(k-1))) samples.
"""

from __future__ import annotations

import math

import torch

from ufm.choices import (MAX_CLASS_COUNT, MAX_CLASSES, PROFILES, check_profile, count_list,  # noqa: F401
                         minority_classes)  # (re-exported: the rules, torch-free)
from ufm.errors import FieldError, literal

__all__ = [
    "PROFILES",
    "balanced_counts",
    "step_counts",
    "minority_classes",
    "long_tail_counts",
    "class_counts",
    "labels_from_counts",
    "minority_mask",
    "shot_groups",
    "SHOTS",
    "parse_counts",
]



def _check(k: int, n: int, ratio: float) -> None:
    if not isinstance(k, int) or k < 1:
        raise FieldError(f"the number of classes {{k}} must be a positive integer, got {literal(repr(k))}")
    if not isinstance(n, int) or n < 1:
        raise FieldError(f"the samples per majority class {{n_major}} must be a positive integer, got {literal(repr(n))}")
    if not math.isfinite(ratio) or ratio < 1:
        raise FieldError(f"the imbalance ratio {{ratio}} must be >= 1 (1 is balanced), got {ratio}")


def balanced_counts(k: int, n: int) -> torch.Tensor:
    """``[k]`` counts, all equal to n."""
    _check(k, n, 1.0)
    return torch.full((k,), n, dtype=torch.long)


def step_counts(k: int, n: int, ratio: float, minority_fraction: float = 0.5) -> torch.Tensor:
    """``[k]`` STEP counts: majorities n, the last floor(rho k) classes n // R (at least one unless R = 1)."""
    _check(k, n, ratio)
    check_profile("step", k, n, ratio, minority_fraction)
    n_min, k_min = int(n // ratio), minority_classes(k, minority_fraction)
    counts = torch.full((k,), n, dtype=torch.long)
    counts[k - k_min :] = n_min
    return counts


def long_tail_counts(k: int, n: int, ratio: float) -> torch.Tensor:
    """``[k]`` exponential long-tail counts floor(n R^(-c/(k-1))), c = 0..k-1 (all n when k = 1)."""
    _check(k, n, ratio)
    check_profile("long-tail", k, n, ratio)
    if k == 1:
        return torch.tensor([n])
    c = torch.arange(k, dtype=torch.float64)
    counts = torch.floor(n * ratio ** (-c / (k - 1)) + 1e-9).long()
    if int(counts.min()) < 1:
        raise FieldError(f"the rarest class would get {int(counts.min())} samples; increase {{n_major}} or lower {{ratio}}")
    return counts


def class_counts(profile: str, k: int, n: int, ratio: float = 1.0, minority_fraction: float = 0.5) -> torch.Tensor:
    """Counts by profile name: ``balanced``, ``step`` or ``long-tail``."""
    if profile == "balanced":
        return balanced_counts(k, n)
    if profile == "step":
        return step_counts(k, n, ratio, minority_fraction)
    if profile == "long-tail":
        return long_tail_counts(k, n, ratio)
    raise FieldError(f"unknown imbalance {{profile}} {literal(repr(profile))}; choose one of {', '.join(PROFILES)}")


def labels_from_counts(counts) -> torch.Tensor:
    """Labels ``[N]`` sorted by class: counts[c] copies of c."""
    counts = torch.as_tensor(counts, dtype=torch.long)
    return torch.repeat_interleave(torch.arange(len(counts)), counts)


SHOTS = ("many", "medium", "few")


def shot_groups(counts, many: int = 100, few: int = 20) -> list[str]:
    """The long-tail literature's groups by training count (Liu et al. 2019, OLTR): ``many`` (more than ``many``
    images), ``few`` (fewer than ``few``), ``medium`` (between, inclusive), one per class."""
    return ["many" if int(n) > many else "few" if int(n) < few else "medium" for n in counts]


def minority_mask(counts) -> torch.Tensor:
    """``[k]`` bool: classes with fewer samples than sqrt(max count x min count).

    For STEP this is exactly the minority group; balanced counts have no minority.
    """
    n = torch.as_tensor(counts, dtype=torch.float64)
    if bool((n == n.max()).all()):
        return torch.zeros(len(n), dtype=torch.bool)
    return n < torch.sqrt(n.max() * n.min())


def parse_counts(spec: str) -> torch.Tensor:
    """Class counts from text: ``"5000x5,500x5"`` (count x number of classes) or ``"50,50,5"`` (rules:
    :func:`ufm.choices.count_list`)."""
    return torch.tensor(count_list(spec))
