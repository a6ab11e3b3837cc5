"""Bad input through the CLI: refused before any compute with one line naming the option or file, exit code 2,
no traceback, and no output folder left behind.  One test per class of defect (issue 14)."""

import os

import numpy as np
import pytest
from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()
SMALL = ["--k", "4", "--n-major", "8", "--ratio", "4", "--d", "6", "--batch-size", "8", "--epochs", "3"]


def small(*extra):
    """SMALL with ``extra`` options in place of its own (an option may be given once)."""
    given = {a for a in extra if a.startswith("--")}
    kept = [a for i, a in enumerate(SMALL) if a not in given and not (i % 2 and SMALL[i - 1] in given)]
    return [*kept, *extra]


def refused(args, *needles, out=None, env=None):
    """Run ``ufm args``; assert exit code 2, one 'error:' line holding every needle, no traceback, ``out`` absent."""
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == 2, (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    text = result.output.strip()
    assert "Traceback" not in text and text.startswith("error:") and len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, (needle, text)
    if out is not None:
        assert not os.path.exists(out), f"{out} was left behind"
    return text


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "run"
    result = runner.invoke(app, ["simulate", *SMALL, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out


# --- 1. sizes checked before allocating ----------------------------------------------------------------------------

def test_sizes_are_checked_before_allocating(tmp_path):
    out = tmp_path / "run"
    # sizes far beyond any machine (terabytes), so that the refusal does not depend on where the test runs
    for extra, needle in ((["--n-major", "1000000000"], "N = 2500000000 samples"), (["--d", "1000000"], "d = 1000000"),
                          (["--n-w", "0", "--n-w", "1", "--seeds", "0", "--seeds", "1", "--n-major", "300000000"],
                           "4 stacked run(s)")):
        text = refused(["simulate", *small(*extra), "--out", out], needle, "GiB", "--max-memory-gb", out=out)
        assert "UFM_MAX_MEMORY_GB" in text
    refused(["check", "--n", "10000000"], "n = 10000000", "GiB", "lower --n")
    refused(["check", "--n-w", "100000000"], "n_w = 100000000", "GiB")
    # the limit can be lowered (and raised) by the flag or the environment variable
    refused(["simulate", *SMALL, "--max-memory-gb", "0.00001", "--out", out], "the limit 1e-05 GiB set by max_memory_gb",
            out=out)
    refused(["simulate", *SMALL, "--out", out], "set by UFM_MAX_MEMORY_GB", out=out, env={"UFM_MAX_MEMORY_GB": "1e-5"})
    refused(["simulate", *SMALL, "--out", out], "UFM_MAX_MEMORY_GB='lots'", out=out, env={"UFM_MAX_MEMORY_GB": "lots"})
    result = runner.invoke(app, ["simulate", *SMALL, "--max-memory-gb", "100", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output


def test_sizes_of_the_new_commands_are_checked_before_allocating(tmp_path):
    out = tmp_path / "map"
    # ufm map builds k x k matrices per cell: refused up front (was a torch allocation traceback)
    text = refused(["map", "--k", "100000", "--ratio", "2", "--n-w", "1", "--out", out], "k = 100000", "lower --k", out=out)
    assert "--max-memory-gb" not in text  # map has no such flag: the variable is named
    # class counts beyond int64 (was 'Overflow when unpacking long long')
    refused(["simulate", *SMALL[6:], "--counts", "99999999999999999999x2", "--out", out], "samples in a class",
            out=out)
    refused(["solve", "--counts", "99999999999999999999,3", "--out", out], "samples in a class", out=out)
    # collapse-map: the N x N problem and the k x k matrices (were numpy / torch allocation tracebacks)
    cmap = ["collapse-map", "--profile", "step", "--ratio", "2", "--tau", "0.5", "--n-w", "1", "--seeds", "0"]
    refused([*cmap, "--k", "100", "--n-major", "10000", "--out", out], "750000 samples", "lower --k or --n-major",
            out=out)
    text = refused([*cmap, "--k", "100000", "--n-major", "2", "--out", out], "k = 100000", "lower --k", out=out)
    assert "--max-memory-gb" not in text  # collapse-map has no such flag: the variable is named
    refused([*cmap[:-1], "100000000", "--out", out], "--seeds must be in [0, 1000]", out=out)


def test_memory_estimate_follows_the_sizes():
    from ufm.simulate import SimConfig, memory_estimate

    base = SimConfig(k=4, n_major=1000, ratio=4, d=16, batch_size=64)
    assert memory_estimate(SimConfig(**{**base.to_dict(), "n_major": 2000})) > 1.9 * memory_estimate(base)
    assert memory_estimate(SimConfig(**{**base.to_dict(), "seeds": (0, 1)})) > 1.9 * memory_estimate(base)
    full = SimConfig(**{**base.to_dict(), "batching": "full", "batch_size": 32})
    assert memory_estimate(full) > 4 * 2 * 2500 * 2500 * 4  # the 2500 x 2500 similarities of each run, 4 copies


# --- 2. where results go, checked first ----------------------------------------------------------------------------

def test_out_is_checked_before_computing(tmp_path, sim_run):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    under = blocker / "run"
    for args in (["simulate", *SMALL], ["figures", "--name", "prop1-gaps", "--quick"], ["verify-prop1"],
                 ["deep-figures", sim_run]):
        refused([*args, "--out", under], f"{under} lies under {blocker}, which is a file", out=under)
    refused(["simulate", *SMALL, "--out", blocker], f"{blocker} is a file, not a folder")
    # the sweep-backed commands (map, sweep) and collapse-map check it too (map was a traceback)
    for args in (["map", "--k", "4", "--n-major", "4", "--ratio", "2", "--n-w", "1"],
                 ["sweep", "--k", "4", "--grid", "tau=0.1,0.2"],
                 ["collapse-map", "--k", "4", "--n-major", "4", "--profile", "step", "--ratio", "2", "--n-w", "1"]):
        refused([*args, "--out", blocker], f"{blocker} is a file, not a folder")
        refused([*args, "--out", under], f"{under} lies under {blocker}, which is a file", out=under)
    refused(["simulate", *SMALL, "--out", "/proc/ufm-test-run"], "cannot be written")


def test_run_folders_are_never_silently_overwritten(sim_run):
    before = {p.name: p.stat().st_mtime_ns for p in sim_run.iterdir()}
    refused(["simulate", *SMALL, "--seeds", "5", "--out", sim_run], f"--out {sim_run} already holds files", "--overwrite")
    assert {p.name: p.stat().st_mtime_ns for p in sim_run.iterdir()} == before


def test_overwrite_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.txt").write_text("from another run")
    # a folder of files no ufm command wrote is never replaced, --overwrite or not (it would delete them)
    for extra in ([], ["--overwrite"]):
        refused(["simulate", *SMALL, "--out", out, *extra], f"--out {out} holds files no ufm command wrote (stale.txt)")
        assert [p.name for p in out.iterdir()] == ["stale.txt"]
    for command in (["solve", "--counts", "4,4,2"], ["collapse-map", "--k", "3", "--n-major", "4", "--ratio", "2",
                                                      "--n-w", "0"]):
        refused([*command, "--out", out, "--overwrite"], "holds files no ufm command wrote")
    out = tmp_path / "sim"  # a simulation run folder with a stray file in it: --overwrite replaces the whole folder
    assert runner.invoke(app, ["simulate", *SMALL, "--out", str(out)]).exit_code == 0
    (out / "stale.txt").write_text("from another run")
    result = runner.invoke(app, ["simulate", *SMALL, "--out", str(out), "--overwrite", "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "config.json", "gram_heatmaps.png", "kind.json", "metrics.jsonl",
                                                     "summary.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_a_failing_run_leaves_no_folder(tmp_path):
    out = tmp_path / "run"
    refused(["simulate", *SMALL, "--tau", "1e-39", "--out", out], "non-finite at epoch 1", out=out)
    assert list(tmp_path.iterdir()) == []


# --- 3. files that are not what they claim ---------------------------------------------------------------------------

def test_corrupt_input_files_are_named(tmp_path, sim_run):
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "random.npy").write_bytes(os.urandom(300))
    np.save(tmp_path / "text.npy", np.array([["a", "b"], ["c", "d"]]))
    out = tmp_path / "run"
    for name, needle in (("empty.npy", "is empty"), ("random.npy", "is not a .npy array"), ("text.npy", "real numbers")):
        refused(["simulate", *SMALL, "--gram-file", tmp_path / name, "--out", out], f"Gram file {tmp_path / name}", needle,
                out=out)
        refused(["check", "--k", "4", "--gram-file", tmp_path / name], f"Gram file {tmp_path / name}", needle)
    # image data: an empty IDX file, a .jpg that is not an image
    idx = tmp_path / "idx"
    idx.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (idx / name).write_bytes(b"")
    train = ["train", "--epochs", "1", "--width", "4", "--embed-dim", "8", "--batch-size", "8", "--device", "cpu"]
    refused([*train, "--dataset", "idx", "--data-root", idx, "--out", out], "train-images-idx3-ubyte has 0 bytes", out=out)
    for split in ("train", "test"):
        (tmp_path / "folder" / split / "cat").mkdir(parents=True)
        (tmp_path / "folder" / split / "cat" / "0.jpg").write_bytes(b"not an image")
    refused([*train, "--dataset", "folder", "--data-root", tmp_path / "folder", "--out", out],
            "0.jpg is not a readable image", out=out)
    # run folders of another kind, or with malformed files
    figs = tmp_path / "figs"
    refused(["figures", "--runs", sim_run, "--out", figs], f"{sim_run} is a simulation run folder (written by `ufm simulate`", out=figs)
    refused(["deep-figures", sim_run, "--out", figs], "not a training run", out=figs)
    bad = tmp_path / "badtrain"
    bad.mkdir()
    np.savez(bad / "arrays.npz", g_m=np.eye(3), g_star=np.eye(3))
    (bad / "metrics.jsonl").write_text('{"epoch": 1, "distance": 0.5}\n{"epoch": 2, "dist\n')
    refused(["deep-figures", bad, "--out", figs], f"{bad / 'metrics.jsonl'} line 2 is not valid JSON", out=figs)
    (bad / "metrics.jsonl").write_text('{"epoch": 1, "distance": [0.5, 0.4]}\n')
    refused(["deep-figures", bad, "--out", figs], "does not hold training metrics", out=figs)
    (bad / "arrays.npz").write_bytes(b"garbage")
    refused(["deep-figures", bad, "--out", figs], f"{bad / 'arrays.npz'} is not a readable .npz archive", out=figs)


# --- 4. values that are not finite or not meaningful -----------------------------------------------------------------

@pytest.mark.parametrize("option, value, needle", [
    ("--tol", "nan", "--tol must be a finite number"), ("--momentum", "nan", "--momentum must be a finite number"),
    ("--lr", "inf", "--lr must be a finite number"), ("--gamma", "nan", "--gamma must be a finite number"),
    ("--n-w", "inf", "--n-w must be a finite number"), ("--tau", "nan", "--tau must be a finite number"),
    ("--ratio", "inf", "--ratio must be a finite number"), ("--minority-fraction", "nan", "--minority-fraction must be"),
    ("--momentum", "1", "--momentum must be in [0, 1)"), ("--seeds", "-1", "--seeds must be >= 0"),
    ("--seeds", "1" + "0" * 25, "--seeds = 1" + "0" * 25 + " is out of range"), ("--k", "1", "--k must be >= 2"),
    ("--device", "meta", "--device 'meta' is not a device"),
])
def test_simulate_values_are_finite_and_in_range(tmp_path, option, value, needle):
    out = tmp_path / "run"
    extra = ["--optimizer", "sgd"] if option == "--momentum" else ["--geometry", "minority"] if option == "--gamma" else []
    refused(["simulate", *small(*extra, option, value), "--out", out], needle, out=out)


@pytest.mark.parametrize("option, value, needle", [
    ("--momentum", "nan", "--momentum must be a finite number"), ("--weight-decay", "nan", "--weight-decay must be a finite"),
    ("--tau", "inf", "--tau must be a finite number"), ("--weight-decay", "-1", "--weight-decay must be >= 0"),
    ("--test-per-class", "-1", "--test-per-class must be >= 0"), ("--n-major", "-1", "--n-major must be >= 0"),
    ("--momentum", "-0.5", "--momentum must be in [0, 1)"), ("--seed", "-1", "--seed must be >= 0"),
])
def test_train_values_are_finite_and_in_range(tmp_path, option, value, needle):
    out = tmp_path / "run"
    refused(["train", "--data-root", tmp_path / "none", option, value, "--out", out], needle, out=out)


def test_check_values(tmp_path):
    refused(["check", "--tau", "nan"], "--tau must be a finite number, got nan")
    refused(["check", "--n", "0"], "--n must be >= 1")


# --- 5. options that conflict or do nothing --------------------------------------------------------------------------

def test_conflicting_or_ineffective_options_are_refused(tmp_path, sim_run):
    np.save(tmp_path / "g.npy", np.eye(4))
    out = tmp_path / "run"
    for extra, needle in (
        (["--gram-file", tmp_path / "g.npy", "--geometry", "orthogonal"], "and --gram-file both give G_*"),
        (["--gamma", "2"], "--gamma has no effect without the minority geometry"),
        (["--loss", "ce", "--n-w", "0", "--n-w", "10"], "stacks runs that --loss ce makes identical"),
        (["--loss", "limit", "--n-w", "0", "--n-w", "10"], "stacks runs that --loss limit makes identical"),
        (["--loss", "prop1", "--n-w", "10"], "--n-w has no effect with --loss prop1"),
        (["--loss", "class-averaging", "--anchors", "batch"], "--anchors has no effect with --loss class-averaging"),
        (["--loss", "ce", "--anchors", "prototype"], "--anchors has no effect with --loss ce"),
        (["--momentum", "0.5"], "--momentum has no effect with --optimizer adam"),
        (["--batching", "full", "--batch-size", "16"], "--batch-size has no effect with full batching"),
        (["--profile", "long-tail", "--minority-fraction", "0.3"], "--minority-fraction has no effect with --profile long-tail"),
        (["--profile", "balanced", "--ratio", "3"], "--ratio has no effect with balanced counts"),
        (["--n-w", "10", "--n-w", "10"], "--n-w repeats 10: the stacked runs"),
        (["--seeds", "1", "--seeds", "1"], "--seeds repeats 1: the stacked runs"),
        (["--gram-file", ""], "--gram-file is empty"),
    ):
        args = [a for a in SMALL if a not in ()]
        if "--ratio" in extra:  # SMALL sets --ratio and --batch-size itself
            args = args[:4] + args[6:]
        if "--batch-size" in extra:
            args = args[:8] + args[10:]
        refused(["simulate", *args, *extra, "--out", out], needle, out=out)
    # the new commands' options without effect
    solve = ["solve", "--k", "3", "--n-major", "4", "--ratio", "2", "--n-w", "1", "--out", out]
    refused([*solve, "--full", "--no-reduce"], "--no-reduce has no effect with --full", out=out)
    refused([*solve, "--solver", "BM", "--no-reduce"], "--reduce has no effect with --solver BM", out=out)
    cmap = ["collapse-map", "--k", "3", "--n-major", "4", "--profile", "step", "--ratio", "2", "--tau", "0.5"]
    refused([*cmap, "--n-w", "0", "--anchors", "batch"], "--anchors batch has no effect with --n-w 0 only")
    refused([*cmap, "--n-w", "1", "--overwrite"], "--overwrite has no effect without --out")
    refused(["check", "--gram-file", tmp_path / "g.npy", "--geometry", "orthogonal", "--k", "4"],
            "--geometry orthogonal and --gram-file both give G_*")
    refused(["check", "--gram-file", tmp_path / "g.npy"], "is 4 x 4 but there are 10 classes; make them match (--k = 4")
    figs = tmp_path / "figs"
    refused(["figures", "--runs", sim_run, "--name", "prop1-gaps", "--out", figs], "--runs does not combine with --name")
    refused(["figures", "--list", "--quick"], "--list does not combine with --quick")


def test_values_that_no_point_can_run_are_refused_up_front_with_the_flag(tmp_path):
    """A value that makes a run impossible is refused before any compute and named as the flag to change (was:
    map ran its other cells and failed one task; simulate named 'n'; design-prototypes named a function after a
    solve)."""
    out = tmp_path / "run"
    refused(["map", "--k", "4", "--n-major", "4", "--ratio", "2", "--n-w", "0.5", "--no-cross-check", "--out", out],
            "--n-w must be 0 or >= 1", "--anchors batch", out=out)
    refused(["map", "--k", "4", "--n-major", "4", "--ratio", "2", "--ratio", "1e9", "--n-w", "1", "--no-cross-check",
             "--out", out], "increase --n-major or lower --ratio", out=out)  # was: "increase n or lower R"
    refused(["simulate", "--counts", "4,4,2", "--epochs", "2", "--n-w", "1", "--seeds", "0", "--out", out],
            "--batch-size 32 exceeds the N = 10 samples", "or full batching", out=out)
    refused(["design-prototypes", "--counts", "4,4,2", "--max-evals", "2"], "two majority classes",
            "two minority classes", "got 2 and 1")


def test_losses_without_n_w_default_to_one_run():
    from ufm.simulate import SimConfig

    assert SimConfig(loss="ce").n_w == (0.0,) and SimConfig().n_w == (0.0, 100.0)
    assert SimConfig(loss="class-averaging").prototype_anchors is None and SimConfig().prototype_anchors is True
    cfg = SimConfig(loss="limit", prototype_anchors=False)
    assert cfg.prototype_anchors is False and "n_w" in cfg.without_effect()
    assert SimConfig.from_dict(cfg.to_dict()) == cfg  # a run folder's config reads back


def test_solve_and_copies_read_one_validated_specification(tmp_path):
    """ufm solve and ufm copies take their problem flags from ufm.spec.ProblemSpec: the same refusals for both."""
    from typer.testing import CliRunner

    from ufm.cli.main import app

    runner = CliRunner()
    for command in (["solve", "--out", str(tmp_path / "s")], ["copies"]):
        for bad, needle in ((["--counts", ""], "--counts is empty"),
                            (["--counts", "5,4", "--k", "3"], "--k has no effect when --counts are given"),
                            (["--gamma", "3"], "--gamma has no effect without the minority geometry"),
                            (["--tau", "nan"], "--tau must be a finite number"),
                            (["--gram-file", str(tmp_path / "g.npy"), "--geometry", "orthogonal"], "drop one of them")):
            result = runner.invoke(app, [*command, *bad])
            assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output, (
                command, bad, result.output)
    result = runner.invoke(app, ["solve", "--full", "--counts", "100x2", "--out", str(tmp_path / "f")])
    assert result.exit_code == 2 and "GiB" in result.output and not (tmp_path / "f").exists()


@pytest.mark.parametrize("command", [["simulate"], ["solve"], ["check"], ["train", "--preset", "cpu-small"]])
@pytest.mark.parametrize("value", ["inf", "nan", "0", "-2"])
def test_a_memory_limit_that_is_not_a_positive_size_is_refused_by_its_flag(tmp_path, command, value):
    refused([*command, "--max-memory-gb", value], "--max-memory-gb must be a finite number of GiB > 0",
            out=tmp_path / "run")
