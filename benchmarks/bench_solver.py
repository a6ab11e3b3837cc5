"""Solve time, peak memory and reported accuracy of the convex solver against the number of classes k,
and the CLI at k = 1000.

Problem A (cost): STEP counts (half of the classes minority, n = 50, R = 10), one full batch, tau = 0.1, ETF
prototypes with n_w = 10.  Problem B (issue 12's accuracy case): STEP 500 vs 5, tau = 1, n_w = 0.  Each case
runs in a fresh process so that its peak resident memory (``ru_maxrss``) is its own; a case over
``--timeout`` seconds is reported as such.

    python benchmarks/bench_solver.py                     # everything below (a few minutes on 2 cores)
    python benchmarks/bench_solver.py --only cli          # only the CLI timing at k = 1000
    python benchmarks/bench_solver.py --only unreduced    # long-tail k = 50, 100: Burer-Monteiro + factor polish
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np

CASE = r"""
import json, resource, sys, time
import numpy as np
from ufm.geometry import etf_gram
from ufm.imbalance import step_counts
from ufm.solver import solve_bm, solve_collapsed, solve_grouped
k, form, problem = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if problem == "A":
    counts, tau, g, n_w = step_counts(k, 50, 10).numpy(), 0.1, etf_gram(k).numpy(), 10.0
elif problem in ("C", "D"):
    from ufm.imbalance import long_tail_counts
    counts, tau = long_tail_counts(k, 500, 10).numpy(), 0.5
    g, n_w = (etf_gram(k).numpy(), 10.0) if problem == "D" else (None, 0.0)
else:
    counts, tau, g, n_w = step_counts(k, 500, 100).numpy(), 1.0, None, 0.0
start = time.perf_counter()
if form == "grouped":
    r = solve_grouped(counts, tau, g, n_w)
elif form == "grouped-unpolished":
    r = solve_grouped(counts, tau, g, n_w, polish=False)
elif form == "bm":
    r = solve_bm(counts[None], tau, g, n_w)
elif form == "bm-unpolished":
    r = solve_bm(counts[None], tau, g, n_w, polish=False)
else:
    r = solve_collapsed(counts[None], tau, g, n_w)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "solve": r.solve_s, "polish": r.polish_s, "peak_mb": peak, "status": r.status,
                  "iterations": r.iterations, "newton": r.newton_iterations, "gap": r.relative_gap,
                  "accuracy": r.entry_accuracy, "source": r.accuracy_source,
                  "blocks": [r.gram[0, 1], r.gram[-1, -2], r.gram[0, -1]], "note": r.note,
                  "gram": r.gram.tolist() if k <= 100 else None}))
