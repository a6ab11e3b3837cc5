"""The paper's open question as a study: do prototypes with larger angles for minority classes generalize better?

One setting (a data set and its CPU-sized training recipe, :data:`SETTINGS`) is trained under several arms
(:data:`ARMS`) over seeds; every arm has the same n_w, schedule and data, and a seed fixes the initialization and
the batches, so arms run with the same seed are paired:

- ``none``: no prototypes (n_w = 0);
- ``etf``: ETF prototypes (G_* = G_w = the simplex ETF);
- ``minority-g<gamma>``: the minority-weighted G_* (minority classes get larger angles, ``--gamma``), prototypes
  realizing it;
- ``designed-g1``: the same target at gamma = 1, with a prototype Gram G_w designed so that the *optimal* G_M at
  this n_w is closest to G_* (:func:`ufm.design.best_block_prototypes`; prototypes at finite n_w do not impose
  their own Gram).

Each finished run leaves a small record, ``<summaries>/<setting>/<arm>/seed=<s>.json`` (its config and
summary), meant to be committed: :func:`pending` skips the runs that already have one (on any machine) and refuses
one trained with another configuration, and :func:`report` rebuilds the table from those records alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ufm._config import differences
from ufm.deep.config import PLACE, PRESETS, TrainConfig
from ufm.grid import refuse_without_effect
from ufm.runio import read_json, write_json

__all__ = ["Arm", "ARMS", "SETTINGS", "StudyPlan", "plan_study", "study_runs", "design_key", "design_prototypes", "record_path",
           "save_record", "pending", "load_records", "report", "MEASURES"]


@dataclass(frozen=True)
class Arm:
    """One arm: the fields it sets on the setting's config, and its gamma on the figure's x axis (None: a
    baseline drawn as a band).  ``designed``: its prototypes' Gram is designed for its target."""

    overrides: dict = field(default_factory=dict)
    gamma: float | None = None
    designed: bool = False


ARMS: dict[str, Arm] = {
    "none": Arm({"n_w": 0.0}),
    "etf": Arm({}, gamma=0.0),
    "minority-g0.5": Arm({"geometry": "minority", "gamma": 0.5}, gamma=0.5),
    "minority-g1": Arm({"geometry": "minority", "gamma": 1.0}, gamma=1.0),
    "minority-g2": Arm({"geometry": "minority", "gamma": 2.0}, gamma=2.0),
    "designed-g1": Arm({"geometry": "minority", "gamma": 1.0}, gamma=1.0, designed=True),
}

# The settings: the Figure 1 recipes that reach the terminal phase on 2 CPU cores (their comments in
# ufm/deep/config.py), with n_w = 100 prototype copies for every arm with prototypes.
SETTINGS: dict[str, dict] = {
    "fashion-mnist": dict(PRESETS["cpu-fig1"]["scl-nw100"]),
    "cifar10": dict(PRESETS["cpu-fig1-cifar"]["scl-nw100"]),
}



