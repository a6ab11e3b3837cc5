"""The ``train`` kind: one training run per point (:func:`ufm.deep.train.train`, ResNet-18 with SCL and prototypes);
its run folder holds config.json, checkpoint.pt, metrics.jsonl and summary.json (last).  A run stopped before it
finished resumes from its checkpoint (:func:`ufm.deep.plan.run_state`); its task is preemptible on SLURM
(:class:`ufm.deep.tasks.TrainTask`).  Sets of runs (presets, grids, studies) keep their run folders directly in the
set folder."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ufm.deep.config import PLACE, TrainConfig
from ufm.deep.figures import deep_fig1
from ufm.deep.plan import check_against_data, check_one_figure, run_point, run_state
from ufm.deep.tasks import TrainTask
from ufm.engine import Kind, Point
from ufm.runio import read_json

__all__ = ["KIND", "ROW_METRICS"]

ROW_METRICS = ("distance", "distance_centered", "nc1", "nc1_ref", "cdnv", "nc2", "nc3", "nc4", "angle_majority",
               "angle_minority", "angle_across", "train_ncc_accuracy", "ncc_accuracy", "prototype_accuracy")


def _rows(point: Point, folder: Path, summary: dict) -> list[dict]:
    final = summary.get("final", {})
    return [{"run": point.name, **point.values, "n_w": point.config.n_w, "tau": point.config.tau,
             "seed": point.config.seed, "epochs": summary["epochs"], **{k: final.get(k) for k in ROW_METRICS},
             "linear_probe_accuracy": summary.get("linear_probe_accuracy"), "point": point.name}]


def _check(points: list[Point], finished: dict[str, Path]) -> None:
    """Every run to train against its data; the set's runs (finished ones too) share one Figure 1."""
    classes = check_against_data({p.name: p.config for p in points})
    for name, folder in finished.items():  # their number of classes from their summary (their data may be elsewhere)
        classes[name] = len(read_json(folder / "summary.json").get("counts", [])) or classes.get(name, 0)
    check_one_figure({name: k for name, k in classes.items() if k})


def _state(cfg: TrainConfig, folder: Path) -> str:
    return run_state(cfg, folder)


def _task(point: Point, folder: Path, state: str, progress: Callable | None = None, nproc: int = 1,
          max_memory_gb: float | None = None) -> TrainTask:
    """The preemptible task of one run (resumed from its checkpoint when its state says so); ``progress``:
    ``progress(name)`` gives the run's epoch callback (inline)."""
    return TrainTask(name=point.name, run_dir=str(Path(folder).resolve()), config=point.config,
                     resume=state == "resume", nproc=nproc, max_memory_gb=max_memory_gb,
                     progress=progress)


def _render(folder: Path, table: list[dict], grid: list[str] | None) -> None:
    """Figure 1 of the set (G_M heatmaps, distance to G_* against epoch) across its finished runs."""
    if len(table) > 1:
        deep_fig1([Path(folder) / r["run"] for r in table], folder)


KIND = Kind("train", TrainConfig, "summary.json", run_point, _rows, _render, _check, _state, _task, points_dir="",
            ignore=tuple(sorted(PLACE)), noun="runs")
