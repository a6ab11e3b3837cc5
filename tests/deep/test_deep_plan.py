"""Planning a set of training runs in one folder (ufm.deep.plan)."""

from ufm.deep.config import TrainConfig
from ufm.deep.plan import plan_set
from ufm.runio import read_json


def _config(root, seed):
    return TrainConfig(dataset="cifar10", data_root=str(root), n_major=12, ratio=4.0, width=4, embed_dim=16, epochs=1,
                       batch_size=16, device="cpu", seed=seed)


def test_a_set_continued_with_other_runs_keeps_listing_the_earlier_ones(tmp_path):
    from ufm.deep.synthetic import write_synthetic_cifar10

    root = write_synthetic_cifar10(tmp_path / "data", 12, 3)
    out = tmp_path / "set"
    finished, left = plan_set({"seed=0": _config(root, 0)}, out, {"seed=0": {"seed": 0}})
    assert finished == {} and list(left) == ["seed=0"]
    (out / "seed=0").mkdir()  # the first run has started
    plan_set({"seed=1": _config(root, 1)}, out, {"seed=1": {"seed": 1}})
    record = read_json(out / "config.json")
    assert record["points"] == ["seed=0", "seed=1"] and record["values"] == [{"seed": 0}, {"seed": 1}]
    assert [c["seed"] for c in record["configs"]] == [0, 1]
    # a run whose folder is gone is no longer listed; a run planned again keeps its place
    (out / "seed=0").rmdir()
    (out / "seed=1").mkdir()
    plan_set({"seed=2": _config(root, 2), "seed=1": _config(root, 1)}, out)
    assert read_json(out / "config.json")["points"] == ["seed=1", "seed=2"]