def study_runs(setting: str, arms: list[str], seeds: list[int], overrides: Mapping | None = None,
               cosines: tuple[float, ...] | None = None) -> dict[str, TrainConfig]:
    """The study's runs, ``<arm>/seed=<s>`` -> config: the setting's recipe, ``overrides`` (every arm), the arm's
    fields and the seed; the designed arm takes ``cosines`` (its G_w, from :func:`design_prototypes`)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arms {unknown}; choose among {', '.join(ARMS)}")
    runs = {}
    for arm in arms:
        extra = {"prototype_cosines": tuple(cosines or ())} if ARMS[arm].designed else {}
        if ARMS[arm].designed and not cosines:
            raise ValueError(f"arm {arm} needs its designed prototype cosines")
        for seed in seeds:
            values = {**SETTINGS[setting], **(overrides or {}), **ARMS[arm].overrides, **extra, "seed": seed}
            runs[f"{arm}/seed={seed}"] = TrainConfig(**values)
    return runs


def design_key(counts, cfg: TrainConfig) -> dict:
    """What a prototype design depends on: class counts, tau, the target and the full-batch n_w that matches the
    training batches (as many prototype rows per sample row: n_w N / (2 B), two views per image)."""
    counts = [int(c) for c in counts]
    n_w = cfg.n_w * sum(counts) / (2 * cfg.batch_size)
    return {"counts": counts, "tau": cfg.tau, "n_w": round(n_w, 6), "geometry": cfg.geometry, "gamma": cfg.gamma,
            "prototype_anchors": cfg.prototype_anchors}


def design_prototypes(counts, cfg: TrainConfig, cache: str | Path) -> dict:
    """The block prototype Gram whose optimal G_M is closest to ``cfg``'s G_* (:func:`design_key`), read from the
    JSON list ``cache`` when designed before (so every machine trains the same prototypes), else designed and
    appended.  Returns the design (``best_cosines``, the distances with G_w = G_* and with the design, ...)."""
    from ufm.design import best_block_prototypes

    cache = Path(cache)
    key = design_key(counts, cfg)
    designs = read_json(cache) if cache.is_file() else []
    if not isinstance(designs, list) or not all(isinstance(d, dict) and "key" in d and "best_cosines" in d
                                                for d in designs):
        raise ValueError(f"{cache} is not a list of prototype designs (key, best_cosines, ...); move it away")
    for d in designs:
        if d["key"] == key:
            return d
    found = best_block_prototypes(key["counts"], cfg.tau, key["n_w"], cfg.g_star(counts), cfg.prototype_anchors,
                                  max_evals=60)
    design = {"key": key, **{k: found[k] for k in ("best_cosines", "g_star_cosines", "distance_g_star",
                                                    "distance_best", "best_status", "solves")}}
    write_json(cache, [*designs, design])
    return design


@dataclass
class StudyPlan:
    """What :func:`plan_study` found: every run of the study, the records already there, the runs left
    ({name: config}) and the prototype design (None without the designed arm)."""

    runs: dict
    recorded: list
    left: dict
    design: dict | None


# Fields the study sets itself (per arm, or by --seeds: an override would be silently replaced) or fixes (the data
# set is the setting's; the arms compare prototypes under SCL on STEP counts, where majority and minority are two
# groups): none may be overridden.
STUDY_FIELDS = ("seed", "geometry", "gamma", "prototype_cosines", "dataset", "loss", "profile")


def plan_study(setting: str, arms: list[str], seeds: list[int], summaries: str | Path, out: str | Path,
               overrides: Mapping | None = None) -> StudyPlan:
    """Plan (or continue) ``setting`` over ``arms`` x ``seeds``: design the prototypes of the designed arm (or
    read the design recorded under ``summaries``), skip the runs recorded under ``summaries``, record the runs
    finished in ``out`` but not yet recorded; the rest are trained by :func:`ufm.deep.runs.train_study` (the
    engine: checked against the data before any trains, run folders ``out/<arm>/seed=<s>``, killed runs resume)."""
    from ufm.deep.plan import run_state
    from ufm.deep.train import load_data, select_data
    from ufm.devices import resolve_device
    from ufm.runio import check_out_dir

    check_out_dir(summaries, "--summaries", run_folder=False)  # before anything trains: records must be writable
    check_out_dir(out, "--out", run_folder=False)
    check_out_dir(Path(summaries) / "report", "--summaries report folder", run_folder=False)
    overrides = dict(overrides or {})
    _check_overrides(overrides, arms)
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"the seeds must be distinct non-negative integers, got {seeds}")
    # what the runs will be, before any data is read or design solved: options without effect, a missing device
    sketch = study_runs(setting, arms, seeds[:1], overrides, cosines=(0.0, 0.0, 0.0))
    refuse_without_effect(list(sketch.values()), {}, given=list(overrides), what="runs")
    resolve_device(next(iter(sketch.values())).device)
    design = None
    designed = [a for a in arms if ARMS[a].designed]
    if designed:
        cfg = sketch[f"{designed[0]}/seed={seeds[0]}"]
        counts = select_data(cfg, *load_data(cfg))[2]
        design = design_prototypes(counts, cfg, Path(summaries) / "design.json")
    cosines = tuple(design["best_cosines"]) if design else None
    runs = study_runs(setting, arms, seeds, overrides, cosines=cosines)
    # every record already there must be a run of this same study (the report pairs them all), not only those asked
    others = {}
    for arm, by_seed in load_records(summaries).get(setting, {}).items():
        if arm in ARMS and not (ARMS[arm].designed and cosines is None):  # else its design is checked when asked
            others.update({name: cfg for name, cfg in study_runs(setting, [arm], sorted(by_seed), overrides,
                                                                   cosines=cosines).items() if name not in runs})
    pending(others, summaries, setting)
    todo = pending(runs, summaries, setting)
    recorded = [name for name in runs if name not in todo]
    left: dict = {}
    for name, cfg in todo.items():  # runs finished in out but not yet recorded are recorded now
        folder = Path(out) / name
        if run_state(cfg, folder, "choose another --out (or the --set values that trained it)") == "done":
            save_record(summaries, setting, name, cfg, read_json(folder / "summary.json"))
            recorded.append(name)
        else:
            left[name] = cfg
    return StudyPlan(runs, recorded, left, design)


def _check_overrides(overrides: Mapping, arms: list[str]) -> None:
    """Refuse overrides the study would replace or that would empty its comparison (see :data:`STUDY_FIELDS`)."""
    from ufm.errors import FieldError

    fixed = [f for f in STUDY_FIELDS if f in overrides]
    if fixed:
        raise FieldError(f"{{{fixed[0]}}} is set by the study (its arms, seeds and setting); drop it")
    if "n_w" in overrides:
        if overrides["n_w"] <= 0:
            raise FieldError("{n_w} must be > 0: every arm but none compares prototypes (none has n_w = 0 already)")
        if all(a == "none" for a in arms):
            raise FieldError("{n_w} has no effect on the arm none (no prototypes); drop it or add prototype arms")


def record_path(summaries: str | Path, setting: str, name: str) -> Path:
    """Where the record of run ``<arm>/seed=<s>`` of ``setting`` lives."""
    return Path(summaries) / setting / f"{name}.json"


def save_record(summaries: str | Path, setting: str, name: str, cfg: TrainConfig, summary: dict) -> Path:
    """Write a finished run's record (config + summary, without its local folder) for committing."""
    path = record_path(summaries, setting, name)
    write_json(path, {"config": cfg.to_dict(), "summary": {k: v for k, v in summary.items() if k != "run_folder"}})
    return path


