"""Every solver path against 60-digit references: status, printed entry bound, true error and the bound's pessimism.

    python benchmarks/solver_references.py [--json OUT]

For one full batch of class counts (hand-given 10,10,10,2; STEP 8,8,2,2; long-tail 8,5,3,2; k = 4, ETF prototypes,
prototype anchors), tau 0.05, 0.1, 0.5 and n_w 1e4, 1e6, 1e8, the reference optimum is the mpmath Newton of
``tests/solver/_reference.py`` (continued along n_w from the certified solve at n_w = 100).  Each path's true error
is max |entry - reference| over M and X; "pessimism" is bound / true error (the true error floored at 1e-16, the
float64 resolution of an entry).  A path whose bound is missing or above 1e-3 is what `ufm solve` refuses to print.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "solver"))
from _reference import reference_path  # noqa: E402

from ufm.geometry import etf_gram  # noqa: E402
from ufm.solver import solve  # noqa: E402
from ufm.solver.result import PRINT_TOL  # noqa: E402

CASES = {"given": (10, 10, 10, 2), "step": (8, 8, 2, 2), "long-tail": (8, 5, 3, 2)}
TAUS = (0.05, 0.1, 0.5)
N_WS = (1e4, 1e6, 1e8)
PATHS = {"auto": {}, "grouped": {"solver": "CLARABEL"}, "unreduced": {"solver": "CLARABEL", "reduce": False},
         "bm": {"solver": "BM"}, "scs": {"solver": "SCS"}}


def measure() -> list[dict]:
    g = etf_gram(4).numpy()
    rows = []
    for name, counts in CASES.items():
        comp = np.array([counts])
        for tau in TAUS:
            start = solve(comp, tau, g, 100.0, True, solver="BM")
            refs = reference_path(list(counts), tau, g, start.cross, 100.0, N_WS)
            for n_w in N_WS:
                gram, cross = refs[n_w]
                for path, options in PATHS.items():
                    t0 = time.perf_counter()
                    result = solve(comp, tau, g, n_w, True, **options)
                    error = max(np.abs(result.gram - gram).max(), np.abs(result.cross - cross).max())
                    bound = result.entry_accuracy
                    bounded = result.unbounded(PRINT_TOL) is None
                    rows.append({"counts": name, "tau": tau, "n_w": n_w, "path": path, "status": result.status,
                                 "method": result.method, "bound": bound, "error": float(error),
                                 "printed": bool(bounded), "covers": bool((not bounded) or error <= bound),
                                 "pessimism": bound / max(error, 1e-16) if bounded else None,
                                 "seconds": time.perf_counter() - t0})
    return rows


def table(rows: list[dict]) -> str:
    out = ["| counts | tau | n_w | path | status | printed bound | true error | bound / error |",
           "|---|---:|---:|---|---|---:|---:|---:|"]
    for r in rows:
        bound = f"{r['bound']:.1e}" if r["printed"] else ("refused (none)" if r["bound"] is None or
                                                          not np.isfinite(r["bound"]) else
                                                          f"refused ({r['bound']:.1e})")
        ratio = "-" if r["pessimism"] is None else f"{r['pessimism']:.0e}"
        out.append(f"| {r['counts']} | {r['tau']:g} | {r['n_w']:.0e} | {r['path']} ({r['method']}) | {r['status']} "
                   f"| {bound} | {r['error']:.1e} | {ratio} |")
    printed = [r for r in rows if r["printed"]]
    ratios = [r["pessimism"] for r in printed]
    out.append("")
    out.append(f"{len(printed)} of {len(rows)} answers printable (bound <= {PRINT_TOL:g}); bound below the true error: "
               f"{sum(not r['covers'] for r in rows)}; 'optimal' with an entry off by more than 1e-6: "
               f"{sum(r['status'] == 'optimal' and r['error'] > 1e-6 for r in rows)}; pessimism (bound / error) "
               f"median {np.median(ratios):.0e}, range {min(ratios):.0e} to {max(ratios):.0e}")
    return "\n".join(out)


def summary(rows: list[dict]) -> str:
    """One row per (tau, path) over the 9 answers of the 3 cases x 3 n_w."""
    out = ["| tau | path | optimal | printed (bound <= 1e-3) | refused | largest true error printed | "
           "largest bound printed | bound / error |", "|---:|---|---:|---:|---:|---:|---:|---|"]
    for tau in TAUS:
        for path in PATHS:
            sel = [r for r in rows if r["tau"] == tau and r["path"] == path]
            printed = [r for r in sel if r["printed"]]
            ratios = [r["pessimism"] for r in printed]
            out.append(f"| {tau:g} | {path} | {sum(r['status'] == 'optimal' for r in sel)} / {len(sel)} | "
                       f"{len(printed)} | {len(sel) - len(printed)} | "
                       + (f"{max(r['error'] for r in printed):.1e} | {max(r['bound'] for r in printed):.1e} | "
                          f"{min(ratios):.0e} to {max(ratios):.0e} |" if printed else "- | - | - |"))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = measure()
    print(summary(rows))
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
