"""`ufm figures`: the tests of the command itself (its flags, output, folder and refusals)."""

from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()


def test_figures_quick_and_list(tmp_path):
    result = runner.invoke(app, ["figures", "--list"])
    assert result.exit_code == 0 and "ufm-fig1-heatmaps" in result.output
    result = runner.invoke(app, ["figures", "--quick", "--name", "ufm-fig1-heatmaps", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ufm_fig1_heatmaps.png").stat().st_size > 1000
    result = runner.invoke(app, ["figures", "--name", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown figures" in result.output
