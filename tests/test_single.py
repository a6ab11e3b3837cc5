"""Single runs (ufm.single): run_one is staged and marked by the engine; run_here runs in place and resumes."""

import json

import pytest

from ufm.simulate import SimConfig
from ufm.single import check_run_folder, run_one, run_here

TINY = SimConfig(k=3, n_major=8, ratio=2.0, d=4, batch_size=8, epochs=4, log_every=2, n_w=(0.0, 10.0), device="cpu")


def test_run_one_writes_a_marked_folder_and_a_failed_run_leaves_none(tmp_path):
    run_one(tmp_path / "a", "simulate", TINY)
    assert json.loads((tmp_path / "a" / "kind.json").read_text())["kind"] == "simulate"
    assert (tmp_path / "a" / "summary.json").is_file() and (tmp_path / "a" / "gram_heatmaps.png").is_file()
    with pytest.raises(ValueError, match="already holds files"):
        run_one(tmp_path / "a", "simulate", TINY)  # never silently overwritten

    def fail(cfg, stage):
        (stage / "partial.json").write_text("{}")
        raise ValueError("the run failed halfway")

    with pytest.raises(ValueError, match="halfway"):
        run_one(tmp_path / "b", "simulate", TINY, runner=fail)
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))  # staged: nothing half-written
    with pytest.raises(ValueError, match="has no single run folder"):
        check_run_folder(tmp_path / "c", "map")


def test_run_here_refuses_files_of_something_else_and_leaves_no_folder_when_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files \(notes.txt\) but no run; choose another --out"):
        run_here(tmp_path / "x", "simulate", TINY)
    assert (tmp_path / "x" / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError):
        run_here(tmp_path / "y", "simulate", SimConfig(**{**TINY.to_dict(), "d": 1}))  # refused by the kind's check
    assert not (tmp_path / "y").exists()
    run_here(tmp_path / "z", "simulate", TINY)
    assert (tmp_path / "z" / "summary.json").is_file()
    assert run_here(tmp_path / "z", "simulate", TINY) is None  # done: nothing runs again
