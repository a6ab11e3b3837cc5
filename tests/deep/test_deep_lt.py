"""The CIFAR-10-LT protocol (preset cifar10-lt): the long-tail counts, many/medium/few-shot accuracies, and every run
of the preset at a tiny size on CIFAR-format data (the small version of the protocol that runs in CI)."""


import pytest

from ufm.deep.config import preset
from ufm.deep.evaluate import shot_accuracies
from ufm.imbalance import class_counts, shot_groups


def test_the_preset_is_the_literature_protocol():
    runs = preset("cifar10-lt")
    assert set(runs) == {"supcon", "scl-etf", "scl-etf-batch-anchors", "class-averaging-binding", "ce-etf"}
    cfg = runs["supcon"]
    counts = class_counts(cfg.profile, 10, cfg.n_major, cfg.ratio, cfg.minority_fraction)
    assert counts.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50] and int(counts.sum()) == 12406
    assert cfg.test_per_class == 0  # the whole balanced test set
    assert (runs["scl-etf"].prototype_anchors, runs["scl-etf-batch-anchors"].prototype_anchors) == (True, False)
    assert runs["class-averaging-binding"].batching == "binding" and runs["ce-etf"].loss == "ce"
    assert {r.epochs for r in runs.values()} == {200}


def test_shot_groups_and_accuracies_by_hand():
    assert shot_groups([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]) == ["many"] * 8 + ["medium"] * 2
    assert shot_groups([101, 100, 20, 19]) == ["many", "medium", "medium", "few"]
    acc = shot_accuracies({"probe": [1.0, 0.5, 0.2, 0.4], "ncc": [0.0, 0.0, 1.0, 1.0]}, [150, 50, 10, 5])
    assert acc == {"probe": {"many": 1.0, "medium": 0.5, "few": pytest.approx(0.3)},
                   "ncc": {"many": 0.0, "medium": 0.0, "few": 1.0}}
