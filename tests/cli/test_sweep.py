"""`ufm sweep`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

import pytest
from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()


def test_sweep_writes_table_and_plot(tmp_path):
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "--k", "4", "--n-major", "8", "--d", "6", "--batch-size", "8", "--epochs", "10",
                                 "--ratio", "1", "--ratio", "4", "--n-w", "0", "--n-w", "10", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["ratio"], r["n_w"]) for r in rows] == [(1.0, 0.0), (1.0, 10.0), (4.0, 0.0), (4.0, 10.0)]
    for name in ("table.csv", "table.json", "config.json", "distance_vs_nw.png"):
        assert (out / name).is_file()


def test_sweep_command_grid_resume_and_gather(tmp_path):
    out = tmp_path / "s"
    args = ["sweep", "--k", "3", "--n-major", "6", "--d", "4", "--batch-size", "6", "--epochs", "8",
            "--ratio", "1", "--grid", "loss=scl,class-averaging", "--n-w", "0", "--n-w", "10", "--out", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["finished"], data["skipped"]) == (2, 0)
    assert [(r["ratio"], r["loss"], r["n_w"]) for r in data["rows"]] == [
        (1.0, "scl", 0.0), (1.0, "scl", 10.0), (1.0, "class-averaging", 0.0), (1.0, "class-averaging", 10.0)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and json.loads(result.stdout)["skipped"] == 2
    result = runner.invoke(app, ["gather", str(out), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["rows"] == data["rows"]
    result = runner.invoke(app, ["gather", str(out)])
    assert result.exit_code == 0 and "2 of 2 points finished" in result.output


def test_a_bare_sweep_runs_the_ratios_its_counts_allow(tmp_path):
    """`ufm sweep` with its default grid (R = 1, 10, 100) never fails on its own defaults: at --n-major 50, R = 100
    would leave minority classes no positive pair, so the default grid keeps R = 1 and 10; at --n-major 200 all three."""
    for n_major, ratios in ((50, [1.0, 10.0]), (200, [1.0, 10.0, 100.0])):
        result = runner.invoke(app, ["sweep", "--k", "3", "--d", "4", "--epochs", "1", "--n-major", str(n_major),
                                     "--n-w", "0", "--out", str(tmp_path / str(n_major)), "--json"])
        assert result.exit_code == 0, result.output
        assert sorted({r["ratio"] for r in json.loads(result.stdout)["rows"]}) == ratios


@pytest.mark.parametrize("args, message", [
    (["--grid", "foo=1"], "unknown grid field 'foo'"),
    (["--grid", "k=3,x"], "grid value 'x' for k is not an integer"),
    (["--grid", "k=3,4", "--k", "5"], "k is both an option (--k) and a grid field"),
    (["--ratio", "1", "--grid", "ratio=2"], "--ratio and --grid ratio=... both set the ratios"),
    (["--partition", "gpu"], "--partition applies to --executor slurm only"),
    (["--executor", "slurm", "--slurm-extra", "qos"], "--slurm-extra items are KEY=VALUE"),
])
def test_sweep_command_refuses_bad_input(tmp_path, args, message):
    result = runner.invoke(app, ["sweep", "--epochs", "2", *args, "--out", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 or message in result.output.splitlines()[0]
