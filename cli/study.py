"""``ufm study`` and ``ufm study-report``: the minority-angle study (ufm.deep.study), run or continued, and its table
and figure rebuilt from the committed records."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.table import Table

from ._threads import computing
from ._common import check_writable, console, print_json, progress_bar, user_errors
from ufm._config import first_repeat
from ufm.deep.config import TrainConfig
from ufm.deep.runs import train_study
from ufm.deep.study import ARMS, SETTINGS, STUDY_FIELDS, plan_study, write_report
from ufm.grid import parse_grid


def _overrides(specs: list[str], data_root: Optional[str]) -> dict:
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if name.strip().replace("-", "_") in STUDY_FIELDS:
            raise ValueError(f"--set {name.strip()} is set by the study (its arms, seeds and setting); drop it")
        if not sep or not name.strip() or "," in value:
            raise ValueError(f"--set takes FIELD=VALUE (one value, e.g. epochs=2), got {spec!r}")
        parsed = {k: v[0] for k, v in parse_grid([spec], TrainConfig, what="--set").items()}
        again = sorted(set(parsed) & set(out))
        if again:
            raise ValueError(f"--set {again[0]} is given twice; keep one")
        out.update(parsed)
    if data_root is not None:
        if "data_root" in out:
            raise ValueError("--data-root is given twice (also in --set); keep one")
        out["data_root"] = data_root
    return out


def _arms(text: Optional[str]) -> list[str]:
    arms = list(ARMS) if text is None else [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise ValueError(f"--arms takes a comma list of {', '.join(ARMS)}; got {text!r}")
    again = first_repeat(arms)
    if again is not None:
        raise ValueError(f"--arms names {again} twice; give each arm once")
    return arms


# a config field as ``ufm study`` takes it: ``--data-root``, else ``--set FIELD=VALUE`` (rendered by user_errors)
SET_ALIASES = {**{f.name: f"--set {f.name}=" for f in dataclasses.fields(TrainConfig)}, "data_root": "--data-root"}


@user_errors(aliases=SET_ALIASES)
def study_command(
    setting: str = typer.Option(..., "--setting", help=f"data set and recipe: {', '.join(SETTINGS)}"),
    seeds: int = typer.Option(3, "--seeds", help="seeds 0 .. N-1 per arm (raise it later to add seeds)"),
    arms: Optional[str] = typer.Option(None, "--arms", help=f"comma list (default all): {', '.join(ARMS)}"),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="folder of the setting's data set"),
    summaries: Path = typer.Option(Path("study-records"), "--summaries",
                                   help="folder of the runs' records (commit it): runs recorded there are skipped"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder of the training runs (default runs/study-SETTING)"),
    overrides: List[str] = typer.Option([], "--set", help="FIELD=VALUE for every run (repeatable), e.g. epochs=2 "
                                        "for a quick try (records of other values are refused: use other --summaries)"),
    as_json: bool = typer.Option(False, "--json", help="print the report rows as JSON"),
) -> None:
    """Run or continue the minority-angle study: arms (none, ETF, minority G_* over gamma, designed G_w) x seeds
    on one setting; each finished run leaves a record under --summaries; re-running the command continues."""
    if setting not in SETTINGS:
        raise ValueError(f"--setting must be one of {', '.join(SETTINGS)}, got {setting!r}")
    if not 1 <= seeds <= 1000:
        raise ValueError(f"--seeds must be between 1 and 1000, got {seeds}")
    out = out if out is not None else Path("runs") / f"study-{setting}"
    check_writable(out)
    chosen, fixed = _arms(arms), _overrides(overrides, data_root)  # refused before anything computes
    computing()  # the design's solves; the training runs choose their own (ufm.threads.for_task)
    plan = plan_study(setting, chosen, list(range(seeds)), summaries, out, fixed)
    if plan.design and not as_json:
        d = plan.design
        console.print(f"designed prototypes: cosines (majority, minority, across) "
                      f"{', '.join(f'{c:.3f}' for c in d['best_cosines'])}; optimal G_M's distance to G_* "
                      f"{d['distance_g_star']:.4f} with G_w = G_* -> {d['distance_best']:.4f}")
    if not as_json:
        console.print(f"{len(plan.recorded)} of {len(plan.runs)} runs recorded under {summaries}; "
                      f"{len(plan.left)} to train in {out}")
    with progress_bar(as_json) as bar:
        train_study(plan, setting, summaries, out, progress=lambda name, epochs: _epoch_bar(bar, name, epochs))
    result = write_report(summaries, summaries / "report")
    if as_json:
        print_json(result["rows"])
        return
    _print_rows(result["rows"], setting)
    console.print(f"table and figure: {summaries / 'report'} (ufm study-report rebuilds them)")


def _epoch_bar(bar: Any, name: str, epochs: int) -> Callable:
    """A progress row for one run: its epochs and loss."""
    task = bar.add_task(name, total=epochs, status="")
    return lambda epoch, total, entry: bar.update(task, completed=epoch, status=f"loss {entry['loss']:.3f}")


def _cell(cell: dict | None, scale: float = 100, digits: int = 1) -> str:
    if cell is None or cell["mean"] != cell["mean"]:
        return "-"
    if cell["low"] != cell["low"]:
        return f"{scale * cell['mean']:.{digits}f}"
    return f"{scale * cell['mean']:.{digits}f} ± {scale * (cell['high'] - cell['mean']):.{digits}f}"


def _print_rows(rows: list[dict], setting: str | None = None) -> None:
    table = Table(title="minority-angle study (mean ± 95% half-width over seeds; accuracies in %; "
                        "vs ETF: paired by seed)")
    for col in ("setting", "arm", "seeds", "probe acc", "minority probe acc", "minority vs ETF (pp)", "distance"):
        table.add_column(col, justify="right")
    for r in rows:
        if setting is not None and r["setting"] != setting:
            continue
        table.add_row(r["setting"], r["arm"], str(len(r["seeds"])), _cell(r["probe_accuracy"]),
                      _cell(r["minority_probe_accuracy"]), _cell(r.get("minority_probe_accuracy_vs_etf")),
                      _cell(r["distance"], 1, 3))
    console.print(table)


@user_errors
def study_report_command(
    summaries: Path = typer.Option(Path("study-records"), "--summaries", help="folder of the study's records"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for table.md/csv/json and the figure "
                                       "(default SUMMARIES/report)"),
    as_json: bool = typer.Option(False, "--json", help="print the report rows as JSON"),
) -> None:
    """The study's table (means, 95% intervals, paired differences against ETF) and figure (accuracy against
    gamma), from the records alone."""
    if not summaries.is_dir():
        raise FileNotFoundError(f"--summaries {summaries} is not a folder; give the folder ufm study wrote records to")
    result = write_report(summaries, out if out is not None else summaries / "report")
    if as_json:
        print_json(result["rows"])
        return
    _print_rows(result["rows"])
    console.print("wrote " + ", ".join(result["files"]))
