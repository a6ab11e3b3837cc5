"""What ``ufm train`` runs, as a library: one run, a resumed run, a preset or a grid of runs, planned and checked
before anything trains (:func:`plan_training`), then run through the engine (:func:`run_training_plan`).

A single run (or ``resume``) trains in its own folder (:func:`ufm.single.run_here`: re-running the same command
continues it from its checkpoint); a preset or grid is a set of runs in one folder (:func:`ufm.engine.run_set`:
finished runs are kept, started ones resume, the table and Figure 1 are gathered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ufm.deep.config import PRESETS, TrainConfig, grid_runs, preset, resumed_config
from ufm.errors import FieldError
from ufm.folders import require
from ufm.grid import parse_grid, without_effect_everywhere
from ufm.runio import read_json

__all__ = ["TrainPlan", "plan_training", "download_data", "run_training_plan", "train_study", "PRESETS"]


@dataclass(frozen=True)
class TrainPlan:
    """The runs of one ``ufm train`` command: ``runs`` {name: config}; ``out`` the set folder (``is_set``) or the
    run's own folder; ``resume``: continue the run in ``out``; ``values`` {name: {grid field: value}}."""

    runs: dict[str, TrainConfig]
    out: Path
    is_set: bool = False
    resume: bool = False
    values: dict[str, dict] = field(default_factory=dict)


def plan_training(config: TrainConfig, given: dict, out: Path, preset_name: str | None = None,
                  grid: Sequence[str] = (), resume: Path | None = None, out_given: bool = False,
                  nproc: int = 1) -> TrainPlan:
    """The runs asked for, checked before any folder is written: ``given`` {field: value} are the fields the user
    set (they override a preset's or a resumed run's own); ``grid`` ``FIELD=V1,V2,...`` strings; ``resume`` a run
    folder to continue (``out_given``: whether an output folder was given too, which a resume refuses)."""
    if nproc < 1:
        raise FieldError(f"{{nproc}} must be >= 1, got {nproc}")
    if resume is not None:
        if preset_name or grid:
            raise ValueError("--resume continues one run folder; drop --preset and --grid (each run has its own folder)")
        if out_given:
            raise ValueError("--resume continues the run in its own folder; drop --out")
        if not Path(resume).exists():
            raise FileNotFoundError(f"--resume {resume} does not exist; give the folder of a training run")
        require(resume, ("train",), "ufm train --resume")
        saved = TrainConfig.from_dict(read_json(Path(resume) / "config.json"))
        plan = TrainPlan({Path(resume).name: resumed_config(saved, given)}, Path(resume), resume=True)
    elif preset_name or grid:
        axes = parse_grid(list(grid), TrainConfig)
        both = sorted(set(axes) & set(given))
        if both:
            raise FieldError(f"{{{both[0]}}} is given both as an option and in --grid; keep one")
        bases = preset(preset_name, given) if preset_name else {"": config}
        runs = grid_runs(bases, axes) if axes else bases
        plan = TrainPlan(runs, Path(out), is_set=True, values={n: {f: getattr(c, f) for f in axes} for n, c in runs.items()})
    else:
        plan = TrainPlan({Path(out).name: config}, Path(out))
    for name, reason in without_effect_everywhere(list(plan.runs.values()), list(given)).items():
        raise FieldError(f"{{{name}}} has no effect {reason}; drop it")
    if nproc > 1:  # (the GPUs or cores to share: torch is imported for that only)
        from ufm.deep.distributed import check_nproc

        for cfg in plan.runs.values():
            check_nproc(cfg, nproc)
    return plan


def download_data(plan: TrainPlan) -> None:
    """Fetch CIFAR-10/100 into the runs' data roots (after every other check; nothing is fetched for data already
    extracted); refused for runs that train on other data."""
    from ufm.deep.data import CIFAR_SOURCES, download_cifar

    sources = sorted({(cfg.dataset, str(cfg.data_root)) for cfg in plan.runs.values()})
    if not any(dataset in CIFAR_SOURCES for dataset, _ in sources):
        raise FieldError(f"{{download}} fetches CIFAR-10/100 only; these runs train on {{dataset}} "
                         f"{', '.join(sorted({d for d, _ in sources}))}: drop {{download}}")
    for dataset, root in sources:
        if dataset in CIFAR_SOURCES:
            download_cifar(root, dataset)


def run_training_plan(plan: TrainPlan, executor: Any = None, nproc: int = 1, max_memory_gb: float | None = None,
                      progress: Callable[[str, int], Callable] | None = None,
                      done: Callable[[str, bool], None] | None = None) -> dict:
    """Train what is left of ``plan`` with ``executor`` (inline by default; local processes, a SLURM array) and
    return ``{"summaries": {name: summary + run_folder}, "skipped": n, "resumed": n}`` or, for SLURM without
    waiting, ``{"submitted": {name: job id}}``.  ``progress(name, epochs)`` gives a run's epoch callback (inline)."""
    from ufm import engine, single
    from ufm.deep.train import noting_run
    from ufm.executors import ExecutorConfig

    executor = executor or ExecutorConfig()
    if nproc > 1 and executor.executor != "inline":
        raise ValueError("--nproc runs several processes here; with --executor local or slurm each run is one "
                         "process: drop one of the two")
    options = {"nproc": nproc, "max_memory_gb": max_memory_gb, "progress": progress}
    if plan.is_set:
        report = engine.run_set(plan.out, "train", engine.points("train", plan.runs, plan.values), executor, done,
                                extend=True, options=options)
        if "submitted" in report:
            return {"submitted": report["submitted"]}
        summaries = {r["run"]: {**read_json(plan.out / r["run"] / "summary.json"), "run_folder": str(plan.out / r["run"])}
                     for r in report["rows"] if r["run"] in plan.runs}
        return {"summaries": summaries, "skipped": report["skipped"],
                "resumed": sum(s == "resume" for s in report["states"].values())}
    (name, cfg), = plan.runs.items()
    with noting_run(plan.out):
        result = single.run_here(plan.out, "train", cfg, executor, "resume" if plan.resume else None, options)
    if not executor.wait and executor.executor == "slurm":
        return {"submitted": {name: result}}
    summary = result or {**read_json(plan.out / "summary.json"), "run_folder": str(plan.out)}
    return {"summaries": {name: summary}, "skipped": int(result is None), "resumed": int(plan.resume)}


def train_study(plan: Any, setting: str, summaries: str | Path, out: str | Path, executor: Any = None,
                progress: Callable[[str, int], Callable] | None = None) -> None:
    """Train the runs a study has left (:func:`ufm.deep.study.plan_study`) as a set in ``out`` through the engine,
    each recorded under ``summaries`` as it finishes (re-running continues: recorded runs are skipped, started ones
    resume from their checkpoints)."""
    from ufm import engine, interrupt
    from ufm.deep.study import save_record

    if not plan.left:
        return

    def record(name: str, ok: bool) -> None:
        if ok:
            save_record(summaries, setting, name, plan.left[name], read_json(Path(out) / name / "summary.json"))

    values = {name: {"arm": name.split("/")[0], "seed": cfg.seed} for name, cfg in plan.left.items()}
    with interrupt.noting(how="re-run the same command to continue (recorded runs are skipped, started ones resume)"):
        engine.run_set(out, "train", engine.points("train", plan.left, values), executor, record, extend=True,
                       options={"progress": progress})
