"""Run independent tasks inline, as parallel local processes, or as one SLURM job array (through submitit).

A *task* is a picklable callable (:class:`Task`): it first sets torch's thread count (:mod:`ufm.threads`: inline,
chosen for its work and the machine's load; in a worker, its allocation), then does its work and writes its results into its own folder, so a sweep or a
preset can be killed and re-run.  :func:`run_tasks` runs a list of them with an :class:`ExecutorConfig`:

- ``inline``: one after the other in this process;
- ``local``: ``workers`` processes at once (``concurrent.futures`` with fresh "spawn" interpreters), each
  with ``cores // workers`` threads; logs in ``<log folder>/<task>.log`` (or ``<run folder>/job.log``);
- ``slurm``: one job array (``submitit.SlurmExecutor``) with the partition, time limit, CPUs/GPUs per task,
  memory, array parallelism and any extra ``#SBATCH`` option; submitit's logs go to the log folder, and a
  task with a run folder links its own log files there.

A task may define ``checkpoint()`` (submitit's requeue hook): submitit calls it when SLURM signals a preemption
or the time limit, and requeues what it returns (the preemptible training task, :class:`ufm.deep.tasks.TrainTask`,
requeues the same run resumed).  This module knows no kind of task.

Ctrl-C (:mod:`ufm.interrupt`) lands within seconds under every executor: the local workers ignore SIGINT and are
stopped by this process (the tasks that had finished stay finished), and SLURM jobs waited for are cancelled.

:class:`ExecutorConfig` lives in :mod:`ufm.executor_config`.  This is the only module that imports ``submitit`` (an optional extra: ``pip install -e ".[cluster]"``), and
only when a SLURM executor is used.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import multiprocessing
import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ufm import interrupt, threads
from ufm.errors import FieldError, literal
from ufm.executor_config import EXECUTORS, ExecutorConfig, parse_slurm_extra, slurm_parameters
from ufm.threads import task_threads

__all__ = [
    "EXECUTORS",
    "requeue",
    "ExecutorConfig",
    "Task",
    "FunctionTask",
    "TasksFailed",
    "Failure",
    "task_threads",
    "set_task_threads",
    "run_tasks",
    "slurm_parameters",
    "parse_slurm_extra",
    "require_submitit",
]


def require_submitit():
    """``import submitit``, or a ValueError that says how to install it."""
    try:
        import submitit
    except ImportError:
        raise ValueError('the slurm executor needs submitit: pip install -e ".[cluster]" (or pip install submitit)'
                         ) from None
    return submitit


def requeue(task: Any) -> Any:
    """What a task's ``checkpoint()`` returns to have SLURM run ``task`` next (submitit's DelayedSubmission), so
    that only this module speaks to submitit."""
    return require_submitit().helpers.DelayedSubmission(task)


# --------------------------------------------------------------------------------------------- threads


def set_task_threads(parallel: int = 1) -> int:
    """Set torch's intra-op threads (and OMP/MKL/OpenBLAS for child processes) to a worker's share
    (:func:`ufm.threads.task_threads`, or an explicit ``--threads``)."""
    return threads.configure(parallel=parallel, inline=False).threads


# ----------------------------------------------------------------------------------------------- tasks


@dataclass
class Task:
    """A unit of work for :func:`run_tasks`: ``name`` labels it (log file names), ``run_dir`` (if any) is its
    own folder, where its logs are linked; ``parallel`` is how many tasks share this machine's cores, ``inline``
    whether it runs in the caller's process (else in a local worker or a SLURM job), ``work`` its multiply-adds per
    step (None: unknown): they decide its threads (:func:`ufm.threads.for_task`)."""

    name: str
    run_dir: str | None = None
    parallel: int = 1
    inline: bool = True
    work: float | None = None

    def __call__(self) -> Any:
        from ufm.eta import reporting, to_stderr

        threads.configure(self.work, self.parallel, self.inline)
        self._link_slurm_logs()
        with reporting(to_stderr, default=True):  # time estimates in the task's log (inline: the caller's own)
            return self.run()

    def run(self) -> Any:
        raise NotImplementedError

    def _link_slurm_logs(self) -> None:
        """Inside a submitit SLURM job: ``run_dir/slurm-<job>.out|err`` -> submitit's log files."""
        if self.run_dir is None or os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
            return
        import submitit

        env = submitit.JobEnvironment()
        folder = Path(self.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for suffix, target in (("out", env.paths.stdout), ("err", env.paths.stderr)):
            link = folder / f"slurm-{env.job_id}.{suffix}"
            if not link.is_symlink():
                with contextlib.suppress(OSError):
                    link.symlink_to(Path(target).resolve())


@dataclass
class FunctionTask(Task):
    """``fn(*args)`` (``fn`` a module-level function, so it pickles by name)."""

    fn: Callable[..., Any] | None = None
    args: tuple = ()

    def run(self) -> Any:
        return self.fn(*self.args)


class Failure(str):
    """A task's error text (what ``TasksFailed.failures`` holds) that also keeps the error itself, where it came
    back (``error``; None for a SLURM job whose result could not be read)."""

    error: BaseException | None = None

    @classmethod
    def of(cls, err: BaseException, suffix: str = "") -> "Failure":
        out = cls(f"{type(err).__name__}: {err}{suffix}")
        out.error = err
        return out


class TasksFailed(FieldError):
    """Some tasks failed; ``failures`` maps task name -> error text, ``results`` holds the others' results.  The
    message carries the first failure's own fields (a :class:`ufm.errors.FieldError`'s placeholders, so the command
    line names its options); ``exit_code`` is 1 when every failure is an answer that could not be vouched for
    (:class:`ufm.errors.UncertifiedError`), else 2."""

    def __init__(self, failures: dict[str, str], results: dict[str, Any]):
        self.failures, self.results = failures, results
        name, text = next(iter(failures.items()))
        first = getattr(text, "error", None)
        if isinstance(first, FieldError):
            detail = first.template
        else:
            detail = literal(text.strip().splitlines()[-1] if text.strip() else "no message")
        errors = [getattr(t, "error", None) for t in failures.values()]
        self.exit_code = 1 if all(getattr(e, "exit_code", 2) == 1 for e in errors) else 2
        super().__init__(f"{len(failures)} of {len(failures) + len(results)} tasks failed; first, {literal(name)}: "
                         f"{detail}")


# ----------------------------------------------------------------------------------------------- runners


def _run_logged(task: Task, log_path: str) -> Any:
    """In a local worker process: run ``task`` with stdout and stderr appended to ``log_path``."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        return task()


def _run_inline(tasks: list[Task], done: Callable[[str, bool], None]) -> tuple[dict, dict]:
    results, failures = {}, {}
    for task in tasks:
        try:
            results[task.name] = task()
        except (ValueError, FileNotFoundError) as err:  # a user error in one task: the others still run
            failures[task.name] = Failure.of(err)
        done(task.name, task.name in results)
    return results, failures


STOP_WORKERS_S = 3.0  # a worker asked to stop (SIGTERM: its task ends at its next safe point) is killed after this


def _run_local(tasks: list[Task], workers: int, log_folder: Path,
               done: Callable[[str, bool], None]) -> tuple[dict, dict]:
    """The tasks in ``workers`` spawned processes.  The workers ignore SIGINT (:func:`ufm.interrupt.ignoring`): on
    Ctrl-C this process records the tasks that had finished, then stops the workers (:func:`_stop_workers`)."""
    results: dict = {}
    failures: dict = {}
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=interrupt.as_worker)
    futures: dict = {}
    with interrupt.safe_points():  # also while the workers are stopped: a second Ctrl-C cannot cut that short
        try:
            with interrupt.ignoring():  # submit starts the workers: they ignore SIGINT from birth
                for task in tasks:
                    log = Path(task.run_dir) / "job.log" if task.run_dir else log_folder / f"{task.name}.log"
                    futures[pool.submit(_run_logged, replace(task, parallel=workers, inline=False), str(log))] = (task.name, log)
            pending = set(futures)
            while pending:
                finished, pending = concurrent.futures.wait(pending, timeout=0.1,
                                                            return_when=concurrent.futures.FIRST_COMPLETED)
                if _collect(finished, futures, results, failures, done):
                    raise interrupt.Interrupted()  # a worker was stopped from outside (SIGTERM)
                interrupt.check()
        except KeyboardInterrupt as err:
            _collect([f for f in futures if f.done()], futures, results, failures, done)  # those that had finished
            _stop_workers(pool, list(futures))
            raise interrupt.as_interrupted(err).note(also="its worker processes were stopped") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return results, failures


def _collect(finished: Any, futures: dict, results: dict, failures: dict, done: Callable[[str, bool], None]) -> bool:
    """Record the results (or failures, with their log) of the ``finished`` futures not recorded yet and call
    ``done`` for each; True if one of them was interrupted."""
    interrupted = False
    for future in finished:
        name, log = futures[future]
        if future.cancelled() or name in results or name in failures:
            continue
        err = future.exception()
        if isinstance(err, KeyboardInterrupt):  # its worker was asked to stop: neither finished nor failed
            interrupted = True
            continue
        if err is None:
            results[name] = future.result()
        else:
            failures[name] = Failure.of(err, f" (log: {log})")
        done(name, name in results)
    return interrupted


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor, futures: list) -> None:
    """Cancel the tasks that have not started, ask every worker to stop (SIGTERM: its task ends at its next safe
    point), wait for the started tasks to end (at most :data:`STOP_WORKERS_S`), then end the worker processes (idle
    by then, or stuck in a task without safe points)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # concurrent.futures has no public list
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
    concurrent.futures.wait(futures, timeout=STOP_WORKERS_S)
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.kill()
    for process in processes:
        process.join(1.0)


def _squeue_ids(job_ids: Sequence[str]) -> set[str] | None:
    """IDs (``A_i`` for array tasks) of these jobs that SLURM still holds (pending, running, requeued)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(arrays)], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None if "Invalid job id" not in out.stderr else set()
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def submit_slurm(tasks: list[Task], cfg: ExecutorConfig, log_folder: Path, name: str) -> list:
    """Submit ``tasks`` as one job array; returns submitit's jobs (``job.job_id``, ``job.result()``)."""
    submitit = require_submitit()
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    if shutil.which("sbatch") is None:
        raise ValueError("the slurm executor needs SLURM's sbatch on PATH: run on the cluster's login node (or start "
                         "a one-node cluster here with scripts/local-slurm.sh)")
    executor = submitit.SlurmExecutor(folder=log_folder)
    executor.update_parameters(job_name=name, **slurm_parameters(cfg))
    tasks = [replace(t, parallel=1, inline=False) for t in tasks]  # SLURM_CPUS_PER_TASK decides the threads
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's error; it is in the message
            with executor.batch():
                jobs = [executor.submit(task) for task in tasks]
    except (FailedJobError, FailedSubmissionError) as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        raise ValueError(f"sbatch refused the job array: {lines[-1] if lines else 'no message'} (check the "
                         "partition, account, time limit, resources and --slurm-extra options)") from None
    return jobs


def wait_slurm(jobs: list, names: list[str], done: Callable[[str, bool], None],
               poll_s: float = 1.0) -> tuple[dict, dict]:
    """Wait for submitit jobs; a job that SLURM no longer lists and that left no result counts as failed."""
    results, failures = {}, {}
    pending = dict(zip(names, jobs))
    with interrupt.safe_points():  # also while the jobs are cancelled
        try:
            _wait_slurm(pending, results, failures, done, poll_s)
        except KeyboardInterrupt as err:
            for job in pending.values():
                with contextlib.suppress(Exception):
                    job.cancel(check=False)
            raise interrupt.as_interrupted(err).note(also="its SLURM jobs were cancelled") from None
    return results, failures


def _wait_slurm(pending: dict, results: dict, failures: dict, done: Callable[[str, bool], None],
                poll_s: float) -> None:
    """:func:`wait_slurm`'s loop: ``pending`` {name: job} empties as jobs end (with :func:`ufm.interrupt.check`)."""
    missing: dict[str, int] = {}
    while pending:
        interrupt.sleep(poll_s)
        finished = [n for n, job in pending.items() if job.paths.result_pickle.exists()]
        if len(finished) < len(pending):
            alive = _squeue_ids([job.job_id for job in pending.values()])
            for n, job in pending.items():
                if n in finished or alive is None:
                    continue
                missing[n] = 0 if job.job_id in alive else missing.get(n, 0) + 1
                if missing[n] >= 5 and not job.paths.result_pickle.exists():
                    finished.append(n)
        for n in finished:
            job = pending.pop(n)
            try:
                if not job.paths.result_pickle.exists():
                    raise RuntimeError(f"SLURM job {job.job_id} ended without a result (cancelled or killed)")
                results[n] = job.result()
            except Exception as err:  # noqa: BLE001 - reported per task, with its log
                failures[n] = Failure.of(err, f" (log: {job.paths.stdout})")
            done(n, n in results)


def _at_once(cfg: ExecutorConfig, tasks: int, workers: int) -> int:
    """How many tasks run at once: 1 inline, ``workers`` local, the array parallelism (or all) on SLURM."""
    if cfg.executor == "slurm":
        return min(tasks, cfg.array_parallelism or tasks)
    return workers if cfg.executor == "local" else 1


def _timed(done: Callable[[str, bool], None], total: int, name: str, parallel: int, unit: str = "tasks") -> Any:
    """``done`` that also steps a timer of the tasks (:mod:`ufm.eta`): what they will take, announced once the first
    have ended (as many as run at once); the timer is its ``timer``."""
    from ufm.eta import Timer

    timer = Timer(total, unit, name.removeprefix("ufm-"), min_steps=parallel, parallel=parallel)

    def step(task: str, ok: bool) -> None:
        timer.step()
        done(task, ok)

    step.timer = timer  # type: ignore[attr-defined]
    return step


def run_tasks(
    tasks: Sequence[Task],
    cfg: ExecutorConfig,
    log_folder: str | Path,
    name: str = "ufm",
    done: Callable[[str, bool], None] | None = None,
    unit: str = "tasks",
) -> dict[str, Any]:
    """Run ``tasks`` with ``cfg``; returns {task name: result}.  ``done(name, ok)`` after each task; ``unit``: what
    the tasks are called in the time estimate (points, cells, runs).

    With ``cfg.wait`` False (slurm) the jobs are only submitted: returns {task name: SLURM job id}.
    Raises :class:`TasksFailed` (a ValueError) after all have run if any failed; the others' results are on it.
    """
    tasks = list(tasks)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError("task names must be unique")
    log_folder = Path(log_folder).resolve()
    done = done or (lambda name, ok: None)
    if not tasks:
        return {}
    workers = 1 if cfg.executor == "inline" else min(len(tasks), cfg.workers or threads.usable_cores())
    done = _timed(done, len(tasks), name, _at_once(cfg, len(tasks), workers), unit)
    if cfg.executor == "inline":
        from ufm.eta import outer

        with outer(done.timer):  # each task's own loops report only until the tasks' timer has
            results, failures = _run_inline(tasks, done)
    elif cfg.executor == "local":
        results, failures = _run_local(tasks, workers, log_folder, done)
    else:
        jobs = submit_slurm(tasks, cfg, log_folder, name)
        if not cfg.wait:
            return {n: job.job_id for n, job in zip(names, jobs)}
        results, failures = wait_slurm(jobs, names, done)
    if failures:
        raise TasksFailed(failures, results)
    return {n: results[n] for n in names}
