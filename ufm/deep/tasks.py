"""The preemptible training task: one ``ufm train`` run as an executor task (:mod:`ufm.executors` runs it inline,
as a local process or in a SLURM job array).  submitit calls its ``checkpoint()`` when SLURM preempts the job or
its time limit nears; the same run is then requeued and continues from its run folder's last checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ufm.deep.plan import start_over
from ufm.executors import Task, requeue

__all__ = ["TrainTask"]


@dataclass
class TrainTask(Task):
    """One training run, :func:`ufm.deep.train.train` ``(config, run_dir, resume)``; submitit's checkpointing
    protocol (``checkpoint()``, as in ``submitit.helpers.Checkpointable``) requeues it as a resumed run."""

    config: Any = None
    resume: bool = False
    requeued: bool = False
    nproc: int = 1
    max_memory_gb: float | None = None
    progress: Callable[[str, int], Callable[[int, int, dict], None]] | None = None  # inline only: (name, epochs) ->
    # the run's epoch callback, made when it starts (a callback does not pickle)

    def run(self) -> dict:
        from ufm.deep.train import train, train_distributed

        # A requeued run resumes from its checkpoint; if it was preempted before writing one, it starts again
        # (the folder then holds only what this same run wrote before its first checkpoint).
        run_dir = Path(self.run_dir)
        resume = self.resume or (self.requeued and (run_dir / "checkpoint.pt").is_file())
        if self.requeued and not resume and run_dir.is_dir():
            start_over(run_dir)
        if self.nproc > 1:
            summary = train_distributed(self.config, run_dir, self.nproc, resume=resume,
                                        max_memory_gb=self.max_memory_gb)
        else:
            update = None if self.progress is None else self.progress(self.name, self.config.epochs)
            summary = train(self.config, run_dir, resume=resume, progress=update, max_memory_gb=self.max_memory_gb)
        return {**summary, "run_folder": str(run_dir)}

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Called by submitit on the preemption / time-limit signal: the same run, resumed, is requeued."""
        return requeue(replace(self, requeued=True))
