"""Is collapse optimal? One counts pattern (default 50x5,5x5, N = 275), full batch, ETF prototypes, over
(n_w, tau): the certified collapsed optimum, lifted to N samples and certified in the N x N problem, against
the uncollapsed Burer-Monteiro optimum (ufm.collapse.collapse_cell; `ufm collapse-map` maps profiles and R).

    OMP_NUM_THREADS=1 python benchmarks/collapse_map.py [--counts 50x5,5x5] [--n-w 1 --tau 0.1] [--json]
"""

from __future__ import annotations

import argparse
import json

from ufm.collapse import CollapseCell, collapse_cell
from ufm.imbalance import parse_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="50x5,5x5")
    parser.add_argument("--n-w", type=float, action="append")
    parser.add_argument("--tau", type=float, action="append")
    parser.add_argument("--batch-anchors", action="store_true", help="prototype copies are not anchors")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts = tuple(parse_counts(args.counts).tolist())
    rows = [collapse_cell(CollapseCell(counts, tau, n_w, not args.batch_anchors, seeds=tuple(range(args.seeds))))
            for tau in (args.tau or [0.1, 0.5]) for n_w in (args.n_w or [0, 1, 2, 5, 10, 100])]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| n_w | tau | collapsed optimum | full BM objective | collapsed - full (relative) | full BM certified gap "
          "| lifted certified gap | lifted dual min eigenvalue | min within-class cosine, majority / minority "
          "| verdict | s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['n_w']:g} | {r['tau']:g} | {r['collapsed']:.10f} | {r['full']:.10f} | "
              f"{r['collapsed'] - r['full']:+.2e} ({r['relative_difference']:+.1e}) | {r['full_gap']:.1e} | "
              f"{r['lifted_gap']:.1e} | {r['lifted_dual_min_eigenvalue']:+.1e} | "
              f"{r['min_cos_majority']:.6f} / {r['min_cos_minority']:.6f} | {r['verdict']} | {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
