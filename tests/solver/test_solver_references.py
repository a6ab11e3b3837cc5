"""The default solve against high-precision references (60 digits, :mod:`_reference`) at the paper's temperature
and many copies: every entry within 1e-6 and "optimal", and the reported entry bound never below the true error.

Cases: hand-given counts 10,10,10,2; STEP 8,8,2,2; long-tail 8,5,3,2 (k = 4, ETF prototypes), tau 0.1 and 0.5,
n_w 1e4, 1e6, 1e8, prototype anchors (and batch anchors for one case)."""

import numpy as np
import pytest
from _reference import reference_path

from ufm.geometry import etf_gram
from ufm.solver import ENTRY_TOL, solve, solve_full

G = etf_gram(4).numpy()
CASES = {"given": (10, 10, 10, 2), "step": (8, 8, 2, 2), "long-tail": (8, 5, 3, 2)}
TARGETS = (1e4, 1e6, 1e8)


def _check(counts, tau, anchors):
    comp = np.array([counts])
    start = solve(comp, tau, G, 100.0, anchors)
    assert start.status == "optimal" and np.linalg.matrix_rank(start.cross, 1e-6) == 3  # the reference's rank
    references = reference_path(list(counts), tau, G, start.cross, 100.0, TARGETS, anchors)
    for n_w in TARGETS:
        result = solve(comp, tau, G, n_w, anchors)
        gram, cross = references[n_w]
        error = max(np.abs(result.gram - gram).max(), np.abs(result.cross - cross).max())
        assert result.status == "optimal", (counts, tau, n_w, result.note)
        assert error <= ENTRY_TOL, (counts, tau, n_w, error)
        assert error <= result.entry_accuracy, (counts, tau, n_w, error, result.entry_accuracy)
        assert np.abs(gram - G).max() > 0.05 / n_w  # the reference is not G_* itself: the test can tell them apart


@pytest.mark.parametrize("tau", [0.1, 0.5])
@pytest.mark.parametrize("name", list(CASES))
def test_default_solve_is_certified_at_many_copies(name, tau):
    _check(CASES[name], tau, True)


def test_batch_anchors_at_the_papers_temperature():
    _check(CASES["given"], 0.1, False)


def _paths(counts, tau, n_w):
    comp = np.array([counts])
    labels = np.repeat(np.arange(len(counts)), counts)
    return {
        "grouped": lambda: solve(comp, tau, G, n_w, solver="CLARABEL"),
        "unreduced": lambda: solve(comp, tau, G, n_w, solver="CLARABEL", reduce=False),
        "bm": lambda: solve(comp, tau, G, n_w, solver="BM"),
        "scs": lambda: solve(comp, tau, G, n_w, solver="SCS"),
        "full": lambda: solve_full(labels, [np.arange(len(labels))], tau, G, n_w, True),
    }


@pytest.mark.parametrize("tau, n_w", [(0.1, 1e2), (0.1, 1e6), (0.5, 1e8), (0.05, 1e2)])
def test_no_path_reports_a_bound_below_its_true_error(tau, n_w):
    """Every path either reports no bound / one above PRINT_TOL (then `ufm solve` refuses to print it) or a bound
    that covers its true error; the pessimism (bound / true error) is what docs/performance.md reports."""
    counts = (3, 3, 2, 1)
    start = solve(np.array([counts]), tau, G, 100.0, True, solver="BM")
    assert np.linalg.matrix_rank(start.cross, 1e-6) == 3
    gram, cross = reference_path(list(counts), tau, G, start.cross, 100.0, [n_w])[n_w]
    bounded = 0
    for name, call in _paths(counts, tau, n_w).items():
        result = call()
        means = result.class_means if name == "full" else result.gram
        error = np.abs(means - gram).max()
        if name != "full":
            error = max(error, np.abs(result.cross - cross).max())
        if result.unbounded() is None:
            bounded += 1
            assert error <= result.entry_accuracy, (name, tau, n_w, error, result.entry_accuracy)
        if result.status == "optimal":
            assert error <= ENTRY_TOL, (name, tau, n_w, error)
    assert bounded >= (4 if tau >= 0.1 else 1), (tau, n_w, bounded)  # the checks above ran on most paths
