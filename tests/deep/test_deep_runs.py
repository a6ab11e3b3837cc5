"""ufm.deep.runs: what ``ufm train`` runs, planned and checked before any folder is written (one run, a preset, a
grid, a resume)."""

import pytest

from ufm.deep.config import TrainConfig
from ufm.deep.runs import PRESETS, plan_training
from ufm.errors import FieldError


def test_one_run_trains_in_its_own_folder(tmp_path):
    cfg = TrainConfig(epochs=3)
    plan = plan_training(cfg, {"epochs": 3}, tmp_path / "run")
    assert plan.runs == {"run": cfg} and plan.out == tmp_path / "run" and not plan.is_set and not plan.resume


def test_a_grid_is_a_set_of_named_runs_with_their_values(tmp_path):
    plan = plan_training(TrainConfig(), {}, tmp_path / "set", grid=["n_w=0,100"])
    assert plan.is_set and len(plan.runs) == 2
    assert sorted(v["n_w"] for v in plan.values.values()) == [0.0, 100.0]
    assert {c.n_w for c in plan.runs.values()} == {0.0, 100.0}
    name = next(iter(PRESETS))
    preset_plan = plan_training(TrainConfig(), {}, tmp_path / "p", preset_name=name)
    assert preset_plan.is_set and len(preset_plan.runs) >= 2


def test_what_cannot_be_planned_is_refused_before_any_folder(tmp_path):
    with pytest.raises(FieldError, match="nproc must be >= 1, got 0"):
        plan_training(TrainConfig(), {}, tmp_path / "r", nproc=0)
    with pytest.raises(FieldError, match="n_w is given both as an option and in --grid; keep one"):
        plan_training(TrainConfig(n_w=5.0), {"n_w": 5.0}, tmp_path / "r", grid=["n_w=0,100"])
    with pytest.raises(FieldError, match="gamma has no effect"):
        plan_training(TrainConfig(gamma=2.0), {"gamma": 2.0}, tmp_path / "r")
    with pytest.raises(ValueError, match="--resume continues one run folder; drop --preset and --grid"):
        plan_training(TrainConfig(), {}, tmp_path / "r", grid=["n_w=0,100"], resume=tmp_path / "r")
    with pytest.raises(ValueError, match="drop --out"):
        plan_training(TrainConfig(), {}, tmp_path / "r", resume=tmp_path / "r", out_given=True)
    with pytest.raises(FileNotFoundError, match="does not exist; give the folder of a training run"):
        plan_training(TrainConfig(), {}, tmp_path / "r", resume=tmp_path / "none")
    assert list(tmp_path.iterdir()) == []
