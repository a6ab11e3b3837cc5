import pytest
import torch

from ufm.batching import SCHEMES, batch_compositions, bound_examples, epoch_batches
from ufm.imbalance import labels_from_counts, step_counts

LABELS = labels_from_counts(step_counts(5, 20, 4))  # 3 x 20 + 2 x 5 = 70 samples


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("n", [7, 10, 70])
def test_shuffle_visits_every_sample_once_with_a_padded_last_batch(n):
    b = epoch_batches(LABELS, n, "shuffle", gen(), 5)
    assert b.index.shape == (-(-70 // n), n)
    assert sorted(b.index[b.mask].tolist()) == list(range(70))
    assert b.mask.sum().item() == 70
    assert b.ragged == (70 % n != 0)
    if b.ragged:  # only the tail of the last batch is padding
        assert b.mask[:-1].all() and b.mask[-1, : 70 % n].all() and not b.mask[-1, 70 % n :].any()


def test_reshuffling_draws_a_new_permutation_each_epoch_and_is_seeded():
    g = gen(3)
    first, second = epoch_batches(LABELS, 10, "shuffle", g, 5), epoch_batches(LABELS, 10, "shuffle", g, 5)
    assert not torch.equal(first.index, second.index)
    again = epoch_batches(LABELS, 10, "shuffle", gen(3), 5)
    assert torch.equal(first.index, again.index)


def test_full_batch():
    b = epoch_batches(LABELS, 1, "full", gen(), 5)
    assert b.index.tolist() == [list(range(70))] and not b.ragged


def test_binding_appends_the_same_one_per_class_examples_to_every_batch():
    g = gen(1)
    bound = bound_examples(LABELS, 5, g)
    assert sorted(LABELS[bound].tolist()) == [0, 1, 2, 3, 4]
    for _ in range(2):
        b = epoch_batches(LABELS, 8, "binding", g, 5, bound)
        assert b.index.shape[1] == 8 + 5
        assert (b.index[:, 8:] == bound).all() and b.mask[:, 8:].all()
        regular = b.index[:, :8][b.mask[:, :8]].tolist()
        assert sorted(regular) == sorted(set(range(70)) - set(bound.tolist()))  # the others exactly once
        comp = batch_compositions(LABELS, b, 5)
        assert (comp >= 1).all()  # every batch contains every class


def test_class_balanced_batches():
    b = epoch_batches(LABELS, 12, "balanced", gen(2), 5)
    comp = batch_compositions(LABELS, b, 5)
    assert b.index.shape == (6, 12) and (comp.sum(1) == 12).all()
    assert ((comp == 2) | (comp == 3)).all()  # 12 // 5 = 2 each, 2 extra slots
    for row in b.index:
        assert len(set(row.tolist())) == 12  # no repeat inside a batch
    with pytest.raises(ValueError, match="smallest class has 5"):
        epoch_batches(LABELS, 40, "balanced", gen(), 5)


def test_compositions_exclude_padding():
    b = epoch_batches(LABELS, 32, "shuffle", gen(), 5)
    comp = batch_compositions(LABELS, b, 5)
    assert comp.sum().item() == 70
    assert comp.sum(0).tolist() == [20, 20, 20, 5, 5]


@pytest.mark.parametrize(
    "n,scheme,k,message",
    [
        (3, "shuffle", 5, "smaller than the number of classes k=5"),
        (3, "balanced", 5, "smaller than the number of classes"),
        (100, "shuffle", 5, "exceeds the number of samples"),
        (10, "random", 5, "unknown batching scheme"),
        (10, "shuffle", 6, r"classes \[5\] have no samples"),
    ],
)
def test_bad_batching(n, scheme, k, message):
    with pytest.raises(ValueError, match=message):
        epoch_batches(LABELS, n, scheme, gen(), k)


def test_schemes_listed():
    assert set(SCHEMES) == {"full", "shuffle", "balanced", "binding"}
