"""ufm.deep.batches: the bound examples, the batch checks made before a run writes anything, and one epoch's plan."""

import pytest
import torch

from ufm.deep.augment import AUGMENT
from ufm.deep.batches import check_batches, epoch_plan, first_of_each_class
from ufm.deep.config import TrainConfig
from ufm.errors import FieldError

LABELS = torch.tensor([2, 0, 0, 1, 2, 1, 0, 0])


def test_the_first_sample_of_each_class():
    assert first_of_each_class(LABELS, 3).tolist() == [1, 3, 0]


def test_a_batch_smaller_than_the_classes_is_refused_naming_the_batch_size():
    check_batches(TrainConfig(batch_size=4), LABELS, 3)
    with pytest.raises(FieldError, match="batch size batch_size = 2 is smaller than the number of classes k = 3") as e:
        check_batches(TrainConfig(batch_size=2), LABELS, 3)
    assert e.value.fields == ("batch_size",)


def test_an_epoch_plan_covers_every_sample_once_with_two_views_each():
    cfg = TrainConfig(batch_size=3, batching="shuffle")
    rows, offsets, draws = epoch_plan(cfg, LABELS, 3, None, torch.Generator().manual_seed(0), AUGMENT["crop-flip"])
    assert sorted(rows.tolist()) == list(range(len(LABELS)))  # each sample once, padding dropped
    assert offsets[0] == 0 and offsets[-1] == len(rows) and offsets == sorted(offsets)
    assert draws and all(len(v) == 2 * len(rows) for v in draws.values())
