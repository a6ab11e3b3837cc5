"""Is collapse optimal? The certified full (uncollapsed) optimum by Burer-Monteiro against the certified
collapsed optimum, full batch, counts 50x5,5x5 (N = 275), ETF prototypes, over (n_w, tau).

A cell is "refuted" when the feasible uncollapsed point found is below the collapsed optimum by more than
the collapsed certified gap plus 1e-11 of the objective (float64 round-off of the sum); else collapse is
optimal up to the full solve's certified gap.  About 1 minute on one core.

    OMP_NUM_THREADS=1 python benchmarks/collapse_map.py [--n-w 1 --tau 0.1] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ufm.geometry import make_gram
from ufm.imbalance import labels_from_counts, parse_counts
from ufm.solver import solve, solve_full_bm


def cell(counts: str, n_w: float, tau: float, seeds: tuple[int, ...]) -> dict:
    n = parse_counts(counts)
    labels = labels_from_counts(n).numpy()
    g = make_gram("etf", len(n), n, 1.0).numpy() if n_w > 0 else None
    start = time.perf_counter()
    collapsed = solve(n.unsqueeze(0).numpy(), tau, g, n_w)
    full = solve_full_bm(labels, [np.arange(len(labels))], tau, g, n_w, seeds=seeds)
    diff = collapsed.objective - full.objective
    margin = collapsed.certified_gap + 1e-11 * abs(collapsed.objective)
    counts_per_class = np.bincount(labels)
    w = full.within_class_min
    return {"n_w": n_w, "tau": tau, "collapsed": collapsed.objective, "full": full.objective,
            "collapsed_minus_full": diff, "relative": diff / abs(collapsed.objective),
            "full_certified_gap": full.certified_gap, "collapsed_certified_gap": collapsed.certified_gap,
            "min_cos_majority": float(w[counts_per_class == counts_per_class.max()].min()),
            "min_cos_minority": float(w[counts_per_class == counts_per_class.min()].min()),
            "gm_max_difference": float(np.abs(full.class_means - collapsed.gram).max()),
            "verdict": "refuted" if diff > margin else "optimal (up to the full gap)",
            "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="50x5,5x5")
    parser.add_argument("--n-w", type=float, action="append")
    parser.add_argument("--tau", type=float, action="append")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [cell(args.counts, n_w, tau, tuple(range(args.seeds)))
            for tau in (args.tau or [0.1, 0.5]) for n_w in (args.n_w or [0, 0.5, 1, 2, 10])]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| n_w | tau | collapsed optimum | full BM objective | collapsed - full (relative) | full certified gap "
          "| min within-class cosine, majority / minority | max abs G_M difference | verdict | s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['n_w']:g} | {r['tau']:g} | {r['collapsed']:.10f} | {r['full']:.10f} | "
              f"{r['collapsed_minus_full']:+.2e} ({r['relative']:+.1e}) | {r['full_certified_gap']:.1e} | "
              f"{r['min_cos_majority']:.6f} / {r['min_cos_minority']:.6f} | {r['gm_max_difference']:.1e} | "
              f"{r['verdict']} | {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
