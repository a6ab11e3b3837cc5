"""Figure 1 over seeds: one small JSON per seed from a preset's run folders, and the table of mean +- std.

    python scripts/fig1_seeds.py extract runs/cpu-fig1-cifar-s1 docs/results/data/cpu-fig1-cifar-seed1.json
    python scripts/fig1_seeds.py table docs/results/data/cpu-fig1-cifar-seed*.json

``extract`` reads each run's ``summary.json`` (written by ``ufm train`` when a run finishes) and keeps the final
geometry and accuracies; ``table`` prints a markdown table with the mean and the sample standard deviation (n - 1)
over the seed files of every measure, for the runs present in every file.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

FINAL = ("distance", "distance_centered", "angle_majority", "angle_minority", "angle_across", "nc1",
         "train_ncc_accuracy", "ncc_accuracy", "prototype_accuracy")
COLUMNS = (("distance", "distance to G_*", 3), ("distance_centered", "centred", 3),
           ("angle_majority", "angle majority", 1), ("angle_minority", "angle minority", 1),
           ("angle_across", "angle across", 1), ("nc1", "NC1", 3), ("train_ncc_accuracy", "train NCC acc", 3),
           ("ncc_accuracy", "test NCC acc", 3), ("prototype_accuracy", "prototype acc", 3),
           ("linear_probe_accuracy", "probe acc", 3))


def extract(preset_folder: Path) -> dict:
    """run name -> its final measures, from every finished run (a folder with summary.json) of a preset folder."""
    out = {}
    for summary_file in sorted(preset_folder.glob("*/summary.json")):
        s = json.loads(summary_file.read_text())
        out[summary_file.parent.name] = {"epochs": s["epochs"], **{k: s["final"].get(k) for k in FINAL},
                                         "linear_probe_accuracy": s["linear_probe_accuracy"],
                                         "train_seconds": s["train_seconds"], "counts": s["counts"]}
    if not out:
        raise SystemExit(f"error: no finished run (RUN/summary.json) in {preset_folder}")
    return out


def table(files: list[Path]) -> str:
    seeds = [json.loads(f.read_text()) for f in files]
    runs = [r for r in seeds[0] if all(r in s for s in seeds)]
    head = "| run | seeds | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(COLUMNS)]
    for run in runs:
        cells = []
        for key, _, digits in COLUMNS:
            values = [s[run][key] for s in seeds]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{statistics.fmean(values):.{digits}f} +- {sd:.{digits}f}")
        lines.append(f"| {run} | {len(seeds)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "extract":
        Path(argv[2]).write_text(json.dumps(extract(Path(argv[1])), indent=2) + "\n")
    elif len(argv) >= 2 and argv[0] == "table":
        print(table([Path(a) for a in argv[1:]]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
