import json

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
