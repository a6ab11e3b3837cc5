"""`ufm solve-sweep`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()


def test_solve_sweep_command(tmp_path):
    result = runner.invoke(app, ["solve-sweep", "--k", "3", "--n-major", "6", "--ratio", "2", "--grid", "n_w=0,10", "--grid",
                                 "tau=0.1,1", "--out", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["ratio"], r["n_w"], r["tau"]) for r in rows] == [(2.0, 0.0, 0.1), (2.0, 0.0, 1.0), (2.0, 10.0, 0.1), (2.0, 10.0, 1.0)]
    assert all(r["status"].startswith("optimal") and r["objective"] > 0 for r in rows)
    result = runner.invoke(app, ["solve-sweep", "--k", "3"])
    assert result.exit_code == 2 and "give the grid" in result.output
