"""How many CPU threads torch uses for a piece of work: the one rule of every command, task and benchmark.

:func:`choose`, in order: an explicit request (``--threads N``, or ``$UFM_THREADS``, which carries it to worker
processes and SLURM jobs); else ``OMP_NUM_THREADS`` when set; else ``SLURM_CPUS_PER_TASK`` inside a SLURM job;
else the usable cores (``os.sched_getaffinity``) less those other processes keep busy now (:func:`busy_elsewhere`),
capped by the problem size (:func:`size_cap`: a step of a few million multiply-adds, such as the default
``ufm simulate`` or the loss on a batch of a few hundred, runs no faster on a second thread, and beside a busy
process a second thread waits for a core at every parallel region: 3x-100x slower, see docs/performance.md).
The automatic choices are never below 1 nor above the usable cores.  :func:`choose` is pure: the environment,
the cores and the load are its arguments.

:func:`task_threads` is the executors' rule for a task sharing the machine with ``parallel`` others (SLURM's
allocation, else an equal share of the cores capped by ``OMP_NUM_THREADS``); :func:`for_task` picks between the
two; :func:`configure` chooses with this process's live inputs and :func:`apply` sets torch's thread count.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from ufm.errors import FieldError

__all__ = ["ENV", "WORK_PER_THREAD", "Choice", "usable_cores", "env_count", "check_request", "size_cap",
           "free_cores", "choose", "task_threads", "per_rank", "apply_choice", "LAUNCHED", "for_task", "busy_elsewhere", "apply", "configure",
           "last", "requested", "loss_work", "solver_work"]

ENV = "UFM_THREADS"  # an explicit thread count (what --threads sets for this process and its workers)
# multiply-adds per step that keep one more thread busy enough to gain from it (measured: docs/performance.md)
WORK_PER_THREAD = 1e7


@dataclass(frozen=True)
class Choice:
    """A thread count and what decided it: ``--threads``, ``OMP_NUM_THREADS``, ``SLURM_CPUS_PER_TASK``,
    ``executor share``, ``free cores`` or ``problem size``."""

    threads: int
    source: str


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; elsewhere than Linux, the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def env_count(environ: Mapping[str, str], name: str) -> int | None:
    """The positive integer in ``environ[name]``, or None when unset, empty or not a positive integer."""
    text = environ.get(name, "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else None


def check_request(threads: int | None) -> int | None:
    """An explicit thread count as given (None: not given, 0: chosen for the work); below 0 refused."""
    if threads is not None and threads < 0:
        raise FieldError(f"{{threads}} must be >= 0 (0: chosen for the work and the machine), got {threads}")
    return threads


def size_cap(work: float | None, cores: int) -> int:
    """Threads worth running on a step of ``work`` multiply-adds: one per :data:`WORK_PER_THREAD` (at least 1, at
    most ``cores``); None (size unknown, e.g. training a network) does not cap."""
    if work is None:
        return cores
    return max(1, min(cores, math.ceil(work / WORK_PER_THREAD)))


def free_cores(cores: int, busy: float, machine: int | None = None) -> int:
    """``cores`` less the ``busy`` ones (rounded), at least 1.  ``busy`` counts the whole machine's (``machine``
    cores, default ``cores``): on a process pinned to part of it, the busy cores are shared out in proportion
    (other jobs may well run on cores this process cannot use)."""
    share = cores / machine if machine and machine > cores else 1.0
    return max(1, min(cores, cores - round(max(0.0, busy) * share)))


def choose(explicit: int | None = None, environ: Mapping[str, str] | None = None, cores: int | None = None,
           busy: float = 0.0, work: float | None = None) -> Choice:
    """The thread count for ``work`` multiply-adds per step (None: unknown, large) on ``cores`` usable cores of which
    ``busy`` run other processes now; ``explicit`` (0 or None: not given) and ``environ`` (default ``os.environ``)
    as described in the module docstring."""
    env = os.environ if environ is None else environ
    cores = cores or usable_cores()
    if check_request(explicit):
        return Choice(explicit, "--threads")
    for name, source in ((ENV, "--threads"), ("OMP_NUM_THREADS", "OMP_NUM_THREADS")):
        given = env_count(env, name)
        if given is not None:
            return Choice(given if source == "--threads" else min(given, cores), source)
    slurm = env_count(env, "SLURM_CPUS_PER_TASK")
    if slurm is not None:
        return Choice(min(slurm, cores), "SLURM_CPUS_PER_TASK")
    free, cap = free_cores(cores, busy, os.cpu_count() if environ is None else None), size_cap(work, cores)
    return Choice(free, "free cores") if free <= cap else Choice(cap, "problem size")


def task_threads(parallel: int = 1, environ: Mapping[str, str] | None = None, cores: int | None = None) -> int:
    """Threads for one task: SLURM's ``SLURM_CPUS_PER_TASK`` inside a SLURM job; elsewhere the usable cores
    divided among ``parallel`` concurrent tasks (at least 1), capped by ``OMP_NUM_THREADS`` when it is set."""
    env = os.environ if environ is None else environ
    slurm = env_count(env, "SLURM_CPUS_PER_TASK")
    if slurm is not None:
        return slurm
    n = max(1, (cores or usable_cores()) // max(1, parallel))
    cap = env_count(env, "OMP_NUM_THREADS")
    return n if cap is None else min(n, cap)


LAUNCHED = "UFM_LAUNCHED"  # set by ufm's own launcher (ufm.deep.distributed.launch) for its ranks


def per_rank(world: int, environ: Mapping[str, str] | None = None, cores: int | None = None) -> Choice:
    """Threads of one of ``world`` data-parallel ranks on this node: an explicit request; else, for ranks of ufm's
    own launcher (``$UFM_LAUNCHED``; it leaves the environment as the user set it), ``OMP_NUM_THREADS`` when set;
    else an equal share of the cores (under torchrun, ``OMP_NUM_THREADS=1`` may be the launcher's default rather
    than the user's choice, so it is not read)."""
    env = os.environ if environ is None else environ
    cores = cores or usable_cores()
    explicit = env_count(env, ENV)
    if explicit is not None:
        return Choice(explicit, "--threads")
    omp = env_count(env, "OMP_NUM_THREADS")
    if env.get(LAUNCHED) and omp is not None:
        return Choice(min(omp, cores), "OMP_NUM_THREADS")
    return Choice(max(1, cores // max(1, world)), "rank share")


def for_task(parallel: int = 1, work: float | None = None, inline: bool = True,
             environ: Mapping[str, str] | None = None, cores: int | None = None, busy: float | None = None) -> Choice:
    """A task's threads: an explicit request; else, for a task of a local worker process or a SLURM job (not
    ``inline``), the executors' share (:func:`task_threads` among ``parallel``); else :func:`choose` for its
    ``work`` with the load now (``busy``, default :func:`busy_elsewhere`)."""
    env = os.environ if environ is None else environ
    explicit = env_count(env, ENV)
    if explicit is not None:
        return Choice(explicit, "--threads")
    if not inline:
        return Choice(task_threads(parallel, env, cores), "executor share")
    return choose(environ=env, cores=cores, busy=busy_elsewhere() if busy is None else busy, work=work)


def _running_here() -> int:
    """Threads of this process that are running or runnable now (state R in /proc/self/task/*/stat)."""
    count = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        with contextlib.suppress(OSError, IndexError):
            count += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
    return count


def busy_elsewhere(samples: int = 3, pause_s: float = 0.01) -> float:
    """How many cores other processes keep busy now: the runnable threads of the machine (/proc/loadavg) less this
    process's own, the least of ``samples`` readings ``pause_s`` apart (a passing process is not a busy one);
    where /proc is missing, the 1-minute load average less one."""
    readings = []
    try:
        for i in range(samples):
            if i:
                time.sleep(pause_s)
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
            readings.append(max(0, running - max(1, _running_here())))
    except (OSError, ValueError, IndexError):
        try:
            return max(0.0, os.getloadavg()[0] - 1)
        except OSError:
            return 0.0
    return float(min(readings))


_LAST: dict[str, Choice] = {}


def apply(threads: int) -> int:
    """Set torch's intra-op thread count; returns it."""
    import torch

    torch.set_num_threads(threads)
    return threads


def configure(work: float | None = None, parallel: int = 1, inline: bool = True) -> Choice:
    """Choose this process's threads (:func:`for_task` with the live environment, cores and load), apply them and
    remember the choice (:func:`last`, recorded in the runs' provenance).  A worker's share (not ``inline``) is also
    exported to ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` for its child processes."""
    choice = for_task(parallel, work, inline)
    apply(choice.threads)
    if not inline:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(choice.threads)
    _LAST["choice"] = choice
    return choice


def last() -> Choice | None:
    """The last choice :func:`configure` or :func:`apply_choice` applied in this process (None before any)."""
    return _LAST.get("choice")


def apply_choice(choice: Choice) -> Choice:
    """Apply ``choice`` and remember it (:func:`last`)."""
    apply(choice.threads)
    _LAST["choice"] = choice
    return choice


@contextlib.contextmanager
def requested(threads: int | None) -> Iterator[None]:
    """Within the block, ``threads`` is this process's explicit request (``$UFM_THREADS``, inherited by its worker
    processes and SLURM jobs); None leaves the environment as it is, 0 clears a request (chosen for the work)."""
    check_request(threads)
    before = os.environ.get(ENV)
    if threads is not None:
        os.environ.pop(ENV, None)
        if threads > 0:
            os.environ[ENV] = str(threads)
    try:
        yield
    finally:
        os.environ.pop(ENV, None)
        if before is not None:
            os.environ[ENV] = before


def loss_work(batch: int, prototypes: int, d: int, runs: int = 1) -> float:
    """Multiply-adds of one step (forward and backward) of a contrastive loss on ``batch`` embeddings of dimension
    ``d`` against ``batch + prototypes`` candidates, for ``runs`` stacked runs."""
    return 3.0 * runs * batch * (batch + prototypes) * d


def solver_work(k: int, samples: int | None = None) -> float:
    """Multiply-adds of one step of the solver's torch parts: the collapsed problem's ``k`` class means of rank about
    ``2k`` (``samples`` None), or the full problem's ``samples`` embeddings against each other."""
    return 6.0 * k**3 if samples is None else 6.0 * samples**2 * k
