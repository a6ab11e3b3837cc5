"""ufm._checks: the library's shared input checks name the argument, what was found and what to change."""

import math

import pytest
import torch

from ufm._checks import (MEMORY_ENV, check_float_tensor, check_labels, check_memory, check_positive,
                         memory_limit_bytes, unit_norm_tolerance)
from ufm.errors import FieldError


def test_unit_norm_tolerance_is_the_square_root_of_machine_epsilon():
    assert unit_norm_tolerance(torch.float64) == math.sqrt(torch.finfo(torch.float64).eps)
    assert unit_norm_tolerance(torch.float32) > unit_norm_tolerance(torch.float64)


def test_float_tensors_are_checked_with_a_fix_in_each_message():
    unit = torch.nn.functional.normalize(torch.randn(4, 3, dtype=torch.float64), dim=-1)
    check_float_tensor(unit, "h", 2, require_unit_norm=True)
    for bad, message in (([[1.0]], "h must be a torch.Tensor, got list; wrap it with torch.as_tensor"),
                         (torch.ones(2, 2, dtype=torch.long), "must be a floating-point tensor, got dtype torch.int64"),
                         (torch.ones(3), r"h must have at least 2 dims, got shape \(3,\)"),
                         (torch.full((2, 2), float("nan")), "h has 4 non-finite"),
                         (2 * unit, "rows must be unit-norm .* normalize with torch.nn.functional.normalize")):
        with pytest.raises(ValueError, match=message):
            check_float_tensor(bad, "h", 2, require_unit_norm=True)
    # rows that do not exist (valid False) are not checked for unit norm
    padded = torch.cat([unit, torch.zeros(1, 3, dtype=torch.float64)])
    check_float_tensor(padded, "h", 2, require_unit_norm=True, valid=torch.tensor([True] * 4 + [False]))


def test_labels_are_integers_one_per_row_within_the_classes():
    check_labels(torch.tensor([0, 1, 1]), torch.Size([3]), 2)
    for y, message in ((torch.tensor([0.0, 1.0, 1.0]), "labels y must be an integer tensor"),
                       (torch.tensor([0, 1]), r"labels y of shape \(2,\) do not match the embeddings"),
                       (torch.tensor([0, -1, 1]), "labels must be >= 0, found -1"),
                       (torch.tensor([0, 2, 1]), r"label 2 is outside \[0, 2\).*relabel the classes")):
        with pytest.raises(ValueError, match=message):
            check_labels(y, torch.Size([3]), 2)


def test_positive_values_scalar_or_tensor():
    check_positive(0.5, "tau", allow_zero=False)
    check_positive(0, "n_w", allow_zero=True)
    check_positive(torch.tensor([0.0, 2.0]), "n_w", allow_zero=True)
    for value, allow_zero, message in ((0, False, "tau must be > 0, got 0"), (-1.0, True, "tau must be >= 0, got -1"),
                                       (float("inf"), True, "tau must be finite, got inf"),
                                       (torch.tensor([1.0, -2.0]), True, "tau must be >= 0, got -2")):
        with pytest.raises(ValueError, match=message):
            check_positive(value, "tau", allow_zero)


def test_the_memory_limit_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "2")
    assert memory_limit_bytes(1.0) == (1024**3, "the limit 1 GiB set by max_memory_gb")
    assert memory_limit_bytes() == (2 * 1024**3, f"the limit 2 GiB set by {MEMORY_ENV}")
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MEMORY_ENV}='lots' is not a number of GiB"):
        memory_limit_bytes()
    with pytest.raises(ValueError, match="max_memory_gb must be a positive number of GiB, got -1"):
        memory_limit_bytes(-1.0)
    monkeypatch.delenv(MEMORY_ENV)
    limit, source = memory_limit_bytes()
    assert limit > 0 and source.endswith("GiB available on cpu")


def test_a_computation_over_the_limit_is_refused_with_its_estimate_and_the_fix():
    check_memory(1024**3, "the check", "lower {n}", max_memory_gb=2.0)
    with pytest.raises(FieldError) as err:
        check_memory(3 * 1024**3, "the check of n = 9", "lower {n}", max_memory_gb=2.0)
    assert str(err.value) == ("the check of n = 9 needs about 3 GiB, more than the limit 2 GiB set by max_memory_gb; "
                              "lower n, or raise the limit (max_memory_gb) if the estimate is too cautious")
    assert err.value.fields == ("n", "max_memory_gb")
