"""ufm.kinds: each kind of experiment, as the engine runs it: registered under its name, its run writes its folder
with the result file last, its rows, and its checks before anything runs."""

import importlib
import json

import numpy as np
import pytest

from ufm.collapse import CollapseCell
from ufm.deep.config import TrainConfig
from ufm.grid import Point
from ufm.kinds import collapse as collapse_kind
from ufm.kinds import map as map_kind
from ufm.kinds import simulate as simulate_kind
from ufm.kinds import solve as solve_kind
from ufm.kinds import train as train_kind
from ufm.maps import MapCell
from ufm.registry import KINDS
from ufm.sim_config import SimConfig
from ufm.spec import SolveConfig


def test_every_registered_kind_is_named_as_registered_with_its_result_file():
    results = {"simulate": "summary.json", "solve": "solution.json", "map": "cell.json", "collapse": "cell.json",
               "train": "summary.json"}
    for name, entry in KINDS.items():
        kind = importlib.import_module(entry.module).KIND
        assert kind.name == name and kind.result == results[name]
    assert (map_kind.KIND.noun, collapse_kind.KIND.noun, train_kind.KIND.noun) == ("cells", "cells", "runs")
    assert train_kind.KIND.points_dir == "" and "data_root" in train_kind.KIND.ignore


def test_a_solve_point_writes_its_folder_and_row(tmp_path):
    cfg = SolveConfig(counts="2,2,1,1", tau=0.5, n_w=5.0)
    solve_kind.KIND.run(cfg, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "arrays.npz", "gram.png", "solution.json"}
    data = json.loads((tmp_path / "solution.json").read_text())
    (row,) = solve_kind.KIND.rows(Point("n_w=5", {"n_w": 5.0}, cfg), tmp_path, data)
    assert row["point"] == "n_w=5" and row["status"] == "optimal" and row["distance"] == data["distance"]
    assert set(solve_kind.METRICS) <= set(row)


def test_a_map_cell_writes_its_row_last(tmp_path):
    cell = MapCell(k=4, n_major=6, ratio=2.0, tau=0.5, n_w=5.0, solver="BM")
    map_kind.KIND.run(cell, tmp_path)
    row = json.loads((tmp_path / "cell.json").read_text())
    assert json.loads((tmp_path / "config.json").read_text()) == cell.to_dict()
    assert np.isfinite(row["distance"])
    assert map_kind.KIND.rows(Point("c", {}, cell), tmp_path, row) == [{**row, "point": "c"}]


def test_a_collapse_cell_writes_its_row(tmp_path):
    cell = CollapseCell(counts=(2, 2, 1, 1), tau=0.5, n_w=5.0)
    collapse_kind.KIND.run(cell, tmp_path)
    row = json.loads((tmp_path / "cell.json").read_text())
    assert row["verdict"] != "error"
    (labelled,) = collapse_kind.KIND.rows(Point("c", {"anchors": "prototype"}, cell), tmp_path, row)
    assert labelled == {**row, "anchors": "prototype"}


def test_checks_refuse_before_anything_runs(tmp_path):
    with pytest.raises(ValueError):
        solve_kind.KIND.check([Point("big", {}, SolveConfig(k=4, n_major=6, n_w=5.0, batching="shuffle",
                                                             batch_size=2))])
    assert train_kind.KIND.state(TrainConfig(), tmp_path / "none") == "new"
    summary = {"epochs": 2, "final": {"distance": 0.1, "cdnv": 0.3, "nc4": 0.9}, "linear_probe_accuracy": 0.5}
    (row,) = train_kind.KIND.rows(Point("seed=0", {"seed": 0}, TrainConfig()), tmp_path, summary)
    run = {"n_w": 1.0, "tau": 0.1, "seed": 0, "distance": 0.2, "loss": 3.0, "cdnv": 0.4, "nc4": 1.0}
    (simulated,) = simulate_kind.KIND.rows(Point("p", {}, SimConfig()), tmp_path, {"runs": [run]})
    assert (simulated["final_loss"], simulated["cdnv"], simulated["nc4"], simulated["nc2"]) == (3.0, 0.4, 1.0, None)
    assert row["run"] == row["point"] == "seed=0" and row["distance"] == 0.1 and row["nc1"] is None
    assert (row["cdnv"], row["nc4"], row["nc1_ref"]) == (0.3, 0.9, None)  # the field's NC metrics are columns
