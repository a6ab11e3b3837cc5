"""Where does each float64 solver path stop giving the optimal entries as n_w grows?

    python benchmarks/solver_precision.py [--json OUT]

For each case (class counts of one full batch, tau, anchor convention) the optimal class-mean Gram is, for large
n_w, M(n_w) = A + D / n_w + E / n_w^2 + O(n_w^-3) (A = G_* with prototype anchors).  A, D, E are fitted from the
grouped solve at n_w = 1e3, 2e3, 4e3 (Richardson), where every path agrees to 1e-9; at larger n_w the reference
A + D / n_w + E / n_w^2 is then accurate to ~1e-12, and each path's error is max |M - reference| next to the
entry accuracy and status it reports.  The table says where each path stops holding (error above 1e-6) and
whether it still said "optimal" there.
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from ufm.geometry import etf_gram
from ufm.solver import solve, solve_full

CASES = [((6, 6, 3), 0.5, True), ((6, 6, 3), 0.1, True), ((4, 4, 2, 2), 0.5, True), ((6, 6, 3), 0.5, False),
         ((2, 2, 1), 0.5, True)]
N_WS = [1e4, 1e5, 1e6, 1e7, 1e8, 1e10, 1e12]


def _paths(counts, tau, anchors, n_w):
    g = etf_gram(len(counts)).numpy()
    comp = np.array([counts])
    out = {}
    for name, kw in (("grouped", dict(solver="auto")), ("interior", dict(solver="CLARABEL", reduce=False)),
                     ("bm", dict(solver="BM"))):
        try:
            r = solve(comp, tau, g, n_w, anchors, **kw)
            out[name] = (r.gram, r.status, r.entry_accuracy)
        except ValueError as err:
            out[name] = (None, f"refused: {str(err)[:60]}", None)
    if sum(counts) <= 15:
        labels = np.repeat(np.arange(len(counts)), counts)
        try:
            r = solve_full(labels, [np.arange(len(labels))], tau, g, n_w, anchors)
            out["full"] = (r.class_means, r.status, r.entry_accuracy)
        except ValueError as err:
            out["full"] = (None, f"refused: {str(err)[:60]}", None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    rows = []
    warnings.simplefilter("ignore")
    for counts, tau, anchors in CASES:
        g = etf_gram(len(counts)).numpy()
        comp = np.array([counts])
        base = [1e3, 2e3, 4e3]
        ms = [solve(comp, tau, g, n, anchors).gram for n in base]
        design = np.array([[1, 1 / n, 1 / n ** 2] for n in base])
        coef = np.linalg.solve(design, np.stack([m.ravel() for m in ms]))  # [3, k*k]: A, D, E
        for n_w in N_WS:
            ref = (coef[0] + coef[1] / n_w + coef[2] / n_w ** 2).reshape(g.shape)
            for path, (m, status, acc) in _paths(counts, tau, anchors, n_w).items():
                err = None if m is None else float(np.abs(m - ref).max())
                rows.append(dict(counts=list(counts), tau=tau, anchors=anchors, n_w=n_w, path=path, error=err,
                                 status=status, entry_accuracy=acc))
                flag = "" if err is None or err <= 1e-6 or status != "optimal" else "  <-- wrong, said optimal"
                print(f"{str(counts):14s} tau={tau:<4} anchors={anchors!s:5} n_w={n_w:7.0e} {path:9s} "
                      f"error={'-' if err is None else f'{err:.1e}':8s} acc={acc if acc is None else f'{acc:.1e}'} "
                      f"{status}{flag}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
