"""`ufm design-prototypes`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

import numpy as np
import pytest
import torch
from _cli import refused
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.geometry import make_gram
from ufm.spec import DesignConfig

runner = CliRunner()


def test_design_prototypes_command():
    result = runner.invoke(app, ["design-prototypes", "--counts", "20x2,2x2", "--tau", "0.5", "--n-w", "10",
                                 "--max-evals", "20", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["solves"] <= 21 and data["distance_best"] <= data["distance_g_star"] + 1e-6
    result = runner.invoke(app, ["design-prototypes", "--counts", "20x2,2x2", "--tau", "-1"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


def test_design_prototypes_says_when_the_design_does_not_beat_g_star(tmp_path):
    """A G_* outside the block family (random unit rows) is not reached by block Grams: the table's 'designed'
    row is then worse than G_w = G_*, and the command says so instead of presenting it as the design."""
    rows = np.random.default_rng(0).normal(size=(4, 4))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    np.save(tmp_path / "g.npy", rows @ rows.T)
    args = ["design-prototypes", "--counts", "4,4,2,2", "--gram-file", str(tmp_path / "g.npy"), "--max-evals", "3"]
    data = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert data["distance_best"] > data["distance_g_star"]  # the premise: this search does not beat G_*
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "does not beat G_w = G_*: keep G_w = G_*" in result.output, result.output


def test_design_prototypes_honours_the_target_geometry(tmp_path):
    result = runner.invoke(app, ["design-prototypes", "--help"])
    for flag in ("--counts", "--k", "--profile", "--n-major", "--ratio", "--minority-fraction", "--tau", "--n-w",
                 "--geometry", "--gamma", "--gram-file", "--anchors", "--max-evals", "--json"):
        assert flag in result.output, flag
    assert "--batching" not in result.output and "--batch-size" not in result.output
    counts = torch.tensor([20, 20, 4, 4])
    g = make_gram("minority", 4, counts, 0.5).numpy()
    result = runner.invoke(app, ["design-prototypes", "--counts", "20x2,4x2", "--tau", "0.5", "--n-w", "10",
                                 "--geometry", "minority", "--gamma", "0.5", "--max-evals", "2", "--json"])
    assert result.exit_code == 0, result.output
    a0, b0, c0 = json.loads(result.output)["g_star_cosines"]
    assert np.allclose([a0, b0, c0], [g[0, 1], g[2, 3], g[0, 2]], atol=1e-12)  # the minority G_*, not the ETF
    np.save(tmp_path / "g.npy", g)
    result = runner.invoke(app, ["design-prototypes", "--counts", "20x2,4x2", "--tau", "0.5", "--n-w", "10",
                                 "--gram-file", tmp_path / "g.npy", "--max-evals", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert np.allclose(json.loads(result.output)["g_star_cosines"], [a0, b0, c0], atol=1e-12)
    refused(["design-prototypes", "--gamma", "2"], "--gamma has no effect without the minority geometry")
    refused(["design-prototypes", "--counts", "5x4", "--k", "3"], "--k has no effect when --counts are given")
    refused(["design-prototypes", "--n-w", "0"], "--n-w must be >= 1")
    with pytest.raises(ValueError, match="leave batching full"):
        DesignConfig(batching="shuffle")