"""


def run(k: int, form: str, problem: str, timeout: float) -> dict | None:
    try:
        out = subprocess.run([sys.executable, "-c", CASE, str(k), form, problem], capture_output=True,
                             text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def cost_table(timeout: float) -> None:
    print("# A: STEP counts (n = 50, R = 10), full batch, tau = 0.1, ETF prototypes, n_w = 10\n")
    print("| k | method | status | iterations + Newton | solve (s) | polish + certificate (s) | peak memory (MB) "
          "| relative certified gap | entry accuracy (estimate) | max entry difference to grouped |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    reference = {}
    for form, label, ks in (("grouped", "grouped (symmetry-reduced, Clarabel + Newton)", (10, 20, 50, 100, 1000)),
                            ("collapsed", "interior point (Clarabel, one group per class)", (10, 20)),
                            ("bm", "Burer-Monteiro + certificate", (10, 20, 50, 100, 200))):
        for k in ks:
            r = run(k, form, "A", timeout)
            if r is None:
                print(f"| {k} | {label} | over {timeout:g} s | | | | | | | |")
                continue
            if form == "grouped" and r["gram"] is not None:
                reference[k] = np.array(r["gram"])
            diff = (f"{np.abs(np.array(r['gram']) - reference[k]).max():.1e}"
                    if k in reference and form != "grouped" and r["gram"] is not None else "")
            print(f"| {k} | {label} | {r['status']} | {r['iterations']} + {r['newton']} | {r['solve']:.3f} | "
                  f"{r['polish']:.3f} | {r['peak_mb']:.0f} | {fmt(r['gap'], '.0e')} | "
                  f"{fmt(r['accuracy'], '.0e')} ({r['source']}) | {diff} |")


def accuracy_table(timeout: float) -> None:
    print("\n# B: STEP 500 vs 5 (half minority), full batch, tau = 1, n_w = 0: minority cosine, "
          "polished and not\n")
    print("| k | method | majority cosine | minority cosine | across | entry accuracy (estimate) | "
          "unpolished minority cosine | unpolished - polished |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for k in (10, 100, 1000):
        p, u = run(k, "grouped", "B", timeout), run(k, "grouped-unpolished", "B", timeout)
        a, b, c = p["blocks"]
        print(f"| {k} | grouped | {a:+.10f} | {b:+.10f} | {c:+.10f} | {fmt(p['accuracy'], '.0e')} | "
              f"{u['blocks'][1]:+.10f} | {np.abs(np.array(u['blocks']) - np.array(p['blocks'])).max():.1e} |")


def unreduced_table(timeout: float) -> None:
    print("\n# C/D: long-tail counts (n = 500, R = 10), full batch, tau = 0.5, no prototypes (C) or ETF n_w = 10 (D):"
          " no symmetry; Burer-Monteiro, then the factor-form Newton polish\n")
    print("| k | problem | status | BM solve (s) | polish + certificate (s) | peak memory (MB) | relative certified gap "
          "| entry accuracy (estimate) | max entry change by the polish | note |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---|")
    for problem, ks in (("C", (50, 100)), ("D", (50,))):
        for k in ks:
            r, u = run(k, "bm", problem, timeout), run(k, "bm-unpolished", problem, timeout)
            if r is None or u is None:
                print(f"| {k} | {problem} | over {timeout:g} s | | | | | | | |")
                continue
            change = np.abs(np.array(r["gram"]) - np.array(u["gram"])).max()
            print(f"| {k} | {problem} | {r['status']} | {r['solve']:.2f} | {r['polish']:.2f} | {r['peak_mb']:.0f} | "
                  f"{fmt(r['gap'], '.0e')} | {fmt(r['accuracy'], '.0e')} ({r['source']}) | {change:.1e} | "
                  f"{r['note']} |")


def cli_table() -> None:
    print("\n# CLI: ufm solve --counts 500x500,5x500 --tau 1 (k = 1000), one process each\n")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import ufm.cli.main, ufm.solver, cvxpy"], check=True)
    imports = time.perf_counter() - start
    print(f"(imports alone, python -c 'import ufm.cli.main, ufm.solver, cvxpy': {imports:.1f} s wall)\n")
    print("| output | solve (s) | polish + certificate (s) | whole command, wall (s) |")
    print("|---|---:|---:|---:|")
    for extra in (["--json"], []):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            command = [sys.executable, "-c", "from ufm.cli.main import app; app()", "solve",
                       "--counts", "500x500,5x500", "--tau", "1", "--out", folder, *extra]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            data = json.loads(open(f"{folder}/solution.json").read())
        del out
        print(f"| {'--json' if extra else 'table'} | {data['solve_s']:.3f} | {data['polish_s']:.3f} | {wall:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--only", choices=("cost", "accuracy", "unreduced", "cli"), help="one table only")
    args = parser.parse_args()
    if args.only in (None, "cost"):
        cost_table(args.timeout)
    if args.only in (None, "accuracy"):
        accuracy_table(args.timeout)
    if args.only in (None, "unreduced"):
        unreduced_table(args.timeout)
    if args.only in (None, "cli"):
        cli_table()


if __name__ == "__main__":
    main()
