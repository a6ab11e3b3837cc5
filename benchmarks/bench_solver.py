"""Solve time, compile time and peak memory of the convex solver against the number of classes k.

Problem: STEP counts (half of the classes minority, n = 50, R = 10), one full batch, tau = 0.1, ETF
prototypes with n_w = 10.  Each case runs in a fresh process so that its peak resident memory
(``ru_maxrss``) is its own; a case over ``--timeout`` seconds is reported as such.

    python benchmarks/bench_solver.py                     # interior point, Burer-Monteiro, symmetry-reduced
    python benchmarks/bench_solver.py --timeout 600       # give the large unreduced solves more time
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

CASE = r"""
import json, resource, sys, time
import numpy as np
from ufm.geometry import etf_gram
from ufm.imbalance import step_counts
from ufm.solver import solve_bm, solve_collapsed, solve_grouped
k, form = int(sys.argv[1]), sys.argv[2]
counts = step_counts(k, 50, 10).numpy()
g = etf_gram(k).numpy()
start = time.perf_counter()
if form == "reduced":
    r = solve_grouped(counts, 0.1, g, 10.0)
elif form == "bm":
    r = solve_bm(counts[None], 0.1, g, 10.0)
else:
    r = solve_collapsed(counts[None], 0.1, g, 10.0)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "compile": r.compile_s, "solve": r.solve_s, "peak_mb": peak, "status": r.status,
                  "iterations": r.residuals.get("iterations", "-"), "gap": r.residuals.get("relative_gap"),
                  "gram": r.gram.tolist()}))
"""


def run(k: int, form: str, timeout: float) -> dict | None:
    try:
        out = subprocess.run([sys.executable, "-c", CASE, str(k), form], capture_output=True,
                             text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    args = parser.parse_args()
    print("# STEP counts (n = 50, R = 10), full batch, tau = 0.1, ETF prototypes, n_w = 10\n")
    print("| k | form | status | iterations | total (s) | compile (s) | peak memory (MB) | max entry difference to interior point |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    reference = {}
    for form, label, ks in (("collapsed", "interior point (Clarabel)", (10, 20, 50, 100)),
                            ("bm", "Burer-Monteiro + certificate", (10, 20, 50, 100, 200)),
                            ("reduced", "symmetry-reduced (Clarabel)", (10, 20, 50, 100, 1000))):
        for k in ks:
            r = run(k, form, args.timeout)
            if r is None:
                print(f"| {k} | {label} | over {args.timeout:g} s | | | | | |")
                continue
            if form == "collapsed":
                reference[k] = np.array(r["gram"])
            diff = f"{np.abs(np.array(r['gram']) - reference[k]).max():.1e}" if k in reference and form != "collapsed" else ""
            status = r["status"] + (f", certified gap {r['gap']:.0e}" if r.get("gap") is not None else "")
            print(f"| {k} | {label} | {status} | {r['iterations']} | {r['wall']:.2f} | {r['compile']:.2f} | "
                  f"{r['peak_mb']:.0f} | {diff} |")


if __name__ == "__main__":
    main()
