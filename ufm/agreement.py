"""The simulator against the convex solver on the same problem: objective gap and Gram distance.

Meaningful for one fixed batch-set, so the simulator runs full batch; its converged loss must not be
below the certified optimum (up to the solver's tolerance), and it should reach it when collapse is
optimal and the optimizer has converged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ufm.errors import FieldError
from ufm.analysis import gram_distance
from ufm.simulate import SimConfig, build_problem, simulate
from ufm.solver import solve

__all__ = ["solver_vs_simulator"]


def solver_vs_simulator(cfg: SimConfig) -> list[dict]:
    """One row per stacked run of ``cfg`` (full batch): simulator loss, solver optimum, their relative
    gap, the largest entry difference of the two G_M, and each one's distance to G_*."""
    if cfg.batching != "full":
        raise FieldError("the comparison needs one fixed batch-set: use {batching=full}")
    if cfg.loss != "scl" or cfg.relu:
        raise FieldError("the solver covers SCL without ReLU; use {loss=scl} and {relu=False}")
    cfg = replace(cfg, batching="full")
    sim = simulate(cfg)
    problem = build_problem(cfg)
    counts = problem.counts.numpy()
    g_star = problem.g_star.numpy()
    rows = []
    for i, run in enumerate(cfg.runs):
        result = solve(counts[None], run["tau"], g_star if run["n_w"] > 0 else None, run["n_w"], cfg.prototype_anchors)
        loss = sim.history[-1]["loss"][i]
        g_sim = sim.g_m[i]
        rows.append({
            **run,
            "simulator_loss": loss,
            "solver_objective": result.objective,
            "relative_gap": (loss - result.objective) / abs(result.objective),
            "gram_max_difference": float(np.abs(g_sim - result.gram).max()),
            "distance_simulator": float(gram_distance(*(_t(g_sim), _t(g_star)))),
            "distance_solver": float(gram_distance(*(_t(result.gram), _t(g_star)))),
            "solver_status": result.status,
            "solver_method": result.method,
            "solver_entry_accuracy": result.entry_accuracy,
        })
    return rows


def _t(a: np.ndarray):
    import torch

    return torch.as_tensor(a, dtype=torch.float64)
