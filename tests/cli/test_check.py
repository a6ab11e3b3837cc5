"""`ufm check`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()


def test_check_agrees_and_prints_json():
    result = runner.invoke(app, ["check", "--k", "4", "--n", "10", "--d", "6", "--n-w", "20", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"] is True
    assert data["rows_naive"] == 10 + 4 * 20 and data["rows_ufm"] == 14
    assert data["loss_abs_diff"] <= 1e-9 * abs(data["loss_naive"])


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path):
    result = runner.invoke(app, ["check", "--k", "6", "--d", "3"])
    assert result.exit_code == 2
    assert "rank 5 > embedding dimension d=3" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["check", "--gram-file", str(tmp_path / "none.npy")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["check", "--tau", "0"])
    assert result.exit_code == 2 and "tau" in result.output
