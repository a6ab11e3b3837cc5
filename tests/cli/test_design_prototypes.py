"""`ufm design-prototypes`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

import numpy as np
from typer.testing import CliRunner

from ufm.cli.main import app

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
