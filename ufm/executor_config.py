"""What an executor is: :class:`ExecutorConfig` (inline, local processes or a SLURM job array, with the SLURM
resources) and its sbatch parameters; :mod:`ufm.executors` runs tasks with it."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ufm.errors import FieldError, literal
from ufm._config import check_choices
from ufm._config import option as _opt

__all__ = ["EXECUTORS", "SLURM_FIELDS", "ExecutorConfig", "parse_slurm_extra", "slurm_parameters"]

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
                             f"qos=high), got {literal(repr(item))}")
        if key in _RESERVED:
            raise FieldError(f"{{slurm_extra}} sets {literal(repr(key))}, which {_RESERVED[key]}; drop it")
        if key in out:
            raise FieldError(f"{{slurm_extra}} sets {literal(repr(key))} twice")
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
