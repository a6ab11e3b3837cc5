"""The simulator against the convex solver on the same problem: objective gap, Gram distance and a verdict.

Meaningful for one fixed batch-set, so the simulator runs full batch; its converged loss must not be
below the certified optimum (up to the solver's tolerance), and it should reach it when collapse is
optimal and the optimizer has converged.

Each row gets a verdict, ``agree``, ``disagree`` or ``cannot judge``, against a tolerance on the largest G_M entry
difference: the simulator's own estimated distance from its limit (:func:`simulator_tolerance`, from G_M at its
logged epochs) plus the solver's entry-error bound.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from ufm.choices import check_comparable
from ufm.errors import FieldError
from ufm.analysis import gram_distance
from ufm.simulate import SimConfig, _scheduler, build_problem, simulate
from ufm.solver import solve as convex_solve
from ufm.solver.result import ENTRY_TOL

__all__ = ["solver_vs_simulator", "simulator_tolerance", "lr_time", "verdict", "AGREE", "DISAGREE", "CANNOT_JUDGE", "SAFETY",
           "TOLERANCE_SOURCE"]

AGREE, DISAGREE, CANNOT_JUDGE = "agree", "disagree", "cannot judge"
SAFETY = 10.0  # the extrapolated distance from the limit is multiplied by this
TOLERANCE_SOURCE = (f"simulator: {SAFETY:g} x its distance from its limit, extrapolated from G_M at its logged epochs "
                    "(geometric in cumulative learning rate); plus the solver's entry bound")


def solver_vs_simulator(cfg: SimConfig, solve: Callable = convex_solve) -> list[dict]:
    """One row per stacked run of ``cfg`` (full batch): simulator loss, solver optimum, their relative
    gap, the largest entry difference of the two G_M, each one's distance to G_*, and the verdict with its
    tolerance (:func:`verdict`).  ``solve`` is :func:`ufm.solver.solve` (a test may pass a double)."""
    if cfg.batching != "full":
        raise FieldError("the comparison needs one fixed batch-set: use {batching=full}")
    check_comparable(cfg.loss, cfg.relu, cfg.n_w, cfg.prototype_anchors)
    cfg = replace(cfg, batching="full")
    sim = simulate(cfg, keep_grams=True)
    problem = build_problem(cfg)
    counts = problem.counts.numpy()
    g_star = problem.g_star.numpy()
    times = lr_time(cfg, sim.epochs_run)
    epochs = [e for e, _ in sim.logged_g_m]
    floor = 1e3 * float(torch.finfo(getattr(torch, cfg.dtype)).eps)
    rows = []
    for i, run in enumerate(cfg.runs):
        result = solve(counts[None], run["tau"], g_star if run["n_w"] > 0 else None, run["n_w"], cfg.prototype_anchors)
        loss = sim.history[-1]["loss"][i]
        g_sim = sim.g_m[i]
        sim_tol, sim_note = simulator_tolerance([times[e - 1] for e in epochs], [g[i] for _, g in sim.logged_g_m],
                                                floor)
        row = {
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
            "simulator_tolerance": sim_tol,
        }
        row.update(verdict(row, sim_note, result.relative_gap, floor))
        rows.append(row)
    return rows


def lr_time(cfg: SimConfig, epochs: int) -> list[float]:
    """Cumulative learning rate after each epoch ``1..epochs`` of ``cfg``'s schedule (its optimizer's step sizes
    scale with it: the simulator's "time")."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = _scheduler(cfg, opt)
    total, out = 0.0, []
    for _ in range(epochs):
        total += opt.param_groups[0]["lr"]
        out.append(total)
        opt.step()
        sched.step()
    return out


