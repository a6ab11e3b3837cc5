"""ufm.agreement: the verdict of simulator vs solver, its tolerance (the simulator's own convergence) and that a
solver 1e-4 off is never passed as agreeing."""

import math
from dataclasses import replace

import numpy as np
import pytest

from ufm.agreement import AGREE, CANNOT_JUDGE, DISAGREE, SAFETY, simulator_tolerance, solver_vs_simulator, verdict
from ufm.simulate import SimConfig
from ufm.solver import solve

# k = 4, STEP 12/2: at tau 0.5 the full-batch simulator reaches its limit to round-off in float64
CONVERGED = SimConfig(k=4, n_major=12, ratio=6, d=8, n_w=(0.0, 10.0), tau=(0.5,), batching="full", epochs=900,
                      lr=0.05, log_every=30, dtype="float64", device="cpu")


@pytest.fixture(scope="module")
def honest_rows():
    return solver_vs_simulator(CONVERGED)


def test_a_converged_simulator_agrees_with_the_solver_within_a_tight_tolerance(honest_rows):
    for r in honest_rows:
        assert r["verdict"] == AGREE, r["reason"]
        assert r["gram_max_difference"] <= r["tolerance"] <= 1e-6
        assert r["tolerance"] == pytest.approx(r["simulator_tolerance"] + r["solver_entry_accuracy"])


@pytest.mark.parametrize("offset", [1e-4, -1e-4, 1e-5])
def test_a_solver_off_by_a_small_amount_is_never_passed(offset):
    def off(*args, **kwargs):  # the real solver, then one pair of G_M entries moved by ``offset``
        result = solve(*args, **kwargs)
        gram = result.gram.copy()
        gram[0, 1] += offset
        gram[1, 0] += offset
        return replace(result, gram=gram)

    for r in solver_vs_simulator(CONVERGED, solve=off):
        assert r["verdict"] in (DISAGREE, CANNOT_JUDGE), r
        assert r["verdict"] == DISAGREE and "differ by" in r["reason"]  # here the simulator is sharp enough to say


def test_the_tolerance_covers_the_true_distance_of_a_geometric_approach():
    rng = np.random.default_rng(0)
    limit, start = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    times = np.cumsum(0.05 * (1 + np.cos(np.pi * np.arange(600) / 600)) / 2)[::20]  # a cosine schedule's lr-time
    for lam in (0.05, 0.2, 1.0):
        grams = [limit + start * math.exp(-lam * s) for s in times]
        tol, note = simulator_tolerance(list(times), grams, 1e-13)
        true = np.abs(grams[-1] - limit).max()
        if math.isfinite(tol):
            assert true <= tol <= SAFETY * 10 * true + 1e-13 and note == "converging"
        else:  # slow: not extrapolated, and then the verdict cannot judge
            assert "still moving" in note and true > 1e-3
    assert math.isfinite(simulator_tolerance(list(times), [limit + start * math.exp(-1.0 * s) for s in times],
                                             1e-13)[0])


def test_the_tolerance_refuses_drifts_short_histories_and_reads_round_off():
    times = [1.0, 2.0, 3.0, 4.0]
    drift = [np.eye(2) * t for t in times]  # a straight drift never converges
    assert simulator_tolerance(times, drift, 1e-13) == (math.inf, simulator_tolerance(times, drift, 1e-13)[1])
    assert "not converging" in simulator_tolerance(times, drift, 1e-13)[1]
    assert "fewer than 3" in simulator_tolerance(times[:2], drift[:2], 1e-13)[1]
    still = [np.eye(2) + 1e-16 * t for t in times]
    assert simulator_tolerance(times, still, 1e-13) == (1e-13, "converged to round-off")


def _row(**kw):
    return {"relative_gap": 0.0, "gram_max_difference": 1e-9, "simulator_tolerance": 1e-8, "solver_entry_accuracy": 1e-9,
            **kw}


def test_verdict_rules():
    assert verdict(_row(), "converging", 1e-12, 1e-13)["verdict"] == AGREE
    below = verdict(_row(relative_gap=-1e-6), "converging", 1e-12, 1e-13)
    assert below["verdict"] == DISAGREE and "below the solver's certified optimum" in below["reason"]
    assert verdict(_row(relative_gap=-1e-14), "converging", 1e-12, 1e-13)["verdict"] == AGREE  # within round-off
    assert verdict(_row(gram_max_difference=2e-8), "converging", None, 1e-13)["verdict"] == DISAGREE
    loose = verdict(_row(simulator_tolerance=1e-3, gram_max_difference=1e-4), "converging", None, 1e-13)
    assert loose["verdict"] == CANNOT_JUDGE and loose["tolerance"] == pytest.approx(1e-3 + 1e-9)
    assert verdict(_row(solver_entry_accuracy=None), "x", None, 1e-13)["verdict"] == CANNOT_JUDGE
    moving = verdict(_row(simulator_tolerance=math.inf), "still moving (...)", None, 1e-13)
    assert moving["verdict"] == CANNOT_JUDGE and moving["reason"] == "simulator: still moving (...)"
    single = verdict(_row(simulator_tolerance=1.2e-4, gram_max_difference=1e-5), "converged to round-off", None, 1.2e-4)
    assert single["verdict"] == CANNOT_JUDGE and "use --dtype float64" in single["reason"]
