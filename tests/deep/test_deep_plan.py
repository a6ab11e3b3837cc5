"""Planning a set of training runs in one folder (ufm.deep.plan): the set's record, the state of a run folder, one
Figure 1 per set."""

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


def test_a_run_folder_says_its_state_or_is_refused(tmp_path):
    """ufm.deep.plan.run_state: a new folder, a file, files of something else, a run of another configuration."""
    import json

    import pytest

    from ufm.deep.plan import run_state
    from ufm.folders import mark

    cfg = _config(tmp_path / "data", 0)
    assert run_state(cfg, tmp_path / "new") == "new"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a run folder"):
        run_state(cfg, tmp_path / "afile")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="holds metrics.jsonl but no config.json: not a training run folder"):
        run_state(cfg, tmp_path / "odd")
    run = tmp_path / "run"
    run.mkdir()
    mark(run, "train")
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    assert run_state(cfg, run) == "restart"  # started, no checkpoint yet
    (run / "checkpoint.pt").write_bytes(b"")
    assert run_state(cfg, run) == "resume"
    (run / "summary.json").write_text("{}")
    assert run_state(cfg, run) == "done"
    with pytest.raises(ValueError, match="holds a training run of another configuration .*seed"):
        run_state(_config(tmp_path / "data", 1), run)


def test_runs_of_different_numbers_of_classes_cannot_share_a_figure():
    import pytest

    from ufm.deep.plan import check_one_figure

    check_one_figure({"a": 4, "b": 4})
    with pytest.raises(ValueError, match=r"runs a \(4 classes\) and b \(3 classes\) cannot share the set's Figure 1"):
        check_one_figure({"a": 4, "b": 3})
