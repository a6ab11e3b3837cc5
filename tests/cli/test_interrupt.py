"""Ctrl-C of a command lands at any moment (while ufm starts, inside a training run, under the local executor, with
--nproc): exit code 130 within seconds, ONE line on stderr saying what was kept and how to continue, no process left
behind, and the same command (or --resume) continues from what was kept."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ufm.cli.main import EARLY_INTERRUPT, app
from _images import write_image_folder

LINE_WITHIN_S = 5  # the interrupted line after the signal
EXIT_WITHIN_S = 15  # the process gone (interpreter shutdown with torch loaded takes a few seconds on a busy machine)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images"))


def _train_args(images, out, *extra):
    return ["train", "--dataset", "folder", "--data-root", str(images), "--n-major", "10", "--ratio", "5", "--width",
            "4", "--embed-dim", "8", "--batch-size", "8", "--checkpoint-every", "1", "--eval-every", "1", "--device",
            "cpu", "--out", str(out), *extra]


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started (any of its threads), as Linux lists them."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _interrupt(args: list[str], ready, twice: bool = False, timeout: float = 120) -> tuple[int, list[str], float, float]:
    """Run ``ufm ARGS``, send SIGINT (as a terminal does; ``twice``: again 0.3 s later) once ``ready()``; (exit code,
    stderr lines, seconds to the first stderr line, seconds to exit), after checking that none of its processes
    outlives it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UFM_ESTIMATE_AFTER_S": "1e9"}  # no time estimate on stderr
    proc = subprocess.Popen([sys.executable, "-m", "ufm.cli.main", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    children: set[int] = set()
    try:
        deadline = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        children = _children(proc.pid)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        if twice:  # a second Ctrl-C soon after, while the first is being handled
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
        first = proc.stderr.readline()
        line_s = time.monotonic() - sent
        rest = proc.stderr.read()
        proc.wait(EXIT_WITHIN_S)
        exit_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    left = time.monotonic() + 5  # a resource tracker ends once its parent has gone
    while any(_alive(c) for c in children) and time.monotonic() < left:
        time.sleep(0.1)
    stray = [c for c in children if _alive(c)]
    for c in stray:
        os.kill(c, signal.SIGKILL)
    assert not stray, f"processes left running after Ctrl-C: {stray}"
    return proc.returncode, (first + rest).splitlines(), line_s, exit_s


def _epochs_logged(run: Path) -> int:
    path = run / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_ctrl_c_while_ufm_starts_is_one_line():
    """A Ctrl-C while the commands are still importing (here: sent from inside the import, deterministically)."""
    code = ("import os, signal, ufm.cli.main as m; real = m._build; "
            "m._build = lambda: (os.kill(os.getpid(), signal.SIGINT), real())[1]; m.run()")
    out = subprocess.run([sys.executable, "-c", code, "train", "--help"], capture_output=True, text=True, timeout=60,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert out.returncode == 130 and out.stderr == EARLY_INTERRUPT + "\n" and out.stdout == ""


def test_ctrl_c_of_a_training_run(images, tmp_path):
    run = tmp_path / "run"
    code, lines, line_s, exit_s = _interrupt(_train_args(images, run, "--epochs", "1000"),
                                             lambda: _epochs_logged(run) >= 2)
    assert code == 130 and len(lines) == 1, lines
    assert line_s < LINE_WITHIN_S and exit_s < EXIT_WITHIN_S, (line_s, exit_s)
    from ufm.deep.train import load_checkpoint

    epoch = load_checkpoint(run / "checkpoint.pt")["epoch"]
    assert lines[0] == (f"interrupted: {run} keeps its checkpoint of epoch {epoch}; continue with "
                        f"`ufm train --resume {run}`")
    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--epochs", str(epoch + 1), "--json"])
    assert result.exit_code == 0, result.output
    assert '"epochs": ' + str(epoch + 1) in result.output


def test_ctrl_c_of_a_grid_under_the_local_executor_keeps_the_finished_run(images, tmp_path):
    """The run that finished before the signal counts as finished: the same command reports and tabulates it."""
    grid = tmp_path / "grid"
    args = _train_args(images, grid, "--grid", "epochs=1,24", "--executor", "local", "--workers", "2")
    code, lines, line_s, exit_s = _interrupt(args, lambda: (grid / "epochs=1" / "summary.json").is_file()
                                             and _epochs_logged(grid / "epochs=24") >= 12, twice=True)  # a short rerun
    assert code == 130 and len(lines) == 1, lines
    assert line_s < LINE_WITHIN_S and exit_s < EXIT_WITHIN_S, (line_s, exit_s)
    assert lines[0] == (f"interrupted: finished runs are kept in {grid}; its worker processes were stopped; re-run the "
                        "same command to continue (finished runs are kept, started ones resume from their checkpoints)")
    assert not (grid / "epochs=24" / "summary.json").exists()
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    import json

    summaries = json.loads(result.output)
    assert sorted(summaries) == ["epochs=1", "epochs=24"]
    assert summaries["epochs=1"]["epochs"] == 1 and summaries["epochs=24"]["epochs"] == 24


def test_ctrl_c_of_data_parallel_training_stops_every_process(images, tmp_path):
    run = tmp_path / "run"
    code, lines, line_s, exit_s = _interrupt(_train_args(images, run, "--epochs", "1000", "--nproc", "2"),
                                             lambda: _epochs_logged(run) >= 2, twice=True)
    assert code == 130 and len(lines) == 1, lines
    assert line_s < LINE_WITHIN_S and exit_s < EXIT_WITHIN_S, (line_s, exit_s)
    assert lines[0].startswith(f"interrupted: {run} keeps its checkpoint of epoch ")
    assert lines[0].endswith(f"; continue with `ufm train --resume {run}`")
    epoch = int(lines[0].split("of epoch ")[1].split(";")[0])
    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--epochs", str(epoch + 1), "--json"])
    assert result.exit_code == 0, result.output
