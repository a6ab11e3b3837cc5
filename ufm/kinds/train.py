"""The ``train`` kind: one training run per point (:func:`ufm.deep.train.train`, ResNet-18 with SCL and prototypes);
its run folder holds config.json, checkpoint.pt, metrics.jsonl and summary.json (last).  A run stopped before it
finished resumes from its checkpoint (:func:`ufm.deep.plan.run_state`); its task is preemptible on SLURM
(:class:`ufm.deep.tasks.TrainTask`).  Sets of runs (presets, grids, studies) keep their run folders directly in the
set folder."""

from __future__ import annotations

from pathlib import Path

from ufm.deep.config import PLACE, TrainConfig
from ufm.deep.plan import check_against_data, run_point, run_state
from ufm.engine import Kind, Point

__all__ = ["KIND", "ROW_METRICS"]

ROW_METRICS = ("distance", "distance_centered", "nc1", "angle_majority", "angle_minority", "angle_across",
               "train_ncc_accuracy", "ncc_accuracy", "prototype_accuracy")


def _rows(point: Point, folder: Path, summary: dict) -> list[dict]:
    final = summary.get("final", {})
    return [{"run": point.name, **point.values, "n_w": point.config.n_w, "tau": point.config.tau,
             "seed": point.config.seed, "epochs": summary["epochs"], **{k: final.get(k) for k in ROW_METRICS},
             "linear_probe_accuracy": summary.get("linear_probe_accuracy"), "point": point.name}]


def _check(points: list[Point]) -> None:
    check_against_data({p.name: p.config for p in points})


def _state(cfg: TrainConfig, folder: Path) -> str:
    return run_state(cfg, folder)


KIND = Kind("train", TrainConfig, "summary.json", run_point, _rows, check=_check, state=_state, points_dir="",
            ignore=tuple(sorted(PLACE)))
