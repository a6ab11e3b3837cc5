"""The CIFAR-10-LT protocol (preset cifar10-lt): the long-tail counts, many/medium/few-shot accuracies, and every run
of the preset at a tiny size on CIFAR-format data (the small version of the protocol that runs in CI)."""

import json

import pytest
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.deep.config import preset
from ufm.deep.evaluate import shot_accuracies
from ufm.deep.synthetic import write_synthetic_cifar10
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


def test_every_run_of_the_protocol_at_a_tiny_size(tmp_path):
    write_synthetic_cifar10(tmp_path / "data", train_per_class=40, test_per_class=5)
    result = CliRunner().invoke(app, [
        "train", "--preset", "cifar10-lt", "--data-root", str(tmp_path / "data"), "--ratio", "10", "--n-major", "40",
        "--test-per-class", "5", "--width", "4", "--embed-dim", "16", "--batch-size", "16", "--augment", "none",
        "--epochs", "1", "--eval-every", "1", "--device", "cpu", "--out", str(tmp_path / "lt"), "--json"])
    assert result.exit_code == 0, result.output
    summaries = json.loads(result.output)
    assert set(summaries) == set(preset("cifar10-lt"))
    for s in summaries.values():
        assert s["counts"] == [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]
        groups = shot_groups(s["counts"])
        for name, per_class in s["per_class_accuracy"].items():
            assert len(per_class) == 10
            for group, value in s["shot_accuracy"][name].items():
                mine = [a for a, g in zip(per_class, groups) if g == group]
                assert value == pytest.approx(sum(mine) / len(mine))
        assert set(s["shot_accuracy"]["probe"]) == {"medium", "few"}  # no class above 100 images here
        # a balanced test set: top-1 is the mean of the per-class accuracies
        assert s["linear_probe_accuracy"] == pytest.approx(sum(s["per_class_accuracy"]["probe"]) / 10)