def pending(runs: Mapping[str, TrainConfig], summaries: str | Path, setting: str) -> dict[str, TrainConfig]:
    """The runs without a record; a record of another configuration (apart from where it ran) is refused, naming
    the fields that differ."""
    left = {}
    for name, cfg in runs.items():
        path = record_path(summaries, setting, name)
        if not path.is_file():
            left[name] = cfg
            continue
        differ = differences(read_json(path)["config"], cfg, ignore=PLACE)
        if differ:
            raise ValueError(f"{path} records run {name} with another configuration: {', '.join(differ)}; use "
                             "another --summaries folder for a changed study, or move that record away")
    return left


def load_records(summaries: str | Path) -> dict[str, dict[str, dict[int, dict]]]:
    """Every record under ``summaries``: setting -> arm -> seed -> {"config", "summary"}.  Only the study's own
    records are read: each ``<setting>/<arm>/seed=<s>.json`` must name a setting and an arm of the study and hold
    what :func:`save_record` writes, with that arm's, setting's and seed's config (so no record is filed under
    another arm or seed); anything else is refused (ValueError naming the file or folder and why).  Files not
    named ``seed=*.json`` (notes, ...) are not read."""
    import re

    out: dict[str, dict[str, dict[int, dict]]] = {}
    for path in sorted(Path(summaries).glob("*/*/seed=*.json")):
        match = re.fullmatch(r"seed=(0|[1-9][0-9]*)", path.stem)
        if not match:
            raise ValueError(f"{path} is not a study record name (seed=<number>.json); move it out of {summaries}")
        setting, arm, seed = path.parent.parent.name, path.parent.name, int(match.group(1))
        if setting not in SETTINGS:
            raise ValueError(f"{path.parent.parent} is not a setting of the study ({', '.join(SETTINGS)}), yet holds "
                             f"{path.relative_to(path.parent.parent)}; move it out of {summaries}")
        if arm not in ARMS:
            raise ValueError(f"{path.parent} is not an arm of the study ({', '.join(ARMS)}), yet holds {path.name}; "
                             f"move it out of {summaries}")
        record = read_json(path)
        _check_record(path, record, setting, arm, seed, summaries)
        out.setdefault(setting, {}).setdefault(arm, {})[seed] = record
    return out


def _check_record(path: Path, record, setting: str, arm: str, seed: int, summaries: str | Path) -> None:
    """Refuse ``record`` unless it is what :func:`save_record` writes for run ``<arm>/seed=<seed>`` of ``setting``:
    the arm's own fields, the setting's fixed fields and the seed as :func:`study_runs` sets them."""
    summary = record.get("summary") if isinstance(record, dict) else None
    config = record.get("config") if isinstance(record, dict) else None
    if (not isinstance(config, dict) or not isinstance(summary, dict) or set(record) != {"config", "summary"}
            or not all(k in summary for k in ("linear_probe_accuracy", "counts", "per_class_accuracy", "final"))):
        raise ValueError(f"{path} is not a study record (a config and the summary of a finished ufm train run); "
                         f"move it out of {summaries}")
    try:
        saved = TrainConfig.from_dict(config)
        cosines = saved.prototype_cosines if ARMS[arm].designed else None
        others = {k: v for k, v in saved.to_dict().items() if k not in STUDY_FIELDS}
        expected = study_runs(setting, [arm], [seed], others, cosines=cosines)[f"{arm}/seed={seed}"]
        differ = differences(config, expected, ignore=PLACE)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path} is not a study record: its config is refused ({err}); move it out of "
                         f"{summaries}") from None
    if differ:
        raise ValueError(f"{path} is filed as {setting} {arm}/seed={seed} but its config is not that run's: "
                         f"{', '.join(differ)} (saved: the record, asked: the study); move it out of {summaries}")


