"""Batching curves: the distance of G_M to G_* against n_w per batching scheme (full, reshuffled, bound), from the
simulator over seeds, beside the certified full-batch optimum."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ufm.copies import solve_point

__all__ = ["BATCHINGS", "batching_curves"]


BATCHINGS = ("full", "shuffle", "binding")


def batching_curves(
    base,
    n_ws: Sequence[float] = (0.0, 1.0, 10.0, 100.0),
    seeds: Sequence[int] = (0, 1, 2),
    batchings: Sequence[str] = BATCHINGS,
    solver: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Distance of G_M to G_* against n_w per batching scheme, from the simulator (:func:`ufm.simulate.simulate`,
    all n_w x seeds stacked in one run per scheme), mean and standard deviation (numpy ``std``, ddof 0) over
    ``seeds``, beside the certified full-batch optimum (``batching="solver"``, one row per n_w) when ``solver``.

    ``base``: a :class:`ufm.simulate.SimConfig` (counts, target, tau (one value), anchors, batch size, optimizer,
    epochs); its n_w, seeds and batching are replaced.  Full batch is deterministic up to the seed's random
    start, so it is run with the first seed only.  Rows: {batching, n_w, mean, std, seeds, distances}."""
    from dataclasses import replace as _replace

    from ufm.simulate import build_problem, simulate

    if len(base.tau) != 1:
        raise ValueError(f"batching_curves needs one temperature in base.tau, got {base.tau}")
    unknown = [b for b in batchings if b not in BATCHINGS]
    if unknown:
        raise ValueError(f"batchings {unknown} are not among {', '.join(BATCHINGS)}")
    rows = []
    for scheme in batchings:
        run_seeds = tuple(seeds[:1]) if scheme == "full" else tuple(seeds)
        cfg = _replace(base, n_w=tuple(float(w) for w in n_ws), seeds=run_seeds, batching=scheme)
        if progress:
            progress(f"simulating {scheme} ({len(cfg.runs)} stacked runs)")
        result = simulate(cfg)
        final = result.history[-1]["distance"]
        for w in n_ws:
            dists = [final[i] for i, run in enumerate(cfg.runs) if run["n_w"] == float(w)]
            rows.append({"batching": scheme, "n_w": float(w), "mean": float(np.mean(dists)),
                         "std": float(np.std(dists)), "seeds": list(run_seeds), "distances": dists})
    if solver:
        problem = build_problem(_replace(base, n_w=(0.0,), batching="full"))
        anchors = True if base.prototype_anchors is None else base.prototype_anchors
        for w in n_ws:
            point = solve_point(problem.counts.numpy(), base.tau[0], problem.g_star.numpy(), float(w), anchors,
                                solver="BM")
            rows.append({"batching": "solver", "n_w": float(w), "mean": point.distance, "std": 0.0, "seeds": [],
                         "distances": [point.distance], "status": point.status,
                         "relative_gap": point.relative_gap})
    return rows
