import os
import sys

import pytest
import torch

from ufm.executors import (
    ExecutorConfig,
    FunctionTask,
    TasksFailed,
    parse_slurm_extra,
    require_submitit,
    run_tasks,
    set_task_threads,
    slurm_parameters,
    task_threads,
)
from ufm.deep.tasks import TrainTask
from ufm.engine import run_point


# ------------------------------------------------------------------------------------------ thread counts


def test_task_threads_follow_the_allocation():
    assert task_threads(environ={"SLURM_CPUS_PER_TASK": "3"}, cores=64) == 3  # SLURM's allocation decides
    assert task_threads(environ={"SLURM_CPUS_PER_TASK": "3", "OMP_NUM_THREADS": "1"}, cores=64) == 3
    assert task_threads(parallel=1, environ={}, cores=8) == 8
    assert task_threads(parallel=2, environ={}, cores=8) == 4  # cores shared by the local processes
    assert task_threads(parallel=3, environ={}, cores=8) == 2
    assert task_threads(parallel=16, environ={}, cores=8) == 1  # never below one
    assert task_threads(parallel=2, environ={"OMP_NUM_THREADS": "1"}, cores=8) == 1  # the user's cap
    assert task_threads(parallel=2, environ={"OMP_NUM_THREADS": "junk", "SLURM_CPUS_PER_TASK": ""}, cores=8) == 4


def test_set_task_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        assert set_task_threads() == 2
        assert torch.get_num_threads() == 2
        assert os.environ["OMP_NUM_THREADS"] == "2" and os.environ["MKL_NUM_THREADS"] == "2"
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------ configuration


def test_executor_config_refuses_options_of_another_executor():
    with pytest.raises(ValueError, match="partition applies to executor='slurm' only"):
        ExecutorConfig(executor="inline", partition="gpu")
    with pytest.raises(ValueError, match="cpus_per_task, wait=False apply to executor='slurm' only"):
        ExecutorConfig(executor="local", cpus_per_task=4, wait=False)
    with pytest.raises(ValueError, match="workers applies to executor='local' only"):
        ExecutorConfig(executor="slurm", workers=2)
    with pytest.raises(ValueError, match="executor 'cloud' is not one of inline, local, slurm"):
        ExecutorConfig(executor="cloud")
    with pytest.raises(ValueError, match="time_min must be >= 1"):
        ExecutorConfig(executor="slurm", time_min=0)


