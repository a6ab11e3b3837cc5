"""The default solve against high-precision references (60 digits, :mod:`_reference`) at the paper's temperature
and many copies: every entry within 1e-6 and "optimal", and the reported entry bound never below the true error.

Cases: hand-given counts 10,10,10,2; STEP 8,8,2,2; long-tail 8,5,3,2 (k = 4, ETF prototypes), tau 0.1 and 0.5,
n_w 1e4, 1e6, 1e8, prototype anchors (and batch anchors for one case)."""

import numpy as np
import pytest
from _reference import reference_path

from ufm.geometry import etf_gram
from ufm.solver import ENTRY_TOL, solve

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
