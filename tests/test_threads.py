"""ufm.threads: the one rule for torch's CPU thread count (explicit > OMP > SLURM > free cores capped by size)."""

import os

import pytest
import torch

from ufm import threads
from ufm.threads import Choice, choose, for_task, per_rank, size_cap, WORK_PER_THREAD

BIG = 100 * WORK_PER_THREAD  # a step large enough for any number of threads here


def test_an_explicit_count_wins_over_everything():
    env = {"OMP_NUM_THREADS": "3", "SLURM_CPUS_PER_TASK": "5"}
    assert choose(4, env, cores=8, busy=7, work=1.0) == Choice(4, "--threads")
    assert choose(None, {**env, threads.ENV: "6"}, cores=8) == Choice(6, "--threads")  # the request's variable
    assert choose(0, {threads.ENV: "6"}, cores=8) == Choice(6, "--threads")  # 0: not given


def test_omp_then_slurm_then_the_free_cores():
    assert choose(environ={"OMP_NUM_THREADS": "3", "SLURM_CPUS_PER_TASK": "5"}, cores=8) == Choice(3, "OMP_NUM_THREADS")
    assert choose(environ={"SLURM_CPUS_PER_TASK": "5"}, cores=8, busy=7) == Choice(5, "SLURM_CPUS_PER_TASK")
    assert choose(environ={"OMP_NUM_THREADS": "junk", "SLURM_CPUS_PER_TASK": ""}, cores=8, work=BIG) == Choice(
        8, "free cores")


def test_the_cores_other_processes_use_are_left_to_them():
    assert choose(environ={}, cores=2, busy=1, work=BIG) == Choice(1, "free cores")
    assert choose(environ={}, cores=8, busy=2.4, work=BIG) == Choice(6, "free cores")  # rounded
    assert choose(environ={}, cores=8, busy=2.6, work=BIG) == Choice(5, "free cores")


def test_small_problems_get_one_thread_large_ones_more():
    assert choose(environ={}, cores=8, busy=0, work=1e5) == Choice(1, "problem size")
    assert choose(environ={}, cores=8, busy=0, work=2.5 * WORK_PER_THREAD) == Choice(3, "problem size")
    assert choose(environ={}, cores=8, busy=0, work=None) == Choice(8, "free cores")  # unknown: no cap
    assert size_cap(0.0, 8) == 1 and size_cap(BIG, 8) == 8 and size_cap(None, 3) == 3


@pytest.mark.parametrize("busy", [0, 1, 2, 7.6, 100])
@pytest.mark.parametrize("work", [None, 0.0, 1e6, BIG])
@pytest.mark.parametrize("env", [{}, {"OMP_NUM_THREADS": "64"}, {"SLURM_CPUS_PER_TASK": "64"}])
def test_an_automatic_choice_is_never_below_one_nor_above_the_usable_cores(busy, work, env):
    assert 1 <= choose(environ=env, cores=4, busy=busy, work=work).threads <= 4


def test_a_negative_count_is_refused_naming_the_option():
    with pytest.raises(ValueError, match=r"threads must be >= 0"):
        choose(-1, {}, cores=2)


def test_a_task_in_a_worker_keeps_the_executors_share():
    """Local workers and SLURM jobs: the executors' rule (SLURM's allocation, cores // parallel capped by OMP)."""
    assert for_task(2, inline=False, environ={}, cores=8, busy=7) == Choice(4, "executor share")
    assert for_task(1, inline=False, environ={"SLURM_CPUS_PER_TASK": "3", "OMP_NUM_THREADS": "1"}, cores=8).threads == 3
    assert for_task(2, inline=False, environ={threads.ENV: "5"}, cores=8) == Choice(5, "--threads")
    assert for_task(1, 1e5, inline=True, environ={}, cores=8, busy=0) == Choice(1, "problem size")
    assert per_rank(2, {}, cores=16) == Choice(8, "rank share")
    assert per_rank(2, {"OMP_NUM_THREADS": "1"}, cores=16) == Choice(8, "rank share")  # torchrun's default
    # ranks of ufm's own launcher keep the user's OMP_NUM_THREADS (the launcher does not set it)
    assert per_rank(2, {"OMP_NUM_THREADS": "1", threads.LAUNCHED: "1"}, cores=16) == Choice(1, "OMP_NUM_THREADS")
    assert per_rank(4, {threads.ENV: "3"}, cores=16) == Choice(3, "--threads")


def test_busy_cores_of_the_whole_machine_are_shared_out_over_a_pinned_process():
    from ufm.threads import free_cores

    assert free_cores(8, 40, machine=64) == 3  # 40 busy of 64: about 5 of this process's 8
    assert free_cores(8, 4, machine=8) == 4 and free_cores(2, 5) == 1


def test_the_load_reading_counts_a_busy_process(tmp_path):
    import subprocess
    import sys

    quiet = threads.busy_elsewhere()
    assert quiet >= 0
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        assert threads.busy_elsewhere(samples=5) >= 1  # the spinning process runs (or waits to run) all the time
    finally:
        busy.kill()
        busy.wait()


def test_configure_applies_and_remembers_the_choice(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv(threads.ENV, "1")
    try:
        assert threads.configure(BIG) == Choice(1, "--threads")
        assert torch.get_num_threads() == 1 and threads.last() == Choice(1, "--threads")
        from ufm.provenance import thread_record

        assert thread_record() == {"threads": 1, "threads_source": "--threads"}
    finally:
        torch.set_num_threads(before)


def test_a_request_holds_within_its_block_only(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    with threads.requested(3):
        assert os.environ[threads.ENV] == "3"
        with threads.requested(0):  # 0: chosen again
            assert threads.ENV not in os.environ
    assert threads.ENV not in os.environ
    with pytest.raises(ValueError):
        with threads.requested(-2):
            pass


def test_the_default_simulation_is_a_small_problem():
    from ufm.kinds.simulate import work
    from ufm.simulate import SimConfig

    assert size_cap(work(SimConfig()), 16) == 1
    assert size_cap(work(SimConfig(batching="full", n_major=2000, d=256)), 16) > 1


def test_an_inline_task_gets_threads_for_its_work_and_a_worker_the_request(tmp_path, monkeypatch):
    """The engine's inline tasks choose for their kind's work (a small one: one thread); an explicit request
    reaches a local worker process (it inherits $UFM_THREADS)."""
    from ufm.executors import ExecutorConfig, FunctionTask, run_tasks

    for var in (threads.ENV, "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(var, raising=False)
    before = torch.get_num_threads()
    try:
        small = FunctionTask(name="small", fn=torch.get_num_threads, work=1e3)
        assert run_tasks([small], ExecutorConfig(), tmp_path) == {"small": 1}
        assert threads.last() == Choice(1, "free cores") or threads.last() == Choice(1, "problem size")
        with threads.requested(1):
            task = FunctionTask(name="worker", fn=torch.get_num_threads, work=BIG)
            assert run_tasks([task], ExecutorConfig(executor="local", workers=1), tmp_path / "logs") == {"worker": 1}
    finally:
        torch.set_num_threads(before)