def _minority_mean(values: list[float], counts: list[int]) -> float:
    """Mean of ``values [k]`` over the minority classes (:func:`ufm.imbalance.minority_mask`); NaN without any."""
    from ufm.imbalance import minority_mask

    small = [v for v, minor in zip(values, minority_mask(counts).tolist()) if minor]
    return sum(small) / len(small) if small else float("nan")


def measures(record: dict) -> dict[str, float]:
    """One run's measures: balanced test accuracy by linear probe and by nearest class centre (the test sets are
    balanced), the same over the minority classes, and the train-side geometry."""
    s = record["summary"]
    per_class, counts, final = s["per_class_accuracy"], s["counts"], s["final"]
    return {
        "probe_accuracy": s["linear_probe_accuracy"],
        "ncc_accuracy": final.get("ncc_accuracy"),
        "minority_probe_accuracy": _minority_mean(per_class["probe"], counts),
        "minority_ncc_accuracy": _minority_mean(per_class["ncc"], counts),
        "distance": final.get("distance"),
        "angle_majority": final.get("angle_majority"),
        "angle_minority": final.get("angle_minority"),
    }


MEASURES = ("probe_accuracy", "minority_probe_accuracy", "ncc_accuracy", "minority_ncc_accuracy", "distance",
            "angle_majority", "angle_minority")
COMPARED = ("probe_accuracy", "minority_probe_accuracy", "ncc_accuracy", "minority_ncc_accuracy")


def _common(record: dict) -> dict:
    """What every run of one study shares: its config apart from the seed, the arm's own fields and where it ran."""
    own = {"n_w", *STUDY_FIELDS, *PLACE}
    return {k: v for k, v in TrainConfig.from_dict(record["config"]).to_dict().items() if k not in own}


def _check_one_study(setting: str, arms: Mapping[str, Mapping[int, dict]]) -> None:
    """Refuse records of one setting trained with different settings (other epochs, lr, ...): their pairs would
    compare more than the prototypes.  The n_w of the prototype arms must agree too."""
    first, first_nw = None, None
    for arm, seeds in arms.items():
        for seed, record in seeds.items():
            common = _common(record)
            if first is None:
                first = (f"{arm}/seed={seed}", common)
            elif common != first[1]:
                differ = sorted(k for k in common if common[k] != first[1].get(k))
                raise ValueError(f"the records of {setting} were trained with different settings: {arm}/seed={seed} "
                                 f"and {first[0]} differ in {', '.join(differ)}; keep one study per --summaries folder")
            n_w = record["config"].get("n_w")
            if arm != "none" and n_w is not None:
                if first_nw is None:
                    first_nw = (f"{arm}/seed={seed}", n_w)
                elif n_w != first_nw[1]:
                    raise ValueError(f"the records of {setting} use different n_w: {arm}/seed={seed} has {n_w}, "
                                     f"{first_nw[0]} has {first_nw[1]}; keep one study per --summaries folder")


def _defined(value) -> bool:
    return value is not None and math.isfinite(value)


