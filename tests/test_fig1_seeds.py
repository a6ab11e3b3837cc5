"""scripts/fig1_seeds.py: per-seed summaries from a preset folder, and their mean +- sample std table."""

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("fig1_seeds", Path(__file__).parents[1] / "scripts" / "fig1_seeds.py")
fig1_seeds = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fig1_seeds)


def _summary(distance: float) -> dict:
    final = {k: 0.5 for k in fig1_seeds.FINAL} | {"distance": distance}
    return {"epochs": 3, "final": final, "linear_probe_accuracy": 0.25, "train_seconds": 1.0, "counts": [2, 1]}


def test_extract_keeps_finished_runs_and_table_gives_mean_and_sample_std(tmp_path):
    files = []
    for seed, distance in enumerate((0.1, 0.3, 0.8)):
        folder = tmp_path / f"s{seed}"
        for run, scale in (("a", 1.0), ("b", 2.0)):
            (folder / run).mkdir(parents=True)
            (folder / run / "summary.json").write_text(json.dumps(_summary(scale * distance)))
        (folder / "unfinished").mkdir()  # no summary.json: not a finished run
        record = fig1_seeds.extract(folder)
        assert sorted(record) == ["a", "b"] and record["a"]["distance"] == distance
        files.append(tmp_path / f"seed{seed}.json")
        files[-1].write_text(json.dumps(record))
    rows = fig1_seeds.table(files).splitlines()
    assert len(rows) == 4 and rows[2].startswith("| a | 3 | 0.400 +- 0.361 |")  # mean 0.4, std (n-1) 0.3606
    assert rows[3].startswith("| b | 3 | 0.800 +- 0.721 |")
    with pytest.raises(SystemExit, match="no finished run"):
        fig1_seeds.extract(tmp_path / "empty")
