"""Planning a set of training runs (a preset, a grid) before any of them trains.

- :func:`check_against_data`: every run against its data (images per class, test images, batch size), each data
  set loaded once, so that a grid's last point cannot fail after the first ones trained;
- :func:`run_state`: what the same command does with a run folder that exists (a killed grid continues by
  re-running the command): ``"new"`` (nothing there), ``"resume"`` (the same run, checkpointed), ``"restart"``
  (the same run, stopped before its first checkpoint), ``"done"`` (the same run, finished); a folder holding
  another run is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping

import torch

from ufm.batching import epoch_batches
from ufm.deep.config import TrainConfig
from ufm.errors import FieldError
from ufm.folders import describe, identify
from ufm.runio import read_json

__all__ = ["check_against_data", "run_state", "start_over", "RUN_FILES"]

RUN_FILES = ("config.json", "checkpoint.pt", "metrics.jsonl", "summary.json")


def check_against_data(configs: Mapping[str, TrainConfig]) -> None:
    """Refuse (ValueError naming the run) a run whose data cannot give what it asks: more images of a class than
    the data set has, more test images per class, a batch larger than its training subset."""
    from ufm.deep.model import check_head_reaches
    from ufm.deep.train import _first_of_each_class, load_data, select_data

    loaded: dict[tuple, tuple] = {}
    for name, cfg in configs.items():
        key = (cfg.dataset, str(cfg.data_root))
        if key not in loaded:
            loaded[key] = load_data(cfg)
        try:
            train, _, counts, _ = select_data(cfg, *loaded[key])
            check_head_reaches(cfg.g_star(counts), cfg.head, cfg.embed_dim)
            k = len(train.classes)
            bound = _first_of_each_class(train.labels, k) if cfg.batching == "binding" else None
            epoch_batches(train.labels, cfg.batch_size, cfg.batching, torch.Generator().manual_seed(0), k, bound)
        except ValueError as err:
            where = f"run {name}: " if name and len(configs) > 1 else ""
            if isinstance(err, FieldError):  # keep its fields: the command line writes them as flags
                raise FieldError(where.replace("{", "(").replace("}", ")") + err.template) from None
            raise ValueError(f"{where}{err}") from None


def run_state(cfg: TrainConfig, folder: str | Path) -> str:
    """``"new"``, ``"resume"``, ``"restart"`` or ``"done"`` for running ``cfg`` in ``folder`` (see the module
    docstring); a folder holding a run of another configuration, or files of something else, is refused."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a run folder; choose another --out")
    if not (folder / "config.json").is_file():
        held = [n for n in RUN_FILES if (folder / n).exists()]
        if held:
            raise ValueError(f"{folder} holds {', '.join(held)} but no config.json: not a training run folder; "
                             "choose another --out")
        return "new"
    if identify(folder) != "train":
        raise ValueError(f"{folder} is {describe(folder)}, not a training run; choose another --out")
    saved = TrainConfig.from_dict(read_json(folder / "config.json")).to_dict()
    differ = [n for n, v in cfg.to_dict().items() if saved.get(n) != v]
    if differ:
        raise ValueError(f"{folder} holds a training run of another configuration ({', '.join(differ)} differ); "
                         "choose another --out, or continue that run with --resume")
    if (folder / "summary.json").is_file():
        return "done"
    if (folder / "checkpoint.pt").is_file():
        return "resume"
    return "restart"


def start_over(folder: str | Path) -> None:
    """Remove the folder of a run that stopped before its first checkpoint (state ``"restart"``, or a requeued
    SLURM task preempted that early): it holds only what this same run wrote, nothing to resume from."""
    shutil.rmtree(folder)
