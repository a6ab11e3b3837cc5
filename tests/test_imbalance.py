import pytest
import torch

from ufm.imbalance import balanced_counts, class_counts, labels_from_counts, long_tail_counts, minority_mask, step_counts


def test_step_counts_follow_the_literature():
    assert step_counts(10, 5000, 10, 0.5).tolist() == [5000] * 5 + [500] * 5
    assert step_counts(10, 100, 3, 0.3).tolist() == [100] * 7 + [33] * 3
    assert step_counts(4, 10, 1).tolist() == [10] * 4
    assert step_counts(5, 10, 1, 0.0).tolist() == [10] * 5  # R = 1: balanced whatever rho
    assert step_counts(3, 10, 2, 1 / 3).tolist() == [10, 10, 5]  # rho k = 1 up to rounding


def test_long_tail_counts_decay_exponentially():
    counts = long_tail_counts(10, 5000, 100)
    assert counts[0] == 5000 and counts[-1] == 50
    expected = [int(5000 * 100 ** (-c / 9) + 1e-9) for c in range(10)]
    assert counts.tolist() == expected
    assert long_tail_counts(1, 7, 10).tolist() == [7]


def test_balanced_and_dispatch():
    assert balanced_counts(3, 4).tolist() == [4, 4, 4]
    assert class_counts("step", 4, 10, 5).tolist() == [10, 10, 2, 2]
    assert class_counts("long-tail", 3, 100, 4).tolist() == [100, 50, 25]
    with pytest.raises(ValueError, match="unknown imbalance profile"):
        class_counts("zipf", 3, 10)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: step_counts(10, 5, 10), "increase n_major or lower ratio"),
        (lambda: step_counts(10, 5, 0.5), "ratio must be >= 1"),
        (lambda: step_counts(10, 5, 2, 1.5), r"minority_fraction must lie in \[0, 1\]"),
        (lambda: step_counts(0, 5, 2), "positive integer"),
        (lambda: long_tail_counts(10, 5, 100), "rarest class"),
        # no minority class at all: the ratio would be silently ignored
        (lambda: step_counts(5, 10, 2, 0.0), r"minority_fraction = 0 of k = 5 classes gives floor\(rho k\) = 0 minority"
                                             r" classes: the counts would be balanced and ratio would do nothing; use "
                                             r"minority_fraction >= 0.2 \(1/k\), or profile='balanced'"),
        (lambda: class_counts("step", 3, 10, 4, 0.3), "gives floor"),
    ],
)
def test_bad_profiles(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_labels_and_minority_mask():
    counts = step_counts(4, 3, 3)
    assert labels_from_counts(counts).tolist() == [0, 0, 0, 1, 1, 1, 2, 3]
    assert minority_mask(counts).tolist() == [False, False, True, True]
    assert not minority_mask(balanced_counts(3, 5)).any()
    assert minority_mask(torch.tensor([100, 50, 10, 1])).tolist() == [False, False, False, True]
