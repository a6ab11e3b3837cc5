"""One specification (issue 12): the shared class-count and target-geometry fields declared once, old configs
still loading (the flags generated from them are tested with their commands, tests/cli/), and options or grid fields
without effect refused instead of run as identical copies."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _cli import refused
from ufm.deep.config import TrainConfig
from ufm.geometry import make_gram
from ufm.simulate import SimConfig, build_problem
from ufm.spec import (CheckConfig, ClassCounts, ImbalanceProfile, NamedGeometry, ProblemSpec,
                      SolveConfig, TargetGeometry)
from ufm.engine import check_grid_effects, run_grid as run_sweep

runner = CliRunner()


def _fields(cls) -> dict:
    return {f.name: f for f in dataclasses.fields(cls)}



# --- the shared fields, declared once ------------------------------------------------------------------------------

def test_shared_fields_are_the_same_field_objects():
    """Every config takes the class-count and geometry fields (default, help) from the blocks of ufm.spec."""
    blocks = {ImbalanceProfile: ("profile", "n_major", "ratio", "minority_fraction"), ClassCounts: ("k",),
              NamedGeometry: ("geometry", "gamma"), TargetGeometry: ("gram_file",)}
    users = {ProblemSpec: (ImbalanceProfile, ClassCounts, NamedGeometry, TargetGeometry),
             SolveConfig: (ImbalanceProfile, ClassCounts, NamedGeometry, TargetGeometry),
             SimConfig: (ImbalanceProfile, ClassCounts, NamedGeometry, TargetGeometry),
             CheckConfig: (NamedGeometry, TargetGeometry),
             TrainConfig: (ImbalanceProfile, NamedGeometry)}
    for cls, used in users.items():
        own = _fields(cls)
        for block in used:
            for name in blocks[block]:
                if cls is TrainConfig and name == "n_major":
                    continue  # overridden on purpose: 0 = all the images of the data set
                assert own[name] is _fields(block)[name], (cls.__name__, name)
    # TrainConfig: k comes from the data set, no Gram file; n_major defaults to 0 and 0 is valid
    assert "k" not in _fields(TrainConfig) and "gram_file" not in _fields(TrainConfig)
    assert TrainConfig().n_major == 0 and SimConfig().n_major == ProblemSpec().n_major == 50
    with pytest.raises(ValueError, match="n_major must be >= 1"):
        SimConfig(n_major=0)


@pytest.mark.parametrize("cls", [ProblemSpec, SimConfig, TrainConfig])
def test_shared_validation_and_reasons_are_written_once(cls):
    for kwargs, message in (({"ratio": 0.5}, "ratio must be >= 1"), ({"profile": "zipf"}, "profile 'zipf' is not"),
                            ({"minority_fraction": 1.5}, "minority_fraction must be in [0, 1]"),
                            ({"geometry": "simplex"}, "geometry 'simplex' is not"), ({"gamma": -1.0}, "gamma must be")):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
            cls(**kwargs)
    without = cls(profile="balanced").without_effect()
    assert without["ratio"] == "with balanced counts"
    assert without["minority_fraction"] == "with {profile} balanced (step only)"
    assert without["gamma"] == "without the minority geometry"
    assert "gamma" not in cls(geometry="minority").without_effect()


def test_target_geometry_g_star_is_one_computation():
    counts = torch.tensor([20, 20, 4, 4])
    for geometry in ("etf", "orthogonal", "minority"):
        expected = make_gram(geometry, 4, counts, 0.5)
        sim = build_problem(SimConfig(k=4, n_major=20, ratio=5, geometry=geometry, gamma=0.5)).g_star
        spec = ProblemSpec(counts="20x2,4x2", geometry=geometry, gamma=0.5).g_star()
        assert torch.allclose(sim, expected.to(sim.dtype)) and torch.allclose(spec, expected.to(spec.dtype))


def test_gram_file_size_refused_with_the_fix(tmp_path):
    np.save(tmp_path / "g.npy", np.eye(3))
    for cfg in (SimConfig(k=4, gram_file=str(tmp_path / "g.npy")), CheckConfig(k=4, gram_file=str(tmp_path / "g.npy"))):
        with pytest.raises(ValueError, match=r"is 3 x 3 but there are 4 classes; make them match \(k = 3"):
            build_problem(cfg) if isinstance(cfg, SimConfig) else cfg.g_star()


# --- old configs still load ----------------------------------------------------------------------------------------

OLD_SIM = {"k": 6, "profile": "step", "n_major": 12, "ratio": 4.0, "minority_fraction": 0.5, "d": 8, "geometry": "etf",
           "gamma": 1.0, "gram_file": None, "loss": "scl", "n_w": [0.0, 100.0], "tau": [0.1], "seeds": [0],
           "prototype_anchors": True, "relu": False, "batching": "shuffle", "batch_size": 32, "optimizer": "adam",
           "lr": 0.1, "momentum": 0.9, "schedule": "cosine", "epochs": 4000, "tol": 0.0, "log_every": 10,
           "dtype": "float32", "device": "auto"}
OLD_SOLVE = {"counts": None, "k": 10, "profile": "step", "n_major": 50, "ratio": 10.0, "minority_fraction": 0.5,
             "tau": 0.1, "n_w": 0.0, "geometry": "etf", "gamma": 1.0, "gram_file": None, "prototype_anchors": True,
             "batching": "full", "batch_size": 32, "seed": 0, "solver": "auto", "reduce": True, "relu": False}
OLD_TRAIN = {"dataset": "cifar10", "data_root": "data", "profile": "step", "ratio": 10.0, "minority_fraction": 0.5,
             "n_major": 0, "test_per_class": 0, "loss": "scl", "n_w": 100.0, "prototype_anchors": True,
             "reduction": "mean", "geometry": "etf", "gamma": 1.0, "tau": 0.1, "batching": "shuffle",
             "binding_examples": "random", "batch_size": 128, "epochs": 350, "lr": 0.1, "lr_schedule": "step",
             "momentum": 0.9, "weight_decay": 5e-4, "width": 64, "head": "linear", "augment": "crop-flip",
             "embed_dim": 128, "eval_every": 10, "checkpoint_every": 10, "seed": 0, "device": "auto",
             "compile": False, "dtype": "float32"}


@pytest.mark.parametrize("cls, old", [(SimConfig, OLD_SIM), (SolveConfig, OLD_SOLVE), (TrainConfig, OLD_TRAIN)])
def test_config_json_of_before_the_blocks_still_loads(cls, old):
    """A config.json written before the shared blocks (every key of the time) loads and writes the same keys."""
    cfg = cls.from_dict(json.loads(json.dumps(old)))
    new = json.loads(json.dumps(cfg.to_dict()))
    # fields added since, at their defaults (no change to what the run computes)
    added = {SimConfig: {"counts": None}, TrainConfig: {"prototype_cosines": []}}.get(cls, {})
    assert new == {**old, **added}
    if cls is not TrainConfig:  # the defaults of the time are still the defaults
        assert cls().to_dict().keys() == {**old, **added}.keys()
    with pytest.raises(ValueError, match="unknown config fields"):
        cls.from_dict({**old, "n_classes": 3})


def test_old_sweep_folder_still_gathers(tmp_path):
    """A sweep folder (config.json of kind, base and grid) made by the older field order is read back."""
    from ufm.engine import gather, plan

    base = SolveConfig.from_dict(OLD_SOLVE | {"counts": "6x2,2x2", "n_w": 10.0})
    grid = {"tau": (0.5, 1.0)}
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"kind": "solve", "base": {**OLD_SOLVE, "counts": "6x2,2x2",
                                                                              "n_w": 10.0},
                                                    "grid": {"tau": [0.5, 1.0]},
                                                    "points": [p.name for p in plan("solve", base, grid)]}))
    report = gather(folder)
    assert report["total"] == 2 and report["finished"] == 0


# --- sweeps: a grid field or typed option without effect at every point is refused -----------------------------------

def test_grid_over_a_field_without_effect_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"grid field batch_size has no effect with full batching .* 2 values would"):
        check_grid_effects("solve", SolveConfig(counts="6x2,2x2"), {"batch_size": (16, 32)})
    with pytest.raises(ValueError, match="grid field ratio has no effect with balanced counts"):
        check_grid_effects("simulate", SimConfig(profile="balanced", k=4, n_major=8, batch_size=8), {"ratio": (1.0, 2.0)})
    with pytest.raises(ValueError, match="grid field n_w has no effect with loss ce"):
        check_grid_effects("simulate", SimConfig(loss="ce", k=4, n_major=8, batch_size=8, ratio=4), {"n_w": ((0.0,), (10.0,))})
    with pytest.raises(ValueError, match="grid field gamma has no effect without the minority geometry"):
        run_sweep(tmp_path / "s", "solve", SolveConfig(counts="6x2,2x2", n_w=1.0), {"gamma": (0.5, 1.0)})
    assert not (tmp_path / "s").exists()  # refused before the sweep folder is made
    # a field with an effect at some points is fine: ratio matters at the step points
    points = check_grid_effects("simulate", SimConfig(k=4, n_major=8, batch_size=8, ratio=4),
                                {"profile": ("balanced", "step"), "ratio": (1.0, 2.0)})
    assert len(points) == 4
    # a set field is refused only when it has no effect at every point
    check_grid_effects("solve", SolveConfig(counts="6x2,2x2", batch_size=4), {"batching": ("full", "shuffle")},
                       given=["batch_size"])
    with pytest.raises(ValueError, match="^batch_size has no effect with full batching .* at any point of the grid"):
        check_grid_effects("solve", SolveConfig(counts="6x2,2x2", batch_size=4), {"tau": (0.5, 1.0)},
                           given=["batch_size"])


def test_prototype_anchors_have_no_effect_without_prototype_copies():
    from ufm.deep.config import TrainConfig

    assert "prototype_anchors" in SimConfig(n_w=(0.0,)).without_effect()
    assert "prototype_anchors" not in SimConfig(n_w=(0.0, 10.0)).without_effect()  # a stack with copies
    assert "prototype_anchors" in SolveConfig(n_w=0.0).without_effect()
    assert TrainConfig(n_w=0.0).without_effect()["prototype_anchors"] == "with {n_w} = 0 (no prototype copies)"
    assert "prototype_anchors" not in TrainConfig(n_w=10.0).without_effect()


def test_sweep_commands_refuse_identical_points(tmp_path):
    out = tmp_path / "s"
    refused(["sweep", "--profile", "balanced", "--ratio", "1", "--ratio", "2", "--out", out],
             "grid field ratio has no effect with balanced counts")
    refused(["sweep", "--profile", "balanced", "--out", out], "the default grid of ufm sweep is over the ratio")
    refused(["solve-sweep", "--batching", "full", "--grid", "batch_size=16,32", "--out", out],
             "grid field batch_size has no effect with full batching")
    refused(["solve-sweep", "--batch-size", "16", "--grid", "tau=0.1,1", "--out", out],
             "--batch-size has no effect with full batching (one batch of all samples) at any point of the grid")
    refused(["sweep", "--gamma", "2", "--grid", "geometry=etf,orthogonal", "--out", out],
             "--gamma has no effect without the minority geometry at any point")
    # an option typed at its default is still "both an option and a grid field"; n_w with loss ce was misread before
    refused(["sweep", "--k", "10", "--grid", "k=3,4", "--out", out], "k is both an option (--k) and a grid field")
    refused(["sweep", "--loss", "ce", "--grid", "n_w=0,10", "--out", out], "grid field n_w has no effect with --loss ce")
    assert not out.exists()


# --- ufm check: flags from CheckConfig, memory limit from --max-memory-gb ------------------------------------------------


# --- ufm verify-prop1 and ufm design-prototypes ----------------------------------------------------------------------


def test_fractional_copies_with_prototype_anchors_are_refused_by_every_config():
    from ufm.deep.config import TrainConfig
    from ufm.simulate import SimConfig
    from ufm.spec import SolveConfig

    for make in (lambda a: SimConfig(n_w=(0.5, 2.0), prototype_anchors=a), lambda a: TrainConfig(n_w=0.5,
                 prototype_anchors=a), lambda a: SolveConfig(n_w=0.5, prototype_anchors=a)):
        with pytest.raises(ValueError, match="with prototype anchors n_w must be 0 or >= 1"):
            make(True)
        make(False)  # a weight below one copy is fine without prototype anchors
