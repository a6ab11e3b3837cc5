"""``ufm train``: ResNet-18 with SCL and fixed prototypes on imbalanced images; presets for the paper's runs."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.table import Table

from ._common import check_figure_out, check_writable, console, max_memory_option, print_json, progress_bar, refuse_repeats, user_errors
from ._config import typed, with_config_options
from ._executor import with_executor_options
from ufm.deep.runs import PRESETS, download_data, plan_training, run_training_plan
from ufm.deep.config import TrainConfig
from ufm.executors import ExecutorConfig


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
    given = {name: value for name, value in config.to_dict().items() if typed(ctx, name)}
    plan = plan_training(config, given, out, preset_name, grid, resume, typed(ctx, "out"), nproc)
    check_writable(plan.out)
    if download:
        download_data(plan)
    with progress_bar(as_json) as bar:
        def progress(name: str, epochs: int) -> Callable:
            task = bar.add_task(name, total=epochs, status="")
            return lambda epoch, total, entry: bar.update(task, completed=epoch, status=(
                f"loss {entry['loss']:.3f}, distance {_fmt(entry, 'distance', '.3f')}, "
                f"{entry['images_per_s']:.0f} img/s"))

        result = run_training_plan(plan, executor, nproc, max_memory_gb, progress)
    _torchrun_exit(rank_above_0=True)  # a torchrun worker other than rank 0: rank 0 reports
    if "submitted" in result:
        print_json({"submitted": result["submitted"]}) if as_json else console.print(
            f"submitted (run: SLURM job) {result['submitted']}")
        return
    if result["skipped"] and not as_json:
        console.print(f"{result['skipped']} of {len(plan.runs)} runs already finished; {result['resumed']} continued "
                      "from their checkpoints")
    _report(result["summaries"], plan.out, as_json)
    _torchrun_exit(rank_above_0=False)  # torchrun's rank 0, after its report


def _torchrun_exit(rank_above_0: bool) -> None:
    """End a torchrun process here (:func:`ufm.deep.distributed.exit_worker`): a rank above 0 (``rank_above_0``),
    else any process of a torchrun of several; nothing outside torchrun."""
    from ufm.deep import distributed  # (torch: imported once the runs have computed)

    if distributed.env_rank() > 0 if rank_above_0 else distributed.env_world() > 1:
        distributed.exit_worker()


def _report(summaries: dict, out: Path, as_json: bool) -> None:
    """The runs' summaries as JSON or a table (a set's Figure 1 is drawn by the engine: deep_fig1_*.png in it)."""
    figures = out / "deep_fig1_distance.png" if len(summaries) > 1 else None
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
    if figures is not None and figures.is_file():
        console.print(f"figures: {figures.parent}/deep_fig1_*.png")


@user_errors
def deep_figures_command(
    runs: List[Path] = typer.Argument(..., help="finished training run folders"),
    out: Path = typer.Option(Path("figures"), help="folder for the PNGs"),
) -> None:
    """Figure 1 (G_M heatmaps, distance to G_* against epoch) from training run folders."""
    refuse_repeats(runs, "run folder")
    check_figure_out(out)
    from ufm.deep.figures import deep_fig1

    path = deep_fig1(runs, out)
    console.print(f"wrote {path.parent}/deep_fig1_heatmaps.png and {path}")
