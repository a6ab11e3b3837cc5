"""`ufm agree`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()


def test_agree_command(tmp_path):
    result = runner.invoke(app, ["agree", "--k", "3", "--n-major", "6", "--ratio", "2", "--d", "4", "--n-w", "5",
                                 "--tau", "0.5", "--epochs", "800", "--lr", "0.05", "--dtype", "float64", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert abs(row["relative_gap"]) < 1e-3


def test_agree_says_which_solver_optima_are_not_certified(monkeypatch):
    import ufm.cli.solve as solve_cli

    row = {"n_w": 1.0, "tau": 0.1, "seed": 0, "simulator_loss": 2.0, "solver_objective": 1.9, "relative_gap": 0.05,
           "gram_max_difference": 0.1, "distance_simulator": 0.2, "distance_solver": 0.1, "solver_status": "optimal"}
    rows = [row, {**row, "n_w": 1e6, "solver_status": "optimal_inaccurate"}]
    monkeypatch.setattr(solve_cli, "solver_vs_simulator", lambda cfg: rows)
    result = CliRunner().invoke(app, ["agree", "--k", "3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 of 2 solver optima are not certified (status optimal_inaccurate)" in text
    assert "their gap and distance may be off (marked ?)" in text and "0.1000?" in text