def test_slurm_extra_and_parameters():
    assert parse_slurm_extra(["qos=high", "--constraint=volta", "mail-type=END"]) == {
        "qos": "high", "constraint": "volta", "mail-type": "END"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_slurm_extra(["qos"])
    with pytest.raises(ValueError, match="has its own option partition"):
        parse_slurm_extra(["partition=gpu"])
    with pytest.raises(ValueError, match="twice"):
        parse_slurm_extra(["qos=a", "qos=b"])
    # one sbatch option however it is spelled; what submitit sets itself; keys that are not words; empty values
    with pytest.raises(ValueError, match="sets 'mem-per-cpu' twice"):
        parse_slurm_extra(["mem_per_cpu=1G", "mem-per-cpu=2G"])
    for item in ("job-name=x", "job_name=x", "open-mode=truncate", "nodes=2", "--output=x"):
        with pytest.raises(ValueError, match="which submitit sets"):
            parse_slurm_extra([item])
    for item in ("q os=1", "qos= ", "=x", "", "9qos=1"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_slurm_extra([item])
    with pytest.raises(ValueError, match="mem-per-cpu=1G and mem_gb both set the memory"):
        ExecutorConfig(executor="slurm", mem_gb=4, slurm_extra=("mem-per-cpu=1G",))
    for name in ("partition", "account"):
        with pytest.raises(ValueError, match=f"{name} is empty"):
            ExecutorConfig(executor="slurm", **{name: " "})
    cfg = ExecutorConfig(executor="slurm", partition="gpu", account="lab", time_min=30, cpus_per_task=4,
                         gpus_per_task=1, mem_gb=1.5, array_parallelism=8, slurm_extra=("qos=high",))
    assert slurm_parameters(cfg) == {"time": 30, "cpus_per_task": 4, "partition": "gpu", "account": "lab",
                                     "gpus_per_task": 1, "mem": "1536MB", "array_parallelism": 8,
                                     "additional_parameters": {"qos": "high"}}
    assert slurm_parameters(ExecutorConfig(executor="slurm", mem_gb=16)) == {"time": 60, "cpus_per_task": 1, "mem": "16GB"}


def test_slurm_parameters_make_the_sbatch_file(tmp_path):
    """Needs submitit but no cluster: no executor is built (submitit's SlurmExecutor probes for srun)."""
    submitit = pytest.importorskip("submitit")
    from submitit.slurm.slurm import _make_sbatch_string

    cfg = ExecutorConfig(executor="slurm", partition="gpu", account="lab", time_min=30, cpus_per_task=4,
                         gpus_per_task=1, mem_gb=2, array_parallelism=2, slurm_extra=("qos=high",))
    # every key is one that SlurmExecutor.update_parameters accepts
    assert set(slurm_parameters(cfg)) <= submitit.SlurmExecutor._valid_parameters()
    text = _make_sbatch_string(command="true", folder=tmp_path, map_count=5, **slurm_parameters(cfg))
    for line in ("--partition=gpu", "--account=lab", "--time=30", "--cpus-per-task=4", "--gpus-per-task=1",
                 "--mem=2GB", "--array=0-4%2", "--qos=high"):
        assert f"#SBATCH {line}\n" in text


def test_missing_sbatch_is_one_clear_error(monkeypatch, tmp_path):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch there
    with pytest.raises(ValueError, match="needs SLURM's sbatch on PATH"):
        run_tasks([FunctionTask(name="a", fn=task_threads)], ExecutorConfig(executor="slurm"), tmp_path)


def test_missing_submitit_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit now raises ImportError
    with pytest.raises(ValueError, match=r'pip install -e "\.\[cluster\]"'):
        require_submitit()
    with pytest.raises(ValueError, match="needs submitit"):
        run_tasks([FunctionTask(name="a", fn=task_threads)], ExecutorConfig(executor="slurm"), "/tmp/unused")


# ------------------------------------------------------------------------------------------ running tasks


def test_inline_runs_in_order_and_collects_failures(tmp_path):
    seen = []
    tasks = [FunctionTask(name="ok", fn=task_threads, args=(1, {"SLURM_CPUS_PER_TASK": "5"})),
             FunctionTask(name="bad", fn=run_point, args=("nope", {}, str(tmp_path))),
             FunctionTask(name="ok2", fn=task_threads, args=(2, {}, 8))]
    with pytest.raises(TasksFailed, match="1 of 3 tasks failed; first, bad: ValueError: unknown kind of experiment") as err:
        run_tasks(tasks, ExecutorConfig(), tmp_path / "logs", done=lambda name, ok: seen.append((name, ok)))
    assert err.value.results == {"ok": 5, "ok2": 4}
    assert seen == [("ok", True), ("bad", False), ("ok2", True)]
    with pytest.raises(ValueError, match="unique"):
        run_tasks([tasks[0], tasks[0]], ExecutorConfig(), tmp_path)


def test_local_processes_share_the_cores(tmp_path):
    """Two worker processes: each task sets torch to cores // 2 threads (capped by OMP_NUM_THREADS) and logs
    to its own file; a failing task is reported with its log and does not stop the others."""
    tasks = [FunctionTask(name=f"t{i}", fn=torch.get_num_threads) for i in range(3)]
    tasks.append(FunctionTask(name="bad", fn=run_point, args=("nope", {}, str(tmp_path))))
    with pytest.raises(TasksFailed, match="unknown kind of experiment") as err:
        run_tasks(tasks, ExecutorConfig(executor="local", workers=2), tmp_path / "logs")
    expected = task_threads(parallel=2)
    assert err.value.results == {"t0": expected, "t1": expected, "t2": expected}
    assert "bad.log" in err.value.failures["bad"]
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["bad.log", "t0.log", "t1.log", "t2.log"]


def test_train_task_checkpoint_requeues_a_resumed_run(tmp_path):
    pytest.importorskip("submitit")
    task = TrainTask(name="run", run_dir=str(tmp_path), config=None)
    delayed = task.checkpoint()
    again = delayed.function
    assert isinstance(again, TrainTask) and again.requeued and again.run_dir == str(tmp_path) and not again.resume
