"""What one cell of a distance map costs, k = 100, full batch, tau 0.1, majority classes of 200, ETF target:
STEP (two distinct counts: the symmetry-reduced interior point applies) against long-tail (about 90 distinct
counts: only Burer-Monteiro is practical), both solved by Burer-Monteiro too, side by side in one process.

    python benchmarks/bench_maps.py            # prints one row per (profile, solver) and the ratios

The reduced interior point on long-tail k = 100 (about 90 groups) is not timed here: one such solve was still
running after more than 290 s on the 2-core machine when it was killed (see README, "What prototypes buy").
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ufm.maps import MapCell, distance_cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--n-w", type=float, nargs="+", default=[0.0, 10.0, 1000.0])
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    for profile, solver in (("step", "auto"), ("step", "BM"), ("long-tail", "BM")):
        times, dists = [], []
        for n_w in args.n_w:
            cell = MapCell(ratio=10.0, tau=0.1, n_w=n_w, k=args.k, profile=profile, solver=solver, cross_check=False)
            start = time.perf_counter()
            dists.append(distance_cell(cell)["distance"])
            times.append(time.perf_counter() - start)
        rows.append({"profile": profile, "solver": solver, "seconds_per_cell": float(np.mean(times)),
                     "seconds": times, "distances": dists})
        print(f"k {args.k} {profile:9s} {solver:4s}: {np.mean(times):.2f} s per cell (n_w {args.n_w}), "
              f"distances {[round(d, 4) for d in dists]}", flush=True)
    base = rows[0]["seconds_per_cell"]
    for r in rows[1:]:
        print(f"{r['profile']} {r['solver']} / step auto: {r['seconds_per_cell'] / base:.1f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
