"""The certified optimal geometry of your own class counts, plotted as G_M beside G_*.

    python examples/optimal_geometry.py --counts 30,30,10,5 --tau 0.1 --n-w 10 --out optimal_geometry.png
"""

import argparse

import numpy as np

import ufm
from ufm.plots import gram_heatmaps, save_figure
from ufm.solver import solve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="30,30,10,5", help="samples per class, comma separated")
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--n-w", type=float, default=10.0, help="copies of each ETF prototype in the batch")
    parser.add_argument("--out", default="optimal_geometry.png")
    args = parser.parse_args()

    counts = np.array([int(c) for c in args.counts.split(",")])
    g_star = ufm.etf_gram(len(counts)).numpy()
    grams = {}
    for n_w in (0.0, args.n_w):  # one full batch of all samples, without and with prototypes
        result = solve(counts[None, :], args.tau, g_star, n_w)
        grams[n_w] = result.gram
        print(f"n_w = {n_w:g}: {result.status}, certified gap {result.certified_gap:.1e}, entries to "
              f"{result.entry_accuracy:.1e}, distance of G_M to G_* {ufm.gram_distance(result.gram, g_star):.4f}")
    fig = gram_heatmaps([grams[0.0], grams[args.n_w], g_star],
                        ["optimal G_M, no prototypes", f"optimal G_M, n_w = {args.n_w:g}", "G_* (ETF)"],
                        f"counts {counts.tolist()}, tau {args.tau:g}, full batch")
    print(f"wrote {save_figure(fig, args.out)}")


if __name__ == "__main__":
    main()
