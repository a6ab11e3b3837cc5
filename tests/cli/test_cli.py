import re
import json

from typer.testing import CliRunner

import ufm
from ufm.cli.main import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ufm {ufm.__version__}"


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


def test_simulate_writes_a_run_folder_and_json(tmp_path):
    out = tmp_path / "run"
    args = ["simulate", "--k", "4", "--n-major", "8", "--ratio", "4", "--d", "6", "--batch-size", "8", "--epochs", "30",
            "--n-w", "0", "--n-w", "20", "--tau", "0.5", "--dtype", "float64", "--anchors", "batch", "--out", str(out),
            "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [r["n_w"] for r in summary["runs"]] == [0.0, 20.0]
    assert summary["epochs_run"] == 30 and summary["run_folder"] == str(out)
    for name in ("config.json", "summary.json", "arrays.npz", "metrics.jsonl", "gram_heatmaps.png"):
        assert (out / name).is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["prototype_anchors"] is False and config["tau"] == [0.5]


def test_simulate_table_and_bad_options(tmp_path):
    result = runner.invoke(app, ["simulate", "--k", "4", "--n-major", "8", "--ratio", "4", "--d", "6", "--batch-size", "8",
                                 "--epochs", "10", "--relu", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "distance" in result.stdout and "negative cosines" in result.output
    for bad, message in ((["--loss", "mse"], "--loss 'mse' is not one of"), (["--batch-size", "3"], "smaller than the number of classes"),
                         (["--tau", "-1"], "--tau must be > 0"), (["--gram-file", "/no/such.npy"], "does not exist")):
        result = runner.invoke(app, ["simulate", "--epochs", "2", *bad, "--out", str(tmp_path / "bad")])
        assert result.exit_code == 2, (bad, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_sweep_writes_table_and_plot(tmp_path):
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "--k", "4", "--n-major", "8", "--d", "6", "--batch-size", "8", "--epochs", "10",
                                 "--ratio", "1", "--ratio", "4", "--n-w", "0", "--n-w", "10", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["ratio"], r["n_w"]) for r in rows] == [(1.0, 0.0), (1.0, 10.0), (4.0, 0.0), (4.0, 10.0)]
    for name in ("table.csv", "table.json", "config.json", "distance_vs_nw.png"):
        assert (out / name).is_file()


def test_figures_quick_and_list(tmp_path):
    result = runner.invoke(app, ["figures", "--list"])
    assert result.exit_code == 0 and "ufm-fig1-heatmaps" in result.output
    result = runner.invoke(app, ["figures", "--quick", "--name", "ufm-fig1-heatmaps", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ufm_fig1_heatmaps.png").stat().st_size > 1000
    result = runner.invoke(app, ["figures", "--name", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown figures" in result.output


def test_figure_commands_write_into_a_folder_of_their_own(tmp_path):
    """A figure never lands in another command's run folder, and nothing is drawn twice."""
    from ufm.folders import mark

    run = tmp_path / "sim"
    run.mkdir()
    mark(run, "simulate")
    before = sorted(p.name for p in run.iterdir())
    for argv in (["figures", "--quick", "--name", "ufm-fig1-heatmaps"], ["figures", "--runs", str(run)],
                 ["deep-figures", str(run)], ["verify-prop1", "--epochs", "1"]):
        result = runner.invoke(app, [*argv, "--out", str(run)])
        assert result.exit_code == 2, (argv, result.output)
        assert "is a simulation run folder" in result.output and "figures go into a folder of their own" in result.output
    assert sorted(p.name for p in run.iterdir()) == before
    for argv, needle in ((["figures", "--quick", "--name", "ufm-fig1-heatmaps", "--name", "ufm-fig1-heatmaps"],
                          "--name ufm-fig1-heatmaps is given twice"),
                         (["deep-figures", str(run), str(tmp_path / "x" / ".." / "sim")], "is given twice"),
                         (["figures", "--runs", str(run), "--runs", str(run)], "--runs"),):
        result = runner.invoke(app, [*argv, "--out", str(tmp_path / "figs")])
        assert result.exit_code == 2 and needle in result.output, (argv, result.output)
    assert not (tmp_path / "figs").exists()


def test_solve_prints_json_and_writes_folder(tmp_path):
    out = tmp_path / "solve"
    result = runner.invoke(app, ["solve", "--counts", "6x2,2x2", "--tau", "0.5", "--n-w", "5", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "optimal" and data["counts"] == [6, 6, 2, 2]
    assert len(data["gram"]) == 4 and (out / "gram.png").is_file() and (out / "solution.json").is_file()
    result = runner.invoke(app, ["solve", "--k", "4", "--n-major", "6", "--ratio", "3", "--tau", "0.5", "--out", str(out), "--overwrite"])
    assert result.exit_code == 0 and "optimal class-mean Gram" in result.stdout
    result = runner.invoke(app, ["solve", "--counts", "5x3,1x2", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "never have two samples" in result.output
    result = runner.invoke(app, ["solve", "--counts", "5y3", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "cannot read --counts" in result.output


def test_agree_command(tmp_path):
    result = runner.invoke(app, ["agree", "--k", "3", "--n-major", "6", "--ratio", "2", "--d", "4", "--n-w", "5",
                                 "--tau", "0.5", "--epochs", "800", "--lr", "0.05", "--dtype", "float64", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert abs(row["relative_gap"]) < 1e-3


def test_solve_full_and_relu(tmp_path):
    result = runner.invoke(app, ["solve", "--counts", "4x2,2x2", "--tau", "0.5", "--full", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["min_within_class_cosine"] > 0.9999 and len(data["gram"]) == 4
    result = runner.invoke(app, ["solve", "--counts", "20x3,2x2", "--tau", "0.5", "--relu", "--out", str(tmp_path / "relu"), "--json"])
    assert result.exit_code == 0, result.output
    gram = json.loads(result.stdout)["gram"]
    assert max(abs(gram[a][b] - (a == b)) for a in range(5) for b in range(5)) < 1e-4
    # the symmetry reduction, either way, does nothing to the N x N problem: typed, it is refused
    for flag in ("--reduce", "--no-reduce"):
        result = runner.invoke(app, ["solve", "--counts", "4x2,2x2", "--full", flag, "--out", str(tmp_path / "r")])
        assert result.exit_code == 2 and f"{flag} has no effect with --full" in result.output, result.output
        assert not (tmp_path / "r").exists()


def test_verify_prop1_states_one_line_per_convention(tmp_path):
    result = runner.invoke(app, ["verify-prop1", "--out", str(tmp_path), "--epochs", "100"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    # the finding (docs/prop1.md): the published limit fails in both conventions, the derived one decays as 1/n_w
    assert "prototypes as anchors: the published limit does NOT hold" in text
    assert "batch samples as the only anchors: the published limit does NOT hold" in text
    slopes = [float(x) for x in re.findall(r"the derived limit's largest gap is \S+ \(exponent ([-+.\d]+)\)", text)]
    assert len(slopes) == 2 and all(-1.2 < s < -0.8 for s in slopes), text
    assert (tmp_path / "prop1_gaps.png").is_file()


def test_the_cli_installs_as_ufm_cli_and_not_as_a_top_level_cli(tmp_path):
    import subprocess
    import sys

    code = "import importlib.util as u; print(u.find_spec('ufm.cli.main') is not None, u.find_spec('cli') is None)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
