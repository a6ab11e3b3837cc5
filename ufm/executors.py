"""Run independent tasks inline, as parallel local processes, or as one SLURM job array (through submitit).

A *task* is a picklable callable (:class:`Task`): it first sets torch's thread count from its allocation
(:func:`set_task_threads`), then does its work and writes its results into its own folder, so a sweep or a
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

This is the only module that imports ``submitit`` (an optional extra: ``pip install -e ".[cluster]"``), and
only when a SLURM executor is used.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ufm.errors import FieldError
from ufm._config import check_choices
from ufm._config import option as _opt

__all__ = [
    "EXECUTORS",
    "requeue",
    "ExecutorConfig",
    "Task",
    "FunctionTask",
    "TasksFailed",
    "task_threads",
    "set_task_threads",
    "run_tasks",
    "slurm_parameters",
    "parse_slurm_extra",
    "require_submitit",
]

EXECUTORS = ("inline", "local", "slurm")
# the ExecutorConfig fields that apply to the slurm executor only
SLURM_FIELDS = ("partition", "account", "time_min", "cpus_per_task", "gpus_per_task", "mem_gb", "array_parallelism",
                "slurm_extra", "wait")
# sbatch options that have their own ExecutorConfig field (or that submitit sets itself): not in --slurm-extra.
_OWN = {"partition": "partition", "account": "account", "time": "time_min", "cpus-per-task": "cpus_per_task",
        "gpus-per-task": "gpus_per_task", "mem": "mem_gb", "array": "array_parallelism"}
_RESERVED = {**{key: f"has its own option {{{field}}}" for key, field in _OWN.items()},
             "output": "submitit sets (its log files)", "error": "submitit sets (its log files)",
             "open-mode": "submitit sets (log files appended across requeues)", "signal": "submitit sets (the "
             "requeue signal)", "job-name": "submitit sets (it names the job)", "nodes": "submitit sets (one node "
             "per task)", "ntasks-per-node": "submitit sets (one task per array element)",
             "ntasks": "submitit sets (one task per array element)"}


@dataclass(frozen=True)
class ExecutorConfig:
    """Where tasks run.  The SLURM fields apply to ``executor="slurm"`` only, ``workers`` to ``"local"`` only."""

    executor: str = _opt("inline", "inline (this process), local (parallel processes) or slurm (a job array)")
    workers: int = _opt(0, "local: processes at once (0: one per core, at most one per task)")
    partition: str | None = _opt(None, "slurm: partition (default: the cluster's default partition)")
    account: str | None = _opt(None, "slurm: account to charge")
    time_min: int = _opt(60, "slurm: time limit of each task in minutes")
    cpus_per_task: int = _opt(1, "slurm: CPUs of each task (torch uses that many threads)")
    gpus_per_task: int = _opt(0, "slurm: GPUs of each task")
    mem_gb: float = _opt(0.0, "slurm: memory of each task in GB (0: the partition's default)")
    array_parallelism: int = _opt(0, "slurm: most array tasks running at once (0: no limit of ours)")
    slurm_extra: tuple[str, ...] = _opt((), "slurm: any other sbatch option as KEY=VALUE, e.g. qos=high; repeatable")
    wait: bool = _opt(True, "slurm: wait for the jobs (Ctrl-C cancels them); --no-wait submits and returns")

    def __post_init__(self) -> None:
        object.__setattr__(self, "slurm_extra", tuple(self.slurm_extra))
        check_choices(self, {"executor": EXECUTORS})
        defaults = ExecutorConfig.__dataclass_fields__
        if self.executor != "slurm":
            given = [name for name in SLURM_FIELDS if getattr(self, name) != defaults[name].default]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                names = ", ".join(f"{{{name}={getattr(self, name)}}}" if name == "wait" else "{" + name + "}"
                                  for name in given)
                raise FieldError(f"{names} {verb} to {{executor=slurm}} only (the executor is {self.executor}); drop "
                                 f"{'it' if len(given) == 1 else 'them'} or use the slurm executor")
        for name in ("partition", "account"):
            if getattr(self, name) is not None and not getattr(self, name).strip():
                raise FieldError(f"{{{name}}} is empty; give a name or leave it out")
        if self.executor != "local" and self.workers != 0:
            raise FieldError(f"{{workers}} applies to {{executor=local}} only (the executor is {self.executor})")
        for name in ("workers", "gpus_per_task", "array_parallelism"):
            if getattr(self, name) < 0:
                raise FieldError(f"{{{name}}} must be >= 0, got {getattr(self, name)}")
        for name in ("time_min", "cpus_per_task"):
            if getattr(self, name) < 1:
                raise FieldError(f"{{{name}}} must be >= 1, got {getattr(self, name)}")
        if not (self.mem_gb >= 0 and math.isfinite(self.mem_gb)):
            raise FieldError(f"{{mem_gb}} must be a finite number >= 0 (0: the partition's default), got {self.mem_gb}")
        extra = parse_slurm_extra(self.slurm_extra)
        for key in ("mem-per-cpu", "mem-per-gpu"):
            if key in extra and self.mem_gb:
                raise FieldError(f"{{slurm_extra}} {key}={extra[key]} and {{mem_gb}} both set the memory; give one")

    def without_effect(self) -> dict[str, str]:
        """{field: why} for the fields that do nothing with this executor (the CLI refuses them when typed, even at
        their default values, which ``__post_init__`` cannot tell from unset ones)."""
        out = {name: f"with the {self.executor} executor (it applies to the slurm executor only)"
               for name in SLURM_FIELDS if self.executor != "slurm"}
        if self.executor != "local":
            out["workers"] = f"with the {self.executor} executor (it applies to the local executor only)"
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def parse_slurm_extra(items: Sequence[str]) -> dict[str, str]:
    """``["qos=high", "constraint=volta"]`` -> ``{"qos": "high", "constraint": "volta"}`` (submitit's
    ``additional_parameters``, one ``#SBATCH --KEY=VALUE`` line each).  Keys are sbatch's long option names
    (``mem_per_cpu`` is ``mem-per-cpu``); a key that another option or submitit sets is refused, as is one given
    twice, a key that is not a word (``q os``) and an empty value."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip().lstrip("-").replace("_", "-"), value.strip()
        if not sep or not value or not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise FieldError(f"{{slurm_extra}} items are KEY=VALUE (an sbatch long option without its dashes, e.g. "
                             f"qos=high), got {item!r}")
        if key in _RESERVED:
            raise FieldError(f"{{slurm_extra}} sets {key!r}, which {_RESERVED[key]}; drop it")
        if key in out:
            raise FieldError(f"{{slurm_extra}} sets {key!r} twice")
        out[key] = value
    return out


def slurm_parameters(cfg: ExecutorConfig) -> dict[str, Any]:
    """The keyword arguments of ``submitit.SlurmExecutor.update_parameters`` for ``cfg``."""
    params: dict[str, Any] = {"time": cfg.time_min, "cpus_per_task": cfg.cpus_per_task}
    if cfg.partition:
        params["partition"] = cfg.partition
    if cfg.account:
        params["account"] = cfg.account
    if cfg.gpus_per_task:
        params["gpus_per_task"] = cfg.gpus_per_task
    if cfg.mem_gb:
        params["mem"] = f"{int(cfg.mem_gb)}GB" if cfg.mem_gb == int(cfg.mem_gb) else f"{math.ceil(cfg.mem_gb * 1024)}MB"
    if cfg.array_parallelism:
        params["array_parallelism"] = cfg.array_parallelism
    extra = parse_slurm_extra(cfg.slurm_extra)
    if extra:
        params["additional_parameters"] = extra
    return params


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


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def task_threads(parallel: int = 1, environ: dict[str, str] | None = None, cores: int | None = None) -> int:
    """Threads for one task: SLURM's ``SLURM_CPUS_PER_TASK`` inside a SLURM job; elsewhere the usable cores
    divided among ``parallel`` concurrent tasks (at least 1), capped by ``OMP_NUM_THREADS`` when it is set."""
    env = os.environ if environ is None else environ
    slurm = env.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) >= 1:
        return int(slurm)
    n = max(1, (cores or _usable_cores()) // max(1, parallel))
    cap = env.get("OMP_NUM_THREADS", "").strip()
    if cap.isdigit() and int(cap) >= 1:
        n = min(n, int(cap))
    return n


def set_task_threads(parallel: int = 1) -> int:
    """Set torch's intra-op threads (and OMP/MKL/OpenBLAS for child processes) to :func:`task_threads`."""
    import torch

    n = task_threads(parallel)
    torch.set_num_threads(n)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


# ----------------------------------------------------------------------------------------------- tasks


@dataclass
class Task:
    """A unit of work for :func:`run_tasks`: ``name`` labels it (log file names), ``run_dir`` (if any) is its
    own folder, where its logs are linked; ``parallel`` is how many tasks share this machine's cores."""

    name: str
    run_dir: str | None = None
    parallel: int = 1

    def __call__(self) -> Any:
        from ufm.eta import reporting, to_stderr

        set_task_threads(self.parallel)
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


class TasksFailed(ValueError):
    """Some tasks failed; ``failures`` maps task name -> error text, ``results`` holds the others' results."""

    def __init__(self, failures: dict[str, str], results: dict[str, Any]):
        self.failures, self.results = failures, results
        name, text = next(iter(failures.items()))
        last = text.strip().splitlines()[-1] if text.strip() else "no message"
        super().__init__(f"{len(failures)} of {len(failures) + len(results)} tasks failed; first, {name}: {last}")


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
            failures[task.name] = f"{type(err).__name__}: {err}"
        done(task.name, task.name in results)
    return results, failures


def _run_local(tasks: list[Task], workers: int, log_folder: Path,
               done: Callable[[str, bool], None]) -> tuple[dict, dict]:
    results, failures = {}, {}
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {}
        for task in tasks:
            log = Path(task.run_dir) / "job.log" if task.run_dir else log_folder / f"{task.name}.log"
            futures[pool.submit(_run_logged, replace(task, parallel=workers), str(log))] = (task.name, log)
        try:
            for future in concurrent.futures.as_completed(futures):
                name, log = futures[future]
                try:
                    results[name] = future.result()
                except Exception as err:  # noqa: BLE001 - reported per task, with its log
                    failures[name] = f"{type(err).__name__}: {err} (log: {log})"
                done(name, name in results)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results, failures


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
    tasks = [replace(t, parallel=1) for t in tasks]  # SLURM_CPUS_PER_TASK decides the threads
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
    missing: dict[str, int] = {}
    try:
        while pending:
            time.sleep(poll_s)
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
                    failures[n] = f"{type(err).__name__}: {err} (log: {job.paths.stdout})"
                done(n, n in results)
    except KeyboardInterrupt:
        for job in pending.values():
            with contextlib.suppress(Exception):
                job.cancel(check=False)
        raise
    return results, failures


def _at_once(cfg: ExecutorConfig, tasks: int, workers: int) -> int:
    """How many tasks run at once: 1 inline, ``workers`` local, the array parallelism (or all) on SLURM."""
    if cfg.executor == "slurm":
        return min(tasks, cfg.array_parallelism or tasks)
    return workers if cfg.executor == "local" else 1


def _timed(done: Callable[[str, bool], None], total: int, name: str, parallel: int) -> Any:
    """``done`` that also steps a timer of the tasks (:mod:`ufm.eta`): what they will take, announced once the first
    have ended (as many as run at once); the timer is its ``timer``."""
    from ufm.eta import Timer

    timer = Timer(total, "tasks", name.removeprefix("ufm-"), min_steps=parallel, parallel=parallel)

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
) -> dict[str, Any]:
    """Run ``tasks`` with ``cfg``; returns {task name: result}.  ``done(name, ok)`` after each task.

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
    workers = 1 if cfg.executor == "inline" else min(len(tasks), cfg.workers or _usable_cores())
    done = _timed(done, len(tasks), name, _at_once(cfg, len(tasks), workers))
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