def simulator_tolerance(times: list[float], grams: list[np.ndarray], floor: float) -> tuple[float, str]:
    """``(tolerance, note)``: :data:`SAFETY` x the simulator's estimated largest-entry distance of its last G_M from
    its limit, from G_M ``[k, k]`` at logged lr-times ``times`` (:func:`lr_time`), at least ``floor`` (round-off).

    Three logs a < b < c (c the last, a and b near half and three quarters of its lr-time) give the moves
    d1 = max|G_b - G_a| and d2 = max|G_c - G_b|; a geometric approach in lr-time, G(s) - G_inf ~ e^(-lam s), fits lam
    to d2 / d1 and leaves d2 e^(-lam Db) / (1 - e^(-lam Db)) to go.  No contraction (d2 / d1 at least its value
    for a straight drift): infinite, "not converging"; a slow one, where more than d2 is left to go, is not
    extrapolated either (infinite, "still moving").  Fewer than three logs: infinite.
    """
    if len(grams) < 3:
        return math.inf, "fewer than 3 logged epochs: lower --log-every or raise --epochs"
    c = len(times) - 1
    a = min(range(c - 1), key=lambda j: abs(times[j] - times[c] / 2))
    b = min(range(a + 1, c), key=lambda j: abs(times[j] - 0.75 * times[c]))
    d1 = float(np.abs(grams[b] - grams[a]).max())
    d2 = float(np.abs(grams[c] - grams[b]).max())
    da, db = times[b] - times[a], times[c] - times[b]
    if d2 <= floor:
        return floor, "converged to round-off"
    if d1 <= 0 or da <= 0 or db <= 0 or d2 / d1 >= db / da:
        return math.inf, f"not converging (its G_M moved {d2:.1e} over its last quarter): raise --epochs"
    lam = _contraction_rate(d2 / d1, da, db)
    remaining = d2 * math.exp(-lam * db) / -math.expm1(-lam * db)
    if remaining > d2:  # the last quarter covered less than half of what was left: too slow to extrapolate
        return math.inf, f"still moving (its G_M moved {d2:.1e} over its last quarter, slowly): raise --epochs"
    return max(floor, SAFETY * remaining), "converging"


def _contraction_rate(ratio: float, da: float, db: float) -> float:
    """lam > 0 with e^(-lam da) (1 - e^(-lam db)) / (1 - e^(-lam da)) = ratio (decreasing in lam from db / da)."""
    def f(lam: float) -> float:
        return math.exp(-lam * da) * -math.expm1(-lam * db) / -math.expm1(-lam * da)

    lo, hi = 1e-12 / max(da, db), 1.0 / min(da, db)
    while f(hi) > ratio and hi < 1e12:
        hi *= 2
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if f(mid) > ratio else (lo, mid)
    return hi


def verdict(row: dict, simulator_note: str, solver_relative_gap: float | None, floor: float) -> dict:
    """``verdict``, ``tolerance`` and ``reason`` of a row of :func:`solver_vs_simulator`.

    disagree: the simulator's loss lies below the certified optimum (beyond the certified gap and round-off), or
    the G_M entries differ by more than the tolerance (the simulator's :func:`simulator_tolerance` plus the solver's
    entry bound).  cannot judge: the solver gives no entry bound, the simulator has not converged, or the tolerance
    is above the solver's promise for "optimal" (:data:`ufm.solver.result.ENTRY_TOL`), so a wrong entry could hide
    under it.  agree: otherwise (every entry within a tolerance of at most ENTRY_TOL)."""
    sim_tol, bound = row["simulator_tolerance"], row["solver_entry_accuracy"]
    below = -row["relative_gap"] - (solver_relative_gap or 0.0) - floor
    if below > 0:
        return {"verdict": DISAGREE, "tolerance": None,
                "reason": f"the simulator's loss is below the solver's certified optimum by {-row['relative_gap']:.1e} "
                          "(relative)"}
    if bound is None or not math.isfinite(bound):
        return {"verdict": CANNOT_JUDGE, "tolerance": None, "reason": "the solver reports no entry bound"}
    if not math.isfinite(sim_tol):
        return {"verdict": CANNOT_JUDGE, "tolerance": None, "reason": f"simulator: {simulator_note}"}
    tolerance = sim_tol + bound
    diff = row["gram_max_difference"]
    if diff > tolerance:
        return {"verdict": DISAGREE, "tolerance": tolerance,
                "reason": f"G_M entries differ by {diff:.1e} > tolerance {tolerance:.1e}"}
    if tolerance > ENTRY_TOL and floor > ENTRY_TOL:
        return {"verdict": CANNOT_JUDGE, "tolerance": tolerance,
                "reason": f"the simulator's round-off ({floor:.0e}) is above {ENTRY_TOL:g}, what 'optimal' promises: "
                          "use --dtype float64"}
    if tolerance > ENTRY_TOL:
        return {"verdict": CANNOT_JUDGE, "tolerance": tolerance,
                "reason": f"the tolerance {tolerance:.1e} is above {ENTRY_TOL:g}, what 'optimal' promises: run the "
                          "simulator longer (--epochs) or at a larger tau"}
    return {"verdict": AGREE, "tolerance": tolerance, "reason": f"entries within {tolerance:.1e} ({simulator_note})"}


def _t(a: np.ndarray):
    return torch.as_tensor(a, dtype=torch.float64)
