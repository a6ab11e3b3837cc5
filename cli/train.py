"""``ufm train``: ResNet-18 with SCL and fixed prototypes on imbalanced images; presets for the paper's runs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ufm import eta
from ._common import (check_figure_out, console, flag, max_memory_option, print_json, progress_bar,
                      refuse_repeats, user_errors)
from ._config import typed, with_config_options
from ._executor import with_executor_options
from ufm.deep import distributed
from ufm.deep.data import CIFAR_SOURCES, download_cifar
from ufm.deep.config import grid_runs
from ufm.deep.plan import plan_set
from ufm.deep.train import (PRESETS, TrainConfig, check_fresh_folder, check_nproc, noting_run, preset,
                            resumed_config, train, train_distributed)
from ufm.deep.tasks import run_training
from ufm import interrupt
from ufm.executors import ExecutorConfig
from ufm.deep.figures import deep_fig1
from ufm.folders import require
from ufm.runio import read_json
from ufm.grid import parse_grid, without_effect_everywhere


SET_HOW = "re-run the same command to continue (finished runs are kept, started ones resume from their checkpoints)"


def _fmt(entry: dict, key: str, spec: str) -> str:
    value = entry.get(key)
    return "-" if value is None or value != value else format(value, spec)


@user_errors
@with_config_options(TrainConfig)
@with_executor_options
def train_command(
    ctx: typer.Context,
    config: TrainConfig,
    executor: ExecutorConfig,
    preset_name: Optional[str] = typer.Option(None, "--preset", help=f"run a preset: {', '.join(PRESETS)} "
                                              "(its runs side by side; options you set override the preset's)"),
    out: Path = typer.Option(Path("runs/train"), help="run folder (a preset puts one folder per run inside)"),
    resume: Optional[Path] = typer.Option(None, help="continue the run in this folder from its checkpoint"),
    as_json: bool = typer.Option(False, "--json", help="print the summaries as JSON"),
    download: bool = typer.Option(False, "--download", help="first fetch CIFAR from its official address into "
                                  "--data-root (MD5-checked; needs internet)"),
    grid: List[str] = typer.Option([], "--grid", help="FIELD=V1,V2,... (repeatable): one run per point of the "
                                   "product (of each preset run), in OUT/FIELD=V,...; with --executor slurm one job array"),
    max_memory_gb: Optional[float] = max_memory_option(),
    nproc: int = typer.Option(1, "--nproc", help="data-parallel processes on this node (torchrun's launcher; gloo "
                              "on the CPU, NCCL with one GPU per process on CUDA): in float64 the weights of one process "
                              "(tested to 1e-9), in float32 equal to rounding at first (the gradient is summed in another order; "
                              "such differences grow over epochs, as under another launcher or thread count: see the "
                              "training guide)"),
) -> None:
    """Train ResNet-18 with SCL (+ fixed prototypes) on STEP-imbalanced images, logging G_M and its distance to G_*."""
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    if nproc > 1 and executor.executor != "inline":
        raise ValueError("--nproc runs several processes here; with --executor local or slurm each run is one "
                         "process: drop one of the two")
    given = _given_fields(ctx, config)
    if resume is not None:
        if preset_name or grid:
            raise ValueError("--resume continues one run folder; drop --preset and --grid (each run has its own folder)")
        if typed(ctx, "out"):
            raise ValueError("--resume continues the run in its own folder; drop --out")
        if not resume.exists():
            raise FileNotFoundError(f"--resume {resume} does not exist; give the folder of a training run")
        require(resume, ("train",), "ufm train --resume")
        saved = TrainConfig.from_dict(read_json(resume / "config.json"))
        runs = {resume.name: (resumed_config(saved, given), resume, True)}
    elif preset_name or grid:
        axes = parse_grid(grid, TrainConfig)
        both = sorted(set(axes) & set(given))
        if both:
            raise ValueError(f"{flag(both[0])} is given both as an option and in --grid; keep one")
        bases = preset(preset_name, given) if preset_name else {"": config}
        configs = grid_runs(bases, axes) if axes else bases
        runs = {name: (cfg, out / name, False) for name, cfg in configs.items()}
    else:
        runs = {out.name: (config, out, False)}
    _refuse_without_effect(given, [cfg for cfg, _, _ in runs.values()])
    for cfg, _, _ in runs.values():  # before any folder is written
        check_nproc(cfg, nproc)
    if download:  # after every other check, for the data the runs train on (a preset's or a resumed run's own)
        sources = sorted({(cfg.dataset, str(cfg.data_root)) for cfg, _, _ in runs.values()})
        if not any(dataset in CIFAR_SOURCES for dataset, _ in sources):
            raise ValueError(f"--download fetches CIFAR-10/100 only; these runs train on --dataset "
                             f"{', '.join(sorted({d for d, _ in sources}))}: drop --download")
        for dataset, root in sources:
            if dataset in CIFAR_SOURCES:
                download_cifar(root, dataset)
    summaries = {}
    if resume is None and (preset_name or grid):  # a set of runs: re-running the same command continues it
        values = {name: {f: getattr(cfg, f) for f in axes} for name, (cfg, _, _) in runs.items()}
        summaries, runs = plan_set({name: cfg for name, (cfg, _, _) in runs.items()}, out, values)
        if not as_json and summaries:
            console.print(f"{len(summaries)} of {len(summaries) + len(runs)} runs already finished; "
                          f"{sum(c for _, _, c in runs.values())} continue from their checkpoints")
    else:
        for _, folder, cont in runs.values():
            if not cont:
                check_fresh_folder(folder)
    a_set = resume is None and bool(preset_name or grid)
    how = SET_HOW if a_set else None  # a single run: its folder says (ufm.deep.train.interrupted_state)
    if executor.executor != "inline":  # the runs as one SLURM job array (requeued and resumed on preemption) or processes
        folder = resume if resume is not None else out
        with interrupt.noting(f"finished runs are kept in {out}", SET_HOW) if a_set else noting_run(folder):
            ran = run_training(runs, executor, folder / "logs")
        if not executor.wait:  # {run: SLURM job id}
            if as_json:
                print_json({"submitted": ran})
            else:
                console.print(f"submitted (run: SLURM job) {ran}")
            return
        summaries, runs = {**summaries, **ran}, {}  # those finished before, then those run now
    with progress_bar(as_json) as bar, eta.loops(len(runs), "runs", "train") as timer:  # a set's time estimate
        for name, (cfg, folder, cont) in runs.items():
            task = bar.add_task(name, total=cfg.epochs, status="")

            def update(epoch: int, total: int, entry: dict, task=task) -> None:
                bar.update(task, completed=epoch, status=f"loss {entry['loss']:.3f}, distance "
                           f"{_fmt(entry, 'distance', '.3f')}, {entry['images_per_s']:.0f} img/s")

            with interrupt.noting(how=how):  # what the run keeps: ufm.deep.train says
                if nproc > 1:
                    result = train_distributed(cfg, folder, nproc, resume=cont, max_memory_gb=max_memory_gb)
                else:
                    result = train(cfg, folder, resume=cont, progress=update, max_memory_gb=max_memory_gb)
            summaries[name] = {**result, "run_folder": str(folder)}
            timer.step()
    if distributed.env_rank() > 0:
        distributed.exit_worker()  # a torchrun worker other than rank 0: rank 0 reports
    _report(summaries, out, as_json)
    if distributed.env_world() > 1:
        distributed.exit_worker()  # torchrun's rank 0, after its report


def _report(summaries: dict, out: Path, as_json: bool) -> None:
    """The runs' summaries as JSON or a table (and Figure 1 across several runs)."""
    figures = deep_fig1([s["run_folder"] for s in summaries.values()], out) if len(summaries) > 1 else None
    if as_json:
        print_json(summaries)
        return
    table = Table(title="training runs")
    for col in ("run", "epochs", "distance to G_*", "centered", "NC1", "train NCC acc", "test NCC acc",
                "prototype acc", "probe acc"):
        table.add_column(col, justify="right")
    for name, s in summaries.items():
        f = s["final"]
        table.add_row(name, str(s["epochs"]), _fmt(f, "distance", ".4f"), _fmt(f, "distance_centered", ".4f"),
                      _fmt(f, "nc1", ".3f"), _fmt(f, "train_ncc_accuracy", ".3f"), _fmt(f, "ncc_accuracy", ".3f"),
                      _fmt(f, "prototype_accuracy", ".3f"), f"{s['linear_probe_accuracy']:.3f}")
    console.print(table)
    if figures is not None:
        console.print(f"figures: {figures.parent}/deep_fig1_*.png")


def _refuse_without_effect(given: dict, configs: list[TrainConfig]) -> None:
    """Refuse a typed option that has no effect in any of the runs."""
    for name, reason in without_effect_everywhere(configs, list(given)).items():
        raise ValueError(f"{flag(name)} has no effect {reason}; drop it")


def _given_fields(ctx: typer.Context, config: TrainConfig) -> dict:
    """The config fields set on the command line, with their values."""
    return {name: value for name, value in config.to_dict().items() if typed(ctx, name)}


@user_errors
def deep_figures_command(
    runs: List[Path] = typer.Argument(..., help="finished training run folders"),
    out: Path = typer.Option(Path("figures"), help="folder for the PNGs"),
) -> None:
    """Figure 1 (G_M heatmaps, distance to G_* against epoch) from training run folders."""
    refuse_repeats(runs, "run folder")
    check_figure_out(out)
    path = deep_fig1(runs, out)
    console.print(f"wrote {path.parent}/deep_fig1_heatmaps.png and {path}")
