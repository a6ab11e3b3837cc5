"""Start-up time of the ``ufm`` command: what answers before any work, side by side with ``import torch``.

Each row is a fresh process started in the source tree that holds this script (so its ``ufm`` is the one measured),
timed from start to exit (wall clock), the median of ``--repeats`` runs taken in turns (one run of every row, then the next round), so that a neighbour's load falls on every row alike:

- ``ufm --version``, ``ufm --help``, ``ufm simulate --help``;
- a refusal of bad input (``ufm simulate --k 1``: exit code 2, one ``error:`` line);
- ``python -c "import torch"``: what every one of them cost before the commands imported torch only when they
  compute (the goal: each row under half of it);
- ``python -c pass``: the interpreter alone.

The 1-minute load average before and after is printed: a machine busy with other processes makes every row slower.

    python benchmarks/bench_startup.py                 # a table (markdown)
    python benchmarks/bench_startup.py --repeats 9 --json startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands() -> dict[str, list[str]]:
    """{row label: the command line} (``ufm`` through this interpreter, as its console script runs it)."""
    ufm = [sys.executable, "-c", "import sys; from ufm.cli.main import run; sys.argv[0] = 'ufm'; sys.exit(run())"]
    return {
        "ufm --version": [*ufm, "--version"],
        "ufm --help": [*ufm, "--help"],
        "ufm simulate --help": [*ufm, "simulate", "--help"],
        "ufm simulate --k 1 (refused)": [*ufm, "simulate", "--k", "1"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        'python -c "pass"': [sys.executable, "-c", "pass"],
    }


def wall_time(cmd: list[str]) -> tuple[float, int]:
    """Seconds from start to exit of ``cmd`` (its output discarded) and its exit code."""
    start = time.perf_counter()
    code = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT).returncode
    return time.perf_counter() - start, code


def measure(repeats: int) -> list[dict]:
    """One row per command: the median, min and max wall seconds of ``repeats`` runs and its exit code."""
    cmds = commands()
    times: dict[str, list[float]] = {label: [] for label in cmds}
    codes: dict[str, int] = {}
    for _ in range(repeats):
        for label, cmd in cmds.items():
            seconds, codes[label] = wall_time(cmd)
            times[label].append(seconds)
    torch_s = statistics.median(times['python -c "import torch"'])
    return [{"command": label, "median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),
             "exit_code": codes[label], "of_import_torch": statistics.median(t) / torch_s} for label, t in times.items()]


def machine() -> str:
    """CPU model and the cores this process may use."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from ufm.threads import usable_cores  # torch-free: the benchmark's own start-up is not what it measures

    return f"{model}, {usable_cores()} cores"


def table(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = ["| command | median (s) | min - max (s) | of `import torch` | exit code |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['command']}` | {r['median_s']:.2f} | {r['min_s']:.2f} - {r['max_s']:.2f} | "
                     f"{r['of_import_torch']:.0%} | {r['exit_code']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (the median is reported)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and the machine here")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    load_before = os.getloadavg()[0]
    rows = measure(args.repeats)
    load_after = os.getloadavg()[0]
    info = {"machine": machine(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
            "repeats": args.repeats, "load_1min_before": load_before, "load_1min_after": load_after,
            "ufm_on_path": shutil.which("ufm")}
    print(f"{info['machine']}, Python {info['python']}, {info['date']}; median of {args.repeats} runs each; "
          f"1-minute load average {load_before:.1f} before, {load_after:.1f} after")
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps({**info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
