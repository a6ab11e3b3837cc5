"""The preemptible training task: one ``ufm train`` run as an executor task (:mod:`ufm.executors` runs it inline,
as a local process or in a SLURM job array).  submitit calls its ``checkpoint()`` when SLURM preempts the job or
its time limit nears; the same run is then requeued and continues from its run folder's last checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ufm.deep.plan import start_over
from ufm.executors import ExecutorConfig, Task, requeue, run_tasks

__all__ = ["TrainTask", "run_training"]


@dataclass
class TrainTask(Task):
    """One training run, :func:`ufm.deep.train.train` ``(config, run_dir, resume)``; submitit's checkpointing
    protocol (``checkpoint()``, as in ``submitit.helpers.Checkpointable``) requeues it as a resumed run."""

    config: Any = None
    resume: bool = False
    requeued: bool = False

    def run(self) -> dict:
        from ufm.deep.train import train

        # A requeued run resumes from its checkpoint; if it was preempted before writing one, it starts again
        # (the folder then holds only what this same run wrote before its first checkpoint).
        run_dir = Path(self.run_dir)
        resume = self.resume or (self.requeued and (run_dir / "checkpoint.pt").is_file())
        if self.requeued and not resume and run_dir.is_dir():
            start_over(run_dir)
        return {**train(self.config, self.run_dir, resume=resume), "run_folder": str(self.run_dir)}

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Called by submitit on the preemption / time-limit signal: the same run, resumed, is requeued."""
        return requeue(replace(self, requeued=True))


def run_training(runs: dict[str, tuple[Any, Path, bool]], cfg: ExecutorConfig, log_folder: str | Path,
                 done: Callable[[str, bool], None] | None = None) -> dict[str, dict]:
    """Training runs {name: (TrainConfig, run folder, resume)} as :class:`TrainTask` s (one SLURM job array, or
    parallel local processes); returns {name: summary} (or {name: job id} when not waiting)."""
    tasks = [TrainTask(name=n, run_dir=str(Path(folder).resolve()), config=config, resume=resume)
             for n, (config, folder, resume) in runs.items()]
    return run_tasks(tasks, cfg, log_folder, name="ufm-train", done=done)

