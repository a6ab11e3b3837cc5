"""Against a real SLURM (``scripts/local-slurm.sh`` starts a one-node cluster; ``.ci/run`` does it before the
tests): a sweep as a job array equals the same sweep inline; torch's threads follow ``--cpus-per-task``; a
training run preempted mid-run is requeued and ends with the same weights as an uninterrupted run."""

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.deep.train import TrainConfig, train
from ufm.executors import ExecutorConfig, FunctionTask, TasksFailed, run_tasks
from ufm.simulate import SimConfig
from ufm.engine import run_grid as run_sweep, run_point

from _idx import tiny_idx


def _no_cluster() -> str | None:
    """Why the SLURM tests cannot run here, or None."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM client here (sinfo/sbatch); start the one-node cluster with scripts/local-slurm.sh (root)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo does not answer ({err}); start the cluster with scripts/local-slurm.sh"
    if out.returncode != 0:
        return f"sinfo failed ({out.stderr.strip()}); start the cluster with scripts/local-slurm.sh"
    states = out.stdout.split()
    if not any(s.startswith(("idle", "mix")) for s in states):
        return f"no idle SLURM node (states {states}); start the cluster with scripts/local-slurm.sh"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return 'submitit is not installed: pip install -e ".[cluster]"'
    return None


REASON = _no_cluster()
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))
SLURM = ExecutorConfig(executor="slurm", cpus_per_task=1, time_min=60)
runner = CliRunner()


def _jobs() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=30)
    return set(out.stdout.split())


@pytest.fixture(autouse=True)
def _cancel_what_the_test_submitted():
    """Every job a test submitted is cancelled when it ends, passing or failing (none outlives the suite)."""
    before = _jobs()
    yield
    left = sorted(_jobs() - before)
    if left:
        subprocess.run(["scancel", *left], timeout=30)


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def test_sweep_on_slurm_equals_inline(tmp_path):
    cfg = SimConfig(k=3, n_major=8, ratio=2.0, d=4, batch_size=8, epochs=20, log_every=10, n_w=(0.0, 10.0),
                    device="cpu")
    grid = {"ratio": (1.0, 2.0, 4.0)}
    inline = run_sweep(tmp_path / "inline", "simulate", cfg, grid)
    slurm = run_sweep(tmp_path / "slurm", "simulate", cfg, grid, SLURM)
    assert slurm["finished"] == 3 and slurm["rows"] == inline["rows"]
    assert len(list((tmp_path / "slurm" / "logs").glob("*_log.out"))) == 3  # one log per array task
    again = run_sweep(tmp_path / "slurm", "simulate", cfg, grid, SLURM)  # nothing left to submit
    assert (again["ran"], again["skipped"], again["rows"]) == (0, 3, inline["rows"])


def test_interrupted_sweep_cancels_its_jobs_and_a_rerun_finishes_it(tmp_path):
    """Ctrl-C on `ufm sweep --executor slurm` cancels the array; the same command again runs only what is left."""
    out = tmp_path / "s"
    cmd = [str(Path(sys.executable).parent / "ufm"), "sweep", "--k", "3", "--n-major", "8", "--d", "4", "--batch-size",
           "8", "--epochs", "20", "--grid", "ratio=1,2,4,8", "--n-w", "10", "--executor", "slurm", "--cpus-per-task",
           "1", "--array-parallelism", "1", "--out", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal

    def finished() -> int:
        return len(list(out.glob("points/*/summary.json")))

    try:
        _wait_for(lambda: finished() >= 1, 180, "the first point")
        first.send_signal(signal.SIGINT)
        output = first.communicate(timeout=120)[0]
    finally:
        if first.poll() is None:  # the test failed before the command ended: end it
            first.kill()
            first.communicate()
    assert first.returncode == 130 and "its SLURM jobs were cancelled" in output, output
    job = next(out.glob("logs/*_0_log.out")).name.split("_")[0]
    assert subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip() == ""
    done_before = finished()
    assert 1 <= done_before < 4
    again = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["skipped"], report["finished"]) == (done_before, 4)
    assert [r["ratio"] for r in report["rows"]] == [1.0, 2.0, 4.0, 8.0]


def test_refused_submission_is_one_clear_error(tmp_path):
    result = runner.invoke(app, ["sweep", "--epochs", "2", "--ratio", "1", "--executor", "slurm", "--partition",
                                 "no-such-partition", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert "sbatch refused the job array" in result.output and "invalid partition name" in result.output.lower()
    assert "Traceback" not in result.output


def test_threads_from_the_allocation_and_failed_or_killed_tasks(tmp_path):
    """OMP_NUM_THREADS=1 in the submitting shell does not matter: --cpus-per-task decides the threads.  A task
    that raises, and one killed by scancel (no result), are reported as failed; the others' results stay."""
    cfg = ExecutorConfig(executor="slurm", cpus_per_task=2, time_min=60)
    tasks = [FunctionTask(name="threads", fn=torch.get_num_threads),
             FunctionTask(name="bad", fn=run_point, args=("nope", {}, str(tmp_path))),
             FunctionTask(name="sleeper", fn=time.sleep, args=(150,))]

    def kill_the_sleeper() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            logs = list(tmp_path.glob("*_2_0_log.out"))
            if logs and "Starting with JobEnvironment" in logs[0].read_text():
                subprocess.run(["scancel", logs[0].name.split("_")[0] + "_2"], timeout=30)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_sleeper)
    killer.start()
    with pytest.raises(TasksFailed) as err:
        run_tasks(tasks, cfg, tmp_path)
    killer.join()
    assert err.value.results == {"threads": 2}
    assert "unknown kind of experiment" in err.value.failures["bad"]
    assert "ended without a result" in err.value.failures["sleeper"]


