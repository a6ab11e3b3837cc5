import json
from pathlib import Path

import numpy as np
import pytest

from ufm.runio import atomic_path, jsonable, read_jsonl, read_npz, write_json, write_jsonl, write_npz


def test_round_trips(tmp_path):
    write_json(tmp_path / "a.json", {"x": np.float64(1.5), "y": [float("nan")], "z": np.arange(3)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "y": [None], "z": [0, 1, 2]}
    write_jsonl(tmp_path / "m.jsonl", [{"a": 1}, {"a": 2}])
    assert read_jsonl(tmp_path / "m.jsonl") == [{"a": 1}, {"a": 2}]
    write_npz(tmp_path / "x.npz", g=np.eye(2))
    assert np.array_equal(read_npz(tmp_path / "x.npz")["g"], np.eye(2))
    assert jsonable({"k": (1, float("inf"))}) == {"k": [1, None]}


def test_a_write_killed_midway_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "checkpoint.json"
    write_json(target, {"epoch": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"epoch": 2, "trunc')
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]  # no temporary left behind


def test_killed_writes_leave_no_temporaries_for_good(tmp_path):
    """SIGKILL mid-write leaves `.name.*.tmp`; the next write of the same target removes it (not others')."""
    target = tmp_path / "checkpoint.pt"
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".metrics.jsonl.xyz.tmp"
    other.write_text("{}")
    write_json(target, {"epoch": 3})
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".metrics.jsonl.xyz.tmp", "checkpoint.pt"]


def test_files_follow_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {})
        write_npz(tmp_path / "b.npz", x=np.zeros(2))
        os.umask(0o077)
        write_jsonl(tmp_path / "c.jsonl", [{}])
    finally:
        os.umask(old)
    def mode(name):
        return stat.S_IMODE((tmp_path / name).stat().st_mode)

    assert mode("a.json") == 0o644 and mode("b.npz") == 0o644 and mode("c.jsonl") == 0o600


def test_malformed_files_name_the_file_and_the_place(tmp_path):
    from ufm.runio import read_json

    (tmp_path / "config.json").write_text('{"k": 4,\n "d": }')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON \(line 2, column 7"):
        read_json(tmp_path / "config.json")
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "lo\n')
    with pytest.raises(ValueError, match="metrics.jsonl line 2 is not valid JSON"):
        read_jsonl(tmp_path / "metrics.jsonl")
    (tmp_path / "arrays.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(ValueError, match="arrays.npz is not a readable .npz archive"):
        read_npz(tmp_path / "arrays.npz")
    np.save(tmp_path / "one.npy", np.eye(2))
    with pytest.raises(ValueError, match="one array, not an archive"):
        read_npz(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        read_json(tmp_path / "missing.json")


def test_load_checkpoint_refuses_empty_truncated_and_random_files(tmp_path):
    import os

    import torch

    from ufm.runio import load_checkpoint

    good = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "model": {"w": torch.ones(2)}}, good)
    assert load_checkpoint(good, required=("epoch", "model"))["epoch"] == 3
    data = good.read_bytes()
    cases = {"empty.pt": b"", "truncated.pt": data[: len(data) // 2], "random.pt": os.urandom(len(data)),
             "cut-tail.pt": data[:-30]}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"checkpoint .*{name}") as err:
            load_checkpoint(tmp_path / name)
        assert "start the run again" in str(err.value)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"lacks \['optimizer'\]"):
        load_checkpoint(good, required=("epoch", "optimizer"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_check_out_dir(tmp_path):
    from ufm.runio import check_out_dir

    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="lies under .*file, which is a file"):
        check_out_dir(tmp_path / "file" / "run")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_out_dir(tmp_path / "file")
    run = tmp_path / "run"
    assert check_out_dir(run / "deeper") == run / "deeper" and not run.exists()  # checks without creating
    run.mkdir()
    check_out_dir(run)  # an empty folder is fine
    (run / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds files \\(config.json\\); choose another --out or pass --overwrite"):
        check_out_dir(run)
    check_out_dir(run, overwrite=True)
    check_out_dir(run, run_folder=False)  # a figure folder: named PNGs are replaced
    with pytest.raises(ValueError, match="cannot be written"):
        check_out_dir("/proc/ufm-no-such-folder")


def test_the_current_folder_is_never_a_run_folder(tmp_path, monkeypatch):
    """``--out ''`` or ``--out .`` (or a folder holding the current one): a run folder is replaced as a whole."""
    from ufm.runio import check_out_dir, staged_dir

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for path in ("", ".", str(work), "..", str(tmp_path)):
        for overwrite in (False, True):
            with pytest.raises(ValueError, match="is the current folder.*give a run folder of its own"):
                check_out_dir(path, overwrite=overwrite)
    with pytest.raises(ValueError, match="is the current folder"):
        with staged_dir("", overwrite=True):
            pass
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # nothing left
    check_out_dir(".", run_folder=False)  # a folder for figures may be the current one
    assert check_out_dir("run") == Path("run")
