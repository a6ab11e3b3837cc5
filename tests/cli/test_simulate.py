"""`ufm simulate`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()


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


def test_simulate_table_title_states_what_ran(tmp_path):
    """The title names only what was used: explicit counts (no profile) and one full batch (no batch size)."""
    from typer.testing import CliRunner

    from ufm.cli.main import app

    result = CliRunner().invoke(app, ["simulate", "--counts", "4,4,2", "--batching", "full", "--epochs", "2", "--n-w",
                                      "1", "--seeds", "0", "--d", "4", "--out", str(tmp_path / "run")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    title = next(line for line in result.output.splitlines() if "epochs in" in line)
    assert "counts [4, 4, 2], full batch," in title and "step" not in title and "of 32" not in title, title


def test_the_default_command_runs_the_library_default_config(tmp_path):
    """Options left out give the config's own defaults (the anchor convention included: SimConfig's None means
    prototype anchors where the loss has them; an --anchors default of 'batch' silently flipped it)."""
    import json

    from typer.testing import CliRunner

    from ufm.cli.main import app
    from ufm.simulate import SimConfig

    result = CliRunner().invoke(app, ["simulate", "--epochs", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved == json.loads(json.dumps(SimConfig(epochs=2).to_dict()))
    assert saved["prototype_anchors"] is True
