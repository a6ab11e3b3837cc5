"""Planning a set of training runs (a preset, a grid) before any of them trains.

- :func:`check_against_data`: every run against its data (images per class, test images, batch size), each data
  set loaded once, so that a grid's last point cannot fail after the first ones trained;
- :func:`run_state`: what the same command does with a run folder that exists (a killed grid continues by
  re-running the command): ``"new"`` (nothing there), ``"resume"`` (the same run, checkpointed), ``"restart"``
  (the same run, stopped before its first checkpoint), ``"done"`` (the same run, finished); a folder holding
  another run is refused;
- :func:`check_one_figure`: the runs of a set share one Figure 1 (one number of classes).

Sets of runs (a preset, a grid, a study) run through the engine as the ``train`` kind (:mod:`ufm.kinds.train`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping


from ufm._config import differences
from ufm.deep.config import PLACE, TrainConfig
from ufm.errors import FieldError, literal
from ufm.folders import describe, identify
from ufm.runio import read_json

__all__ = ["check_against_data", "check_one_figure", "run_state", "start_over", "run_point", "RUN_FILES"]

RUN_FILES = ("config.json", "checkpoint.pt", "metrics.jsonl", "summary.json")


def check_against_data(configs: Mapping[str, TrainConfig]) -> dict[str, int]:
    """Refuse (ValueError naming the run) a run whose data cannot give what it asks: more images of a class than
    the data set has, more test images per class, a batch larger than its training subset.  Returns each run's
    number of classes."""
    from ufm.deep.model import check_head_reaches
    from ufm.deep.train import check_batches, load_data, select_data

    loaded: dict[tuple, tuple] = {}
    classes = {}
    for name, cfg in configs.items():
        key = (cfg.dataset, str(cfg.data_root))
        if key not in loaded:
            loaded[key] = load_data(cfg)
        try:
            train, _, counts, _ = select_data(cfg, *loaded[key])
            check_head_reaches(cfg.g_star(counts), cfg.head, cfg.embed_dim)
            check_head_reaches(cfg.g_prototypes(counts), cfg.head, cfg.embed_dim)
            check_batches(cfg, train.labels, len(train.classes))
            classes[name] = len(counts)
        except ValueError as err:
            where = f"run {name}: " if name and len(configs) > 1 else ""
            if isinstance(err, FieldError):  # keep its fields: the command line writes them as flags
                raise FieldError(literal(where) + err.template) from None
            raise ValueError(f"{where}{err}") from None
    return classes


def check_one_figure(classes: Mapping[str, int]) -> None:
    """A set of runs shares one Figure 1 (:func:`ufm.deep.figures.deep_fig1`), which draws runs of one number of
    classes: refused before any run trains when its runs have different numbers of classes."""
    if len(set(classes.values())) > 1:
        (a, ka), (b, kb) = next(((x, y) for x in classes.items() for y in classes.items() if x[1] != y[1]))
        raise ValueError(f"runs {a} ({ka} classes) and {b} ({kb} classes) cannot share the set's Figure 1, which "
                         "draws runs of one data set together: give them separate --out folders")


def run_state(cfg: TrainConfig, folder: str | Path,
              another_run: str = "choose another --out, or continue that run with --resume") -> str:
    """``"new"``, ``"resume"``, ``"restart"`` or ``"done"`` for running ``cfg`` in ``folder`` (see the module
    docstring); a folder holding a run of another configuration (apart from where it runs: :data:`PLACE`), or files
    of something else, is refused."""
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
    differ = differences(read_json(folder / "config.json"), cfg, ignore=PLACE)
    if differ:
        raise ValueError(f"{folder} holds a training run of another configuration ({'; '.join(differ)}); "
                         f"{another_run}")
    if (folder / "summary.json").is_file():
        return "done"
    if (folder / "checkpoint.pt").is_file():
        return "resume"
    return "restart"


def start_over(folder: str | Path) -> None:
    """Remove the folder of a run that stopped before its first checkpoint (state ``"restart"``, or a requeued
    SLURM task preempted that early): it holds only what this same run wrote, nothing to resume from."""
    shutil.rmtree(folder)


def run_point(cfg: TrainConfig, folder: Path) -> None:
    """Train one run of a set to its end in ``folder``: new, resumed from its checkpoint, or started over."""
    from ufm.deep.train import train

    state = run_state(cfg, folder)
    if state == "restart":
        start_over(folder)
    if state != "done":
        train(cfg, folder, resume=state == "resume")
