"""Single runs of a kind, a set of one whose point folder is the output folder itself.

- :func:`run_one`: staged (a failed or interrupted run leaves no folder; an old one replaced only with ``overwrite``):
  ``ufm simulate``, ``ufm solve``;
- :func:`run_here`: in place, for kinds whose runs resume from checkpoints (``ufm train``, ``--resume``): re-running
  the same command continues the run.

The same kinds, checks, states, tasks and folder marker as the sets of :mod:`ufm.engine`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

from ufm.engine import Point, _mark_point, _ran, _task, kind, point_state, portable
from ufm.folders import MARKER, mark
from ufm.registry import KINDS as REGISTRY
from ufm.runio import check_out_dir, file_list

__all__ = ["check_run_folder", "run_one", "run_here"]



def check_run_folder(folder: str | Path, name: str, overwrite: bool = False) -> Path:
    """The folder of a single run of kind ``name``, checked before any compute: writable, never the current folder;
    one that holds files is refused unless ``overwrite``, and then only a run folder of the same kind is replaced
    (never another kind's folder or files no ufm command wrote).  Nothing is created."""
    from ufm.folders import check_overwrite
    from ufm.runio import refuse_files

    folder = check_out_dir(folder, "--out", overwrite=True)  # all but "holds files"
    check_overwrite(folder, _run_folder(name))
    if not overwrite:
        refuse_files(folder)
    return folder


def _run_folder(name: str) -> str:
    entry = REGISTRY[name]
    if entry.run_folder is None:
        raise ValueError(f"a {name} point runs only in a set (it has no single run folder)")
    return entry.run_folder.key


def run_one(folder: str | Path, name: str, config: Any, overwrite: bool = False,
            runner: Callable[[Any, Path], Any] | None = None) -> Any:
    """A single run of kind ``name``, a set of one whose point folder is ``folder`` itself: the folder is checked
    (:func:`check_run_folder`) and so is the config (the kind's checks) before anything runs; the run writes into a
    staging folder that becomes ``folder`` in one rename (a failed or interrupted run leaves no folder; an old one is
    replaced only with ``overwrite``).  ``runner(config, folder)`` runs it (default the kind's ``run``, e.g. one with a
    progress callback); returns what it returns.  Torch runs on the threads :func:`ufm.threads.configure` chooses for
    the config's work."""
    from ufm import threads
    from ufm.runio import staged_dir

    k = kind(name)
    folder = check_run_folder(folder, name, overwrite)
    if k.check is not None:
        k.check([Point(folder.name, {}, config)], {})
    threads.configure(k.work_of(config))
    with staged_dir(folder, overwrite) as stage:
        mark(stage, _run_folder(name))
        return (runner or k.run)(config, stage)


def run_here(folder: str | Path, name: str, config: Any, executor: Any = None, state: str | None = None,
             options: dict | None = None) -> Any:
    """A single run of kind ``name`` in ``folder`` itself, not staged: for kinds whose runs resume from checkpoints
    (training).  Its state (the kind's rule, or ``state`` as given, e.g. ``resume``) decides: ``done`` returns at
    once, ``resume`` continues, ``new`` checks the folder (:func:`check_run_folder`: a folder of other files or kinds
    is refused) and the config (the kind's checks) first.  Runs with ``executor`` (inline by default; a local process
    or one SLURM job) and returns the task's result (None when done already)."""
    from ufm.executors import ExecutorConfig, TasksFailed, run_tasks

    k, folder = kind(name), Path(folder)
    executor = executor or ExecutorConfig()
    state = state or point_state(k, config, folder)
    if state == "done":
        return None
    if state in ("new", "restart"):
        if state == "restart":
            shutil.rmtree(folder)
        folder = check_out_dir(folder, "--out", run_folder=False)  # not a file, writable
        if _ran(folder):  # files of something else (the engine's own marker aside)
            raise ValueError(f"--out {folder} holds files ({file_list(folder, skip=(MARKER,))}) but no run; choose "
                             "another --out")
        if k.check is not None:
            k.check([Point(folder.name, {}, config)], {})
    created = not folder.exists()
    _mark_point(name, folder)
    task = _task(k, Point(folder.name, {}, config), folder, state, portable(options, executor))
    try:
        if executor.executor == "inline":
            return task()  # its errors as they are (a FieldError keeps its fields)
        return run_tasks([task], executor, folder / "logs", name=f"ufm-{name}").get(task.name)
    except TasksFailed as err:  # one task: its own error (its fields, its exit code), not "1 of 1 tasks failed"
        text = next(iter(err.failures.values()))
        error = getattr(text, "error", None)
        raise (error if isinstance(error, ValueError) else ValueError(text)) from None
    finally:
        if created and folder.is_dir() and {p.name for p in folder.iterdir()} <= {"kind.json", "logs"} and not any(
                (folder / "logs").glob("*")):
            shutil.rmtree(folder, ignore_errors=True)  # refused before it wrote anything: no folder left behind