def test_preempted_training_is_requeued_and_resumes_to_the_same_weights(tmp_path):
    tiny_idx(tmp_path / "data")
    options = dict(dataset="idx", data_root=str(tmp_path / "data"), n_major=6, ratio=2.0, width=4, embed_dim=8,
                   epochs=60, batch_size=8, eval_every=30, checkpoint_every=1, lr=0.05, device="cpu")
    run = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    result = runner.invoke(app, ["train", *flags, "--executor", "slurm", "--cpus-per-task", "1", "--time-min", "60",
                                 "--no-wait", "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)["submitted"]["run"]

    def epochs_logged() -> int:
        try:
            return len((run / "metrics.jsonl").read_text().splitlines())
        except FileNotFoundError:
            return 0

    _wait_for(lambda: epochs_logged() >= 3, 180, "the job to train 3 epochs")
    before = (run / "metrics.jsonl").read_text().splitlines()[:2]  # with their timings: a rerun would differ
    subprocess.run(["scancel", "--signal=USR2", str(job)], check=True, timeout=30)  # what SLURM sends on preemption
    log = run / "logs" / f"{job}_0_log.out"  # submitit's log of the job (array task 0)
    _wait_for(lambda: "Requeued job" in log.read_text(), 60, "submitit to requeue the job")
    # (with --time-min 60 the signal is a preemption; a signal in the last 10 minutes counts as the time limit)
    assert "this job is preempted" in (run / "logs" / f"{job}_0_log.err").read_text()
    assert epochs_logged() < options["epochs"]  # it was stopped mid-run

    # the uninterrupted run, inline, while the requeued job waits for its turn
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the job (1 CPU per task)
    try:
        train(TrainConfig(**options), tmp_path / "inline")
    finally:
        torch.set_num_threads(threads)
    _wait_for(lambda: (run / "summary.json").is_file(), 300, "the requeued job to finish")

    assert (run / "metrics.jsonl").read_text().splitlines()[:2] == before  # resumed, not started again
    info = subprocess.run(["scontrol", "show", "job", str(job)], capture_output=True, text=True, timeout=30).stdout
    assert int(re.search(r"Restarts=(\d+)", info).group(1)) >= 1
    assert list(run.glob(f"slurm-{job}.out")) and list(run.glob(f"slurm-{job}.err"))  # its logs, linked in its folder
    resumed = torch.load(run / "checkpoint.pt", weights_only=False)
    reference = torch.load(tmp_path / "inline" / "checkpoint.pt", weights_only=False)
    assert resumed["epoch"] == reference["epoch"] == options["epochs"]
    assert resumed["model"].keys() == reference["model"].keys()
    for name, tensor in reference["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in reference["history"]]
