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
    # a verdict with the tolerance it used, from the simulator's own convergence
    assert row["verdict"] == "agree" and row["gram_max_difference"] <= row["tolerance"] <= 1e-6
    assert row["simulator_tolerance"] > 0 and row["reason"]


def _rows():
    row = {"n_w": 1e6, "tau": 0.05, "seed": 12, "simulator_loss": 2.0, "solver_objective": 1.9,
           "relative_gap": -2.3456e-10, "gram_max_difference": 0.123456, "distance_simulator": 0.2,
           "distance_solver": 0.1, "solver_status": "optimal", "verdict": "agree", "tolerance": 1.234e-7,
           "reason": "entries within 1.2e-07 (converging)"}
    return [row,
            {**row, "n_w": 1.5e8, "solver_status": "optimal_inaccurate", "verdict": "cannot judge", "tolerance": None,
             "reason": "simulator still moving (its G_M moved 2.5e-03 over its last quarter, slowly): raise --epochs"},
            {**row, "n_w": 0.0, "verdict": "disagree", "tolerance": 3e-9,
             "reason": "G_M entries differ by 1.2e-01 > tolerance 3.0e-09"}]


def test_agree_prints_each_verdict_and_its_tolerance_within_80_columns(monkeypatch):
    import ufm.agreement  # the command imports solver_vs_simulator from it when it computes

    monkeypatch.setattr(ufm.agreement, "solver_vs_simulator", lambda cfg: _rows())
    result = CliRunner().invoke(app, ["agree", "--k", "3"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "…" not in result.output  # no cell cut
    lines = result.output.splitlines()
    for n_w, verdict, tol in (("1e+06", "agree", "1.2e-07"), ("1.5e+08", "cannot judge", "-"),
                              ("0", "disagree", "3.0e-09")):
        (line,) = [ln for ln in lines if ln.split() and ln.split()[0] == n_w]
        assert line.rstrip().endswith(verdict) and f" {tol} " in line and "-2.3e-10" in line and "1.2e-01" in line
    text = " ".join(result.output.split())
    assert "tolerance = simulator: 10 x its distance from its limit" in text and "the solver's entry bound" in text
    assert "n_w 1.5e+08, tau 0.05, seed 12: cannot judge: simulator still moving" in text
    assert "n_w 0, tau 0.05, seed 12: disagree: G_M entries differ by 1.2e-01 > tolerance 3.0e-09" in text


def test_agree_says_which_solver_optima_are_not_certified(monkeypatch):
    import ufm.agreement  # the command imports solver_vs_simulator from it when it computes

    monkeypatch.setattr(ufm.agreement, "solver_vs_simulator", lambda cfg: _rows())
    result = CliRunner().invoke(app, ["agree", "--k", "3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 of 3 solver optima are not certified (status optimal_inaccurate)" in text
    assert "their gap may be off (marked ?)" in text and "-2.3e-10?" in text
