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


def test_a_point_without_an_entry_bound_fails_the_sweep_with_exit_1_and_its_options(tmp_path):
    # SCS at n_w = 1e9 has no entry bound: that point is a failure (exit 1, as `ufm solve`), named in one line with the
    # command's own option names; the certified point is kept
    out = tmp_path / "s"
    result = CliRunner().invoke(app, ["solve-sweep", "--counts", "2,2,1", "--tau", "0.5", "--solver", "SCS", "--grid",
                                      "n_w=1e9,10", "--out", str(out)])
    assert result.exit_code == 1, result.output
    line = " ".join(result.output.split())
    assert line.startswith("error: 1 of 2 tasks failed; first, n_w=1e+09") and "cannot vouch" in line
    assert "--solver auto" in line and "solver='auto'" not in line and "UncertifiedError" not in line
    assert len(list((out / "points").glob("n_w=10-*/solution.json"))) == 1