def report(records: Mapping[str, Mapping[str, Mapping[int, dict]]], level: float = 0.95,
           effect: float = 0.01) -> list[dict]:
    """One row per (setting, arm): seeds, each measure's mean and ``level`` interval over seeds, and for the
    accuracies the paired difference against the ETF arm (same seeds) with its interval and p-value, the smallest
    difference this many seeds detects (power 0.8) and the seeds needed to detect ``effect``."""
    from ufm.stats import detectable_effect, has_spread, mean_ci, paired_difference, seeds_needed  # (numpy, scipy)

    rows = []
    for setting, arms in records.items():
        _check_one_study(setting, arms)
        per_arm = {arm: {seed: measures(r) for seed, r in seeds.items()} for arm, seeds in arms.items()}
        for arm in [a for a in ARMS if a in per_arm] + sorted(set(per_arm) - set(ARMS)):
            runs = per_arm[arm]
            row: dict = {"setting": setting, "arm": arm, "gamma": ARMS[arm].gamma if arm in ARMS else None,
                         "seeds": sorted(runs)}
            for m in MEASURES:  # over the seeds where the measure is defined (no angle within a group of one)
                values = [v[m] for v in runs.values() if _defined(v[m])]
                ci = mean_ci(values, level) if values else None
                row[m] = ({"mean": ci.mean, "low": ci.low, "high": ci.high, "n": ci.n} if ci else
                          {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0})
            if arm != "etf" and "etf" in per_arm:
                for m in COMPARED:
                    mine = {s: v[m] for s, v in runs.items() if _defined(v[m])}
                    theirs = {s: v[m] for s, v in per_arm["etf"].items() if _defined(v[m])}
                    if not set(mine) & set(theirs):
                        continue
                    d = paired_difference(mine, theirs, level)
                    detect = detectable_effect(d.std, d.n) if has_spread(d) else math.nan
                    try:
                        need = seeds_needed(effect, d.std) if has_spread(d) else None
                    except ValueError:  # more seeds than the search goes to: no practical number
                        need = None
                    row[f"{m}_vs_etf"] = {"mean": d.mean, "low": d.low, "high": d.high, "p_value": d.p_value,
                                          "pairs": d.n, "detectable": detect, "seeds_for_effect": need,
                                          "effect": effect}
            rows.append(row)
    return rows


def flat_rows(rows: list[dict]) -> list[dict]:
    """The report's rows with one column per number (``probe_accuracy_mean``, ``..._low``, ...), for CSV."""
    out = []
    for row in rows:
        flat = {}
        for key, value in row.items():
            if isinstance(value, dict):
                flat.update({f"{key}_{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        out.append(flat)
    return out


def _ci(cell: dict, scale: float = 1.0, digits: int = 1) -> str:
    mean, low, high = (cell[k] * scale for k in ("mean", "low", "high"))
    if mean != mean:  # not defined in any run (e.g. the angle within a group of one class)
        return "-"
    if high != high:  # one seed: no interval
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def markdown_table(rows: list[dict], level: float = 0.95) -> str:
    """The report as a Markdown table: accuracies in percent with their ``level`` intervals over seeds, the paired
    differences against ETF prototypes (percentage points, the number of pairs, p-value), distance and minority angle."""
    pct = f"{100 * level:g}%"
    head = (f"| setting | arm | seeds | probe acc % [{pct}] | minority probe acc % | probe vs ETF (pp; pairs, p) | "
            "minority vs ETF (pp; pairs, p) | NCC acc % | minority NCC acc % | distance to the arm's G_* | "
            "angle between minority means (deg) |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for r in rows:
        diffs = []
        for m in ("probe_accuracy", "minority_probe_accuracy"):
            d = r.get(f"{m}_vs_etf")
            if d is None:
                diffs.append("-")
                continue
            p = f", {_p(d['p_value'])}" if d["p_value"] == d["p_value"] else ""
            diffs.append(f"{_ci(d, 100)}; {d['pairs']}{p}")
        lines.append(f"| {r['setting']} | {r['arm']} | {len(r['seeds'])} | {_ci(r['probe_accuracy'], 100)} | "
                     f"{_ci(r['minority_probe_accuracy'], 100)} | {diffs[0]} | {diffs[1]} | "
                     f"{_ci(r['ncc_accuracy'], 100)} | {_ci(r['minority_ncc_accuracy'], 100)} | "
                     f"{_ci(r['distance'], 1, 3)} | {_ci(r['angle_minority'])} |")
    return head + "\n".join(lines) + "\n"


def write_report(summaries: str | Path, out: str | Path, level: float = 0.95) -> dict:
    """The report (``report.json``: nested rows), its table (``table.json`` and ``table.csv`` flat, ``table.md``) and the figure (``accuracy_vs_gamma.png``) of every
    record under ``summaries``, written into ``out``; returns ``{"rows", "files"}``."""
    from ufm.folders import check_own_folder
    from ufm.plots import save_figure, study_figure
    from ufm.runio import write_csv

    check_own_folder(out, holds="the report's files", example="docs/results/data/study/report")
    records = load_records(summaries)
    if not records:
        raise ValueError(f"{summaries} holds no study records (<setting>/<arm>/seed=<s>.json); run ufm study first")
    rows = report(records, level)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", rows)
    write_json(out / "table.json", flat_rows(rows))  # the CSV's twin: one number per column
    write_csv(out / "table.csv", flat_rows(rows))
    (out / "table.md").write_text(markdown_table(rows, level))
    save_figure(study_figure(rows, level=level), out / "accuracy_vs_gamma.png")
    return {"rows": rows, "files": [str(out / n) for n in ("report.json", "table.json", "table.csv", "table.md",
                                                               "accuracy_vs_gamma.png")]}
