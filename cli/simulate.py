"""``ufm simulate`` and ``ufm figures``: the UFM simulator from the command line."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table

from ._threads import THREADS_HELP, computing
from ._common import (check_figure_out, console, default_out, err_console, max_memory_option, overwrite_option,
                      print_json, progress_bar, refuse_repeats, user_errors)
from ._config import with_config_options
from ufm import single
from ufm.choices import FIGURES, check_figure_names
from ufm.sim_config import SimConfig


def _fmt(x: Optional[float], spec: str = ".4f") -> str:
    return "-" if x is None or x != x else format(x, spec)


def _run_with_progress(cfg: SimConfig, folder: Path, quiet: bool, max_memory_gb: Optional[float] = None) -> Any:
    """The simulate kind's run (:func:`ufm.kinds.simulate.run`) into ``folder``, with a progress bar: its
    :class:`ufm.simulate.SimResult`."""
    from ufm.kinds import simulate as simulate_kind

    with progress_bar(quiet) as bar:
        task = bar.add_task("simulate", total=cfg.epochs, status="")

        def update(epoch: int, total: int, metrics: dict) -> None:
            bar.update(task, completed=epoch, status=f"min distance to G_* {min(metrics['distance']):.4f}")

        with warnings.catch_warnings():  # the summary carries the warnings; they are printed once, below
            warnings.simplefilter("ignore", UserWarning)
            return simulate_kind.run(cfg, folder, progress=update, max_memory_gb=max_memory_gb)


@user_errors
@with_config_options(SimConfig)
def simulate_command(
    config: SimConfig,
    out: Optional[Path] = typer.Option(None, help="run folder (default runs/simulate-<time>)"),
    overwrite: bool = overwrite_option(),
    max_memory_gb: Optional[float] = max_memory_option(),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
) -> None:
    """Optimize unconstrained features under SCL with fixed prototypes; compare G_M with G_*.

    Defaults: k = 10, STEP imbalance R = 10 (half the classes minority), ETF prototypes, n_w = 0 and
    n_w = 100 stacked side by side. Writes config.json, summary.json, arrays.npz, metrics.jsonl and
    G_M-vs-G_* heatmaps (gram_heatmaps.png) into the run folder.
    """
    folder = single.check_run_folder(out or default_out("simulate"), "simulate", overwrite)
    config.check_counts()
    from ufm.simulate import check_simulation_size  # (torch: once the options and --out are checked)

    check_simulation_size(config, max_memory_gb)
    # the Gram file, the counts, G_* and the batch size are checked before the progress bar starts
    result = single.run_one(folder, "simulate", config, overwrite,
                            lambda cfg, stage: _run_with_progress(cfg, stage, as_json, max_memory_gb))
    summary = result.summary()
    summary["run_folder"] = str(folder)
    if as_json:
        print_json(summary)
        return
    runs = summary["runs"]
    counts = summary["counts"]
    which = "counts" if config.counts is not None else f"{config.profile} counts"  # --counts: no profile is used
    batches = ("full batch" if config.batching == "full"  # one batch of all N samples: batch_size does not apply
               else f"{config.batching} batches of {config.batch_size}")
    table = Table(title=f"{config.loss}, {which} {counts if len(counts) <= 20 else f'k = {len(counts)}'}, {batches}, "
                        f"{summary['epochs_run']} epochs in {summary['elapsed_s']:.1f} s ({summary['device']})")
    for col in ("n_w", "tau", "seed", "distance to G_*", "NC1", "angle majority", "angle minority", "angle across"):
        table.add_column(col, justify="right")
    for r in runs:
        table.add_row(f"{r['n_w']:g}", f"{r['tau']:g}", str(r["seed"]), _fmt(r["distance"]), _fmt(r["nc1"], ".2e"),
                      _fmt(r["angle_majority"], ".1f"), _fmt(r["angle_minority"], ".1f"), _fmt(r["angle_across"], ".1f"))
    console.print(table)
    for note in summary["warnings"]:
        err_console.print(f"[yellow]warning:[/yellow] {note}")
    console.print(f"run folder: {folder}")


@user_errors
def figures_command(
    name: Optional[List[str]] = typer.Option(None, "--name", help=f"figures to render (default all): {', '.join(FIGURES)}"),
    out: Path = typer.Option(Path("figures"), help="folder for the PNGs"),
    quick: bool = typer.Option(False, help="tiny experiments (a smoke test, not the real figures)"),
    list_only: bool = typer.Option(False, "--list", help="list the registered figures and exit"),
    runs: Optional[List[Path]] = typer.Option(None, "--runs", help="training run folders: draw the paper's Figure 1 "
                                              "from them (deep_fig1_*.png) instead of the registered figures"),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP, show_default=False),
) -> None:
    """Regenerate every registered figure from code (fixed seeds) into figures/, or Figure 1 from --runs."""
    given = [flag for flag, value in (("--runs", runs), ("--list", list_only), ("--name", name), ("--quick", quick),
                                      ("--threads", threads is not None)) if value]
    for first, others in (("--runs", ("--list", "--name", "--quick", "--threads")),
                          ("--list", ("--name", "--quick", "--threads"))):
        clash = [flag for flag in others if flag in given]
        if first in given and clash:
            raise ValueError(f"{first} does not combine with {', '.join(clash)} (they would be ignored); drop one of them")
    refuse_repeats(name or [], "--name")
    check_figure_names(name or [])
    refuse_repeats(runs or [], "--runs")
    if not list_only:
        check_figure_out(out)
    if runs:
        from ufm.deep.figures import deep_fig1

        path = deep_fig1(runs, out)
        console.print(f"wrote {path.parent}/deep_fig1_heatmaps.png and {path}")
        return
    if list_only:
        for fig, description in FIGURES.items():
            console.print(f"[bold]{fig}[/bold]: {description}")
        return
    from ufm.figures import render

    computing()
    with console.status("rendering figures"):
        paths = render(name, out, quick)
    for path in paths:
        console.print(f"wrote {path}")
