"""Planning a set of training runs in one folder (ufm.deep.plan)."""

from ufm.deep.config import TrainConfig


def _config(root, seed):
    return TrainConfig(dataset="cifar10", data_root=str(root), n_major=12, ratio=4.0, width=4, embed_dim=16, epochs=1,
                       batch_size=16, device="cpu", seed=seed)


def test_a_set_continued_with_other_runs_keeps_listing_the_earlier_ones(tmp_path):
    """A training set given other runs (a study given more seeds) keeps listing the runs it holds (ufm.records)."""
    from ufm.grid import Point
    from ufm.records import merged, record

    root = tmp_path / "data"
    out = tmp_path / "set"
    (out / "seed=0").mkdir(parents=True)  # the first run has started
    (out / "config.json").write_text(__import__("json").dumps(record("train", [Point("seed=0", {"seed": 0},
                                                                                     _config(root, 0))])))
    rec = merged(out, "", record("train", [Point("seed=1", {"seed": 1}, _config(root, 1))]))
    assert rec["points"] == ["seed=0", "seed=1"] and rec["values"] == [{"seed": 0}, {"seed": 1}]
    assert [c["seed"] for c in rec["configs"]] == [0, 1]
    (out / "seed=0").rmdir()  # a run whose folder is gone is no longer listed
    assert merged(out, "", record("train", [Point("seed=1", {}, _config(root, 1))]))["points"] == ["seed=1"]
