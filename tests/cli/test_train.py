"""`ufm train`: the tests of the command itself (its flags, output, folder and refusals)."""

import csv
import json

import pytest
import torch
from _cli import refused
from _images import tiny, write_cifar10, write_image_folder
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.deep.synthetic import write_synthetic_cifar10
from ufm.deep.train import TrainConfig, load_checkpoint, preset, train
from ufm.executors import task_threads
from ufm.imbalance import shot_groups


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory):
    return write_synthetic_cifar10(tmp_path_factory.mktemp("cifar"), 12, 3)


def test_train_command_with_local_processes(tmp_path):
    """`ufm train --executor local`: the run trains in a worker process, logs to its folder, and ends with the
    same weights as the same run inline."""
    from _idx import tiny_idx
    from typer.testing import CliRunner

    from ufm.cli.main import app
    from ufm.deep.train import TrainConfig, train

    tiny_idx(tmp_path / "data")
    options = dict(dataset="idx", data_root=str(tmp_path / "data"), n_major=6, ratio=2.0, width=4, embed_dim=8,
                   epochs=3, batch_size=8, eval_every=3, checkpoint_every=3, lr=0.05, device="cpu")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    result = CliRunner().invoke(app, ["train", *flags, "--executor", "local", "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["epochs"] == 3
    assert (tmp_path / "run" / "job.log").is_file()
    threads = torch.get_num_threads()
    torch.set_num_threads(task_threads(parallel=1))  # what the single worker process used
    try:
        train(TrainConfig(**options), tmp_path / "inline")
    finally:
        torch.set_num_threads(threads)
    local = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    inline = torch.load(tmp_path / "inline" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(local[name], tensor) for name, tensor in inline.items())


def test_train_grid_over_a_field_without_effect_is_refused():
    from ufm.deep.config import grid_runs

    with pytest.raises(ValueError, match="grid field gamma has no effect without the minority geometry"):
        grid_runs({"": TrainConfig()}, {"gamma": (0.5, 2.0)})
    with pytest.raises(ValueError, match="grid field binding_examples has no effect with batching shuffle"):
        grid_runs({"": TrainConfig()}, {"binding_examples": ("random", "first")})
    runs = grid_runs({"": TrainConfig()}, {"geometry": ("etf", "minority"), "gamma": (0.5, 2.0)})  # minority points
    assert len(runs) == 4
    refused(["train", "--grid", "ratio=2,4", "--profile", "balanced", "--out", "/nonexistent-ufm-x"],
             "grid field ratio has no effect with balanced counts")


def test_train_cli_preset_and_figures(image_folder, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--preset", "cpu-small", "--data-root", str(image_folder), "--epochs", "1",
                                 "--n-major", "10", "--test-per-class", "4", "--batch-size", "8", "--device", "cpu",
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    assert set(summaries) == {"scl-nw0", "scl-nw100"}
    assert (tmp_path / "deep_fig1_heatmaps.png").is_file()
    result = runner.invoke(app, ["deep-figures", str(tmp_path / "scl-nw0"), str(tmp_path / "scl-nw100"),
                                 "--out", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figs" / "deep_fig1_distance.png").is_file()
    result = runner.invoke(app, ["train", "--data-root", str(tmp_path / "none"), "--dataset", "folder",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not found" in result.output


def test_cli_preset_flags_override_even_at_the_global_default_and_resume_flags(image_folder, tmp_path):
    runner = CliRunner()
    common = ["--data-root", str(image_folder), "--dataset", "folder", "--n-major", "10", "--test-per-class", "4",
              "--batch-size", "8", "--device", "cpu", "--width", "4", "--embed-dim", "8"]
    # cpu-small sets eval_every 5; 10 is the global default and must still win when given
    result = runner.invoke(app, ["train", "--preset", "cpu-small", "--epochs", "1", "--eval-every", "10", *common,
                                 "--out", str(tmp_path / "p"), "--json"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "p" / "scl-nw0" / "config.json").read_text())
    assert saved["eval_every"] == 10 and saved["epochs"] == 1 and saved["width"] == 4
    run = str(tmp_path / "p" / "scl-nw0")
    result = runner.invoke(app, ["train", "--resume", run, "--epochs", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scl-nw0"]["epochs"] == 2
    for bad, needle in ((["--width", "8"], "cannot change --width (run has 4, asked 8)"), (["--out", str(tmp_path / "o")], "drop --out"),
                        (["--preset", "cpu-small"], "drop --preset and --grid")):
        result = runner.invoke(app, ["train", "--resume", run, *bad])
        assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", "--preset", "cpu-small", "--epochs", "1", *common, "--out", str(tmp_path / "p")])
    assert result.exit_code == 2 and "holds a training run of another configuration (eval_every (saved " in result.output


@pytest.mark.parametrize("args, needle", [
    (["--width", "100000"], "use a --width <= 1024"),
    (["--nproc", "0"], "--nproc must be >= 1"),
    (["--nproc", "1000"], "--batch-size = 128 is smaller than --nproc = 1000"),
    (["--nproc", "100", "--batch-size", "1000", "--device", "cpu"], "is more than the"),  # CPU cores this test has
    (["--resume", "/nonexistent/run"], "--resume /nonexistent/run does not exist"),
    (["--reduction", "median"], "--reduction 'median' is not one of"),
    (["--lr-schedule", "linear"], "--lr-schedule 'linear' is not one of"),
    (["--preset", "cpu-fig9"], "unknown --preset 'cpu-fig9'"),
    (["--loss", "ce", "--n-w", "5"], "--n-w has no effect with --loss ce"),
    (["--loss", "class-averaging", "--anchors", "batch"], "--anchors has no effect"),
    (["--preset", "cpu-fig1", "--gamma", "2"], "--gamma has no effect without the minority geometry"),
    (["--momentum", "nan"], "momentum"),
    (["--tau", "inf"], "tau"),
    (["--test-per-class", "-1"], "test-per-class"),
])
def test_train_refuses_bad_options_with_one_line(args, needle, tmp_path):
    result = CliRunner().invoke(app, ["train", *args, "--out", str(tmp_path / "run")] if "--resume" not in args
                                else ["train", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, needle", [
    (["--batch-size", "2"], "--batch-size = 2 is smaller than the number of classes k = 3 of the data"),
    (["--batch-size", "40"], "exceeds the number of samples"),
    (["--embed-dim", "1"], "embed-dim"),
])
def test_a_run_its_data_cannot_give_is_refused_before_its_folder_is_written(image_folder, tmp_path, args, needle):
    common = {"--dataset": "folder", "--data-root": str(image_folder), "--n-major": "10", "--ratio": "5",
              "--width": "4", "--embed-dim": "8", "--batch-size": "8", "--epochs": "1", "--device": "cpu",
              **dict(zip(args[::2], args[1::2]))}
    argv = [a for option, value in common.items() for a in (option, value)]
    result = CliRunner().invoke(app, ["train", *argv, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and needle in result.output, result.output
    assert "Traceback" not in result.output and "--batching full" not in result.output
    assert not (tmp_path / "run").exists()  # so the corrected command starts afresh


def test_a_run_too_large_for_the_memory_limit_is_refused_before_allocating(image_folder, tmp_path):
    result = CliRunner().invoke(app, ["train", "--dataset", "folder", "--data-root", str(image_folder), "--n-major", "10",
                                      "--ratio", "5", "--width", "512", "--batch-size", "20", "--device", "cpu",
                                      "--max-memory-gb", "0.5", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "GiB" in result.output and "--width" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
    from ufm.deep.train import load_data, memory_estimate

    cfg = tiny(image_folder, width=512)
    train_set, test_set = load_data(cfg)
    params = 11.2e6 * 8**2 * 4 * 3  # width 512 = 8 x 64: 717 M parameters, with gradient and momentum
    assert memory_estimate(cfg, train_set, test_set) > params


def test_a_grid_of_training_configs_runs_one_folder_per_point(image_folder, tmp_path):
    runner = CliRunner()
    common = ["--dataset", "folder", "--data-root", str(image_folder), "--n-major", "10", "--ratio", "5", "--width", "4",
              "--embed-dim", "8", "--batch-size", "8", "--epochs", "1", "--device", "cpu"]
    result = runner.invoke(app, ["train", *common, "--grid", "n_w=0,5", "--grid", "tau=0.1,0.5",
                                 "--out", str(tmp_path / "g"), "--json"])
    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    assert sorted(summaries) == ["n_w=0,tau=0.1", "n_w=0,tau=0.5", "n_w=5,tau=0.1", "n_w=5,tau=0.5"]
    saved = json.loads((tmp_path / "g" / "n_w=5,tau=0.5" / "config.json").read_text())
    assert (saved["n_w"], saved["tau"], saved["width"]) == (5.0, 0.5, 4)
    for bad, needle in ((["--grid", "width=4,8"], "both as an option and in --grid"),
                        (["--grid", "colour=red"], "unknown grid field"), (["--grid", "tau=0.1,x"], "tau")):
        result = runner.invoke(app, ["train", *common, *bad, "--out", str(tmp_path / "bad")])
        assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output, result.output


def test_a_killed_grid_continues_by_rerunning_the_same_command(image_folder, tmp_path):
    """Finished runs are kept, a checkpointed one resumes, one killed before its first checkpoint starts over; the
    continued grid ends with the weights of an uninterrupted one."""
    runner = CliRunner()
    common = ["--dataset", "folder", "--data-root", str(image_folder), "--n-major", "10", "--ratio", "5", "--width", "4",
              "--embed-dim", "8", "--batch-size", "8", "--epochs", "2", "--checkpoint-every", "1", "--device", "cpu",
              "--grid", "n_w=0,5,10", "--out"]
    result = runner.invoke(app, ["train", *common, str(tmp_path / "whole"), "--json"])
    assert result.exit_code == 0, result.output
    # the grid as a kill would leave it: n_w=0 finished, n_w=5 stopped after epoch 1, n_w=10 never checkpointed
    grid = tmp_path / "cut"
    base = dict(dataset="folder", data_root=str(image_folder), n_major=10, ratio=5.0, width=4, embed_dim=8,
                batch_size=8, epochs=2, checkpoint_every=1, device="cpu")
    train(TrainConfig(**base, n_w=0.0), grid / "n_w=0")
    train(TrainConfig(**base, n_w=5.0), grid / "n_w=5", stop_after=1)
    (grid / "n_w=10").mkdir()
    (grid / "n_w=10" / "config.json").write_text(json.dumps(TrainConfig(**base, n_w=10.0).to_dict()))
    finished = (grid / "n_w=0" / "checkpoint.pt").read_bytes()
    result = runner.invoke(app, ["train", *common, str(grid)])
    assert result.exit_code == 0, result.output
    assert "1 of 3 runs already finished; 1 continued from their checkpoints" in result.output
    assert (grid / "n_w=0" / "checkpoint.pt").read_bytes() == finished  # not trained again
    for name in ("n_w=0", "n_w=5", "n_w=10"):
        a = load_checkpoint(tmp_path / "whole" / name / "checkpoint.pt")
        b = load_checkpoint(grid / name / "checkpoint.pt")
        assert a["epoch"] == b["epoch"] == 2
        for key, value in a["model"].items():
            assert torch.equal(b["model"][key], value), (name, key)
    # a third time: everything finished, nothing trains
    result = runner.invoke(app, ["train", *common, str(grid), "--json"])
    assert result.exit_code == 0 and sorted(json.loads(result.stdout)) == ["n_w=0", "n_w=10", "n_w=5"]
    summaries = json.loads(result.stdout)
    # ufm gather tabulates a training grid like a sweep: one row per run, from its summary
    gathered = runner.invoke(app, ["gather", str(grid), "--json"])
    assert gathered.exit_code == 0, gathered.output
    report = json.loads(gathered.stdout)
    assert (report["finished"], report["total"]) == (3, 3)
    assert [r["run"] for r in report["rows"]] == ["n_w=0", "n_w=5", "n_w=10"]
    for row in report["rows"]:
        final = summaries[row["run"]]["final"]
        assert row["n_w"] == float(row["run"].split("=")[1]) and row["distance"] == final["distance"]
        assert all(row[key] == final[key] for key in ("nc1_ref", "cdnv", "nc2", "nc3", "nc4"))
        assert row["linear_probe_accuracy"] == summaries[row["run"]]["linear_probe_accuracy"]
    with open(grid / "table.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 3
    printed = runner.invoke(app, ["gather", str(grid)])
    assert printed.exit_code == 0 and "train sweep: 3 of 3 points finished" in printed.output, printed.output
    # the same folder with another configuration is refused, naming what differs
    result = runner.invoke(app, ["train", *[c if c != "2" else "3" for c in common], str(grid)])
    assert result.exit_code == 2 and "another configuration (epochs (saved 2, asked 3))" in result.output, result.output


def test_every_grid_point_is_checked_against_the_data_before_any_trains(image_folder, tmp_path):
    runner = CliRunner()
    common = ["--dataset", "folder", "--data-root", str(image_folder), "--ratio", "5", "--width", "4", "--embed-dim",
              "8", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "g")]
    for grid, needle in ((["--n-major", "10", "--grid", "batch_size=8,64"], "run batch_size=64: batch size n=64 exceeds"),
                         (["--batch-size", "8", "--grid", "n_major=10,40"], "run n_major=40: classes [0, 1] have "
                                                                             "fewer samples")):
        result = runner.invoke(app, ["train", *common, *grid])
        assert result.exit_code == 2 and needle in result.output, result.output
        assert not (tmp_path / "g").exists()  # the first point did not train


def test_a_resume_cannot_undo_epochs(image_folder, tmp_path):
    train(tiny(image_folder, epochs=2), tmp_path / "run")
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run"), "--epochs", "1"])
    assert result.exit_code == 2, result.output
    assert "has already trained 2 epochs" in result.output and "give --epochs >= 2 to continue it" in result.output
    # folders of another kind say what they are and what reads them
    sim = tmp_path / "sim"
    assert CliRunner().invoke(app, ["simulate", "--k", "3", "--n-major", "4", "--ratio", "2", "--d", "4", "--batch-size", "4",
                                    "--epochs", "2", "--out", str(sim)]).exit_code == 0
    result = CliRunner().invoke(app, ["train", "--resume", str(sim), "--epochs", "1"])
    assert result.exit_code == 2, result.output
    assert "is a simulation run folder (written by `ufm simulate`" in result.output
    assert "ufm train --resume reads a training run folder" in result.output


def test_size_refusals_name_the_dimension_that_matters(image_folder, tmp_path):
    common = ["train", "--dataset", "folder", "--data-root", str(image_folder), "--n-major", "10", "--ratio", "5",
              "--width", "4", "--batch-size", "8", "--epochs", "1", "--device", "cpu"]
    # a target of rank 2 (ETF of 3 classes) in 1 dimension: refused before training, naming --embed-dim
    result = CliRunner().invoke(app, [*common, "--embed-dim", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "use --embed-dim >= 2" in result.output, result.output
    result = CliRunner().invoke(app, [*common, "--embed-dim", "1", "--grid", "n_w=0,5", "--out", str(tmp_path / "g")])
    assert result.exit_code == 2 and "use --embed-dim >= 2" in result.output and not (tmp_path / "g").exists()
    # a huge embedding dimension dominates the memory estimate: the message names it
    result = CliRunner().invoke(app, [*common, "--embed-dim", "20000000", "--max-memory-gb", "1",
                                      "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "GiB" in result.output and "--embed-dim" in result.output, result.output


def _folder(root, classes, n=12):
    """An image-folder data set with ``classes`` classes of ``n`` training and 4 test images (random pixels)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(classes)
    for split, count in (("train", n), ("test", 4)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def test_runs_that_would_be_identical_are_refused_before_any_trains(tmp_path):
    """A preset, grid or list whose runs agree in every field with an effect (an option erased what told them apart,
    or it only differed in a field without effect) trains nothing: one line naming the two runs, exit 2."""
    from typer.testing import CliRunner

    from ufm.cli.main import app

    root = _folder(tmp_path / "data", 3)
    base = ["train", "--dataset", "folder", "--data-root", str(root), "--width", "4", "--batch-size", "8",
            "--n-major", "10", "--ratio", "5", "--embed-dim", "8", "--epochs", "1", "--device", "cpu"]
    for extra in (["--preset", "cpu-small", "--n-w", "5"], ["--preset", "cpu-small", "--loss", "ce"],
                  ["--grid", "n_w=0,100", "--loss", "ce"]):
        out = tmp_path / "_".join(extra).replace("-", "")
        result = CliRunner().invoke(app, [*base, *extra, "--out", str(out)])
        assert result.exit_code == 2, (extra, result.output)
        text = result.output.strip()
        assert len(text.splitlines()) == 1, text
        assert "would run the same configuration under two names" in text or "would run identical runs" in text, text
        assert not out.exists() or not any(out.rglob("checkpoint.pt"))


def test_a_set_that_cannot_share_its_figure_is_refused_before_any_trains(tmp_path):
    """Runs on data sets of different numbers of classes cannot share the set's Figure 1: refused up front (was:
    both trained, then exit 2 at the figure, and again on every re-run)."""
    from typer.testing import CliRunner

    from ufm.cli.main import app

    four, three = _folder(tmp_path / "four", 4), _folder(tmp_path / "three", 3)
    out = tmp_path / "set"
    result = CliRunner().invoke(app, ["train", "--dataset", "folder", "--width", "4", "--batch-size", "8",
                                      "--n-major", "10", "--ratio", "2", "--embed-dim", "8", "--epochs", "1",
                                      "--device", "cpu", "--grid", f"data_root={four},{three}", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "cannot share the set's Figure 1" in result.output and "4 classes" in result.output
    assert not any(out.rglob("checkpoint.pt")) and not any(out.rglob("summary.json"))


def test_train_download_checks_the_runs_first_and_fetches_their_own_data(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ufm.cli.main import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    # a preset on IDX data: --download has nothing to fetch (it fetched CIFAR into ./data before)
    result = runner.invoke(app, ["train", "--preset", "cpu-fig1", "--download", "--out", "p"])
    assert result.exit_code == 2 and "these runs train on --dataset idx: drop --download" in result.output
    # every other check comes first: the real mistake is named, not a failed download
    result = runner.invoke(app, ["train", "--download", "--nproc", "0"])
    assert result.exit_code == 2 and "--nproc must be >= 1" in result.output, result.output
    assert list(tmp_path.iterdir()) == []
    # the run's own data root, already extracted: trains without fetching anything
    write_cifar10(tmp_path / "cifar", per_batch=20)
    monkeypatch.setattr("urllib.request.urlretrieve", lambda *a: pytest.fail("downloaded data it already had"))
    result = runner.invoke(app, ["train", "--download", "--dataset", "cifar10", "--data-root", "cifar", "--profile",
                                 "balanced", "--n-major", "2", "--test-per-class", "0", "--epochs", "1", "--width", "2",
                                 "--embed-dim", "10", "--batch-size", "10", "--out", "r",
                                 "--json"])
    assert result.exit_code == 0, result.output


def test_torchrun_runs_the_cli_with_rank_0_reporting(cifar_folder, tmp_path):
    """The README's torchrun command (one node here): two workers, one run folder, one report."""
    import json
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "ufm.cli.main",
           "train", "--dataset", "cifar10", "--data-root", str(cifar_folder), "--n-major", "12", "--ratio", "4",
           "--width", "4", "--embed-dim", "16", "--epochs", "1", "--batch-size", "16", "--device", "cpu",
           "--out", str(tmp_path / "run"), "--json"]
    # PYTHONFAULTHANDLER: a worker killed by a signal (SIGABRT from a C++ abort) prints where it was
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "TORCH_SHOW_CPP_STACKTRACES": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    # the workers' own messages come first, torchrun's summary of the failure last: show both
    assert out.returncode == 0, out.stderr[:4000] + "\n[...]\n" + out.stderr[-1500:]
    report = json.loads(out.stdout)
    assert report["run"]["processes"] == 2 and report["run"]["epochs"] == 1
    assert json.loads((tmp_path / "run" / "provenance.json").read_text())[0]["processes"] == 2


def test_an_error_in_the_workers_is_one_line_and_exit_code_2(cifar_folder, tmp_path):
    from typer.testing import CliRunner

    from ufm.cli.main import app

    result = CliRunner().invoke(app, ["train", "--dataset", "cifar10", "--data-root", str(cifar_folder), "--n-major",
                                      "12", "--ratio", "4", "--width", "4", "--embed-dim", "8", "--batch-size", "8",
                                      "--epochs", "1", "--device", "cpu", "--test-per-class", "500", "--nproc", "2",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "fewer samples" in lines[0] and "Traceback" not in result.output, result.output


def test_every_run_of_the_protocol_at_a_tiny_size(tmp_path):
    write_synthetic_cifar10(tmp_path / "data", train_per_class=40, test_per_class=5)
    result = CliRunner().invoke(app, [
        "train", "--preset", "cifar10-lt", "--data-root", str(tmp_path / "data"), "--ratio", "10", "--n-major", "40",
        "--test-per-class", "5", "--width", "4", "--embed-dim", "16", "--batch-size", "16", "--augment", "none",
        "--epochs", "1", "--eval-every", "1", "--device", "cpu", "--out", str(tmp_path / "lt"), "--json"])
    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    assert set(summaries) == set(preset("cifar10-lt"))
    for s in summaries.values():
        assert s["counts"] == [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]
        groups = shot_groups(s["counts"])
        for name, per_class in s["per_class_accuracy"].items():
            assert len(per_class) == 10
            for group, value in s["shot_accuracy"][name].items():
                mine = [a for a, g in zip(per_class, groups) if g == group]
                assert value == pytest.approx(sum(mine) / len(mine))
        assert set(s["shot_accuracy"]["probe"]) == {"medium", "few"}  # no class above 100 images here
        # a balanced test set: top-1 is the mean of the per-class accuracies
        assert s["linear_probe_accuracy"] == pytest.approx(sum(s["per_class_accuracy"]["probe"]) / 10)
