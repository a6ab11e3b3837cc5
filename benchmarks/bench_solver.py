"""Solve time, compile time and peak memory of the convex solver against the number of classes k.

Problem: STEP counts (half of the classes minority, n = 50, R = 10), one full batch, tau = 0.1, ETF
prototypes with n_w = 10.  Each case runs in a fresh process so that its peak resident memory
(``ru_maxrss``) is its own; a case over ``--timeout`` seconds is reported as such.

    python benchmarks/bench_solver.py                     # collapsed k = 10, 20, 50, 100; reduced up to 1000
    python benchmarks/bench_solver.py --timeout 600       # give the large unreduced solves more time
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASE = r"""
import json, resource, sys, time
import numpy as np
from ufm.geometry import etf_gram
from ufm.imbalance import step_counts
from ufm.solver import solve_collapsed, solve_grouped
k, reduced = int(sys.argv[1]), sys.argv[2] == "1"
counts = step_counts(k, 50, 10).numpy()
g = etf_gram(k).numpy()
start = time.perf_counter()
r = (solve_grouped(counts, 0.1, g, 10.0) if reduced else solve_collapsed(counts[None], 0.1, g, 10.0))
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "compile": r.compile_s, "solve": r.solve_s, "peak_mb": peak, "status": r.status,
                  "iterations": r.residuals["iterations"], "gram": r.gram[:, [0, -1]].tolist()}))
"""


def run(k: int, reduced: bool, timeout: float) -> dict | None:
    try:
        out = subprocess.run([sys.executable, "-c", CASE, str(k), "1" if reduced else "0"], capture_output=True,
                             text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per case")
    args = parser.parse_args()
    print("# STEP counts (n = 50, R = 10), full batch, tau = 0.1, ETF prototypes, n_w = 10; CLARABEL\n")
    print("| k | form | status | iterations | total (s) | compile (s) | peak memory (MB) |")
    print("|---:|---|---|---:|---:|---:|---:|")
    results = {}
    for k in (10, 20, 50, 100):
        r = run(k, False, args.timeout)
        results[k] = r
        if r is None:
            print(f"| {k} | collapsed | over {args.timeout:g} s | | | | |")
        else:
            print(f"| {k} | collapsed | {r['status']} | {r['iterations']} | {r['wall']:.2f} | {r['compile']:.2f} | {r['peak_mb']:.0f} |")
    for k in (10, 20, 50, 100, 1000):
        r = run(k, True, args.timeout)
        if r is None:
            print(f"| {k} | symmetry-reduced | over {args.timeout:g} s | | | | |")
            continue
        agree = ""
        if results.get(k):
            import numpy as np

            agree = f" (max entry difference to collapsed {np.abs(np.array(r['gram']) - np.array(results[k]['gram'])).max():.1e})"
        print(f"| {k} | symmetry-reduced{agree} | {r['status']} | {r['iterations']} | {r['wall']:.2f} | - | {r['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
