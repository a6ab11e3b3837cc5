"""ufm.solver.lowrank_full: the fixed prototype rows, the collapsed point lifted to every sample, and the factor's
default rank."""

import numpy as np
import pytest

from _tiny_solver import G, tiny_problem
from ufm.solver.interior import solve_interior
from ufm.solver.lowrank_full import default_rank, lift_collapsed, prototype_rows


def test_prototype_rows_factor_the_prototype_gram():
    rows = prototype_rows(G, 4)
    assert rows.shape == (4, 3)  # the ETF of 4 classes has rank 3
    np.testing.assert_allclose(rows @ rows.T, G, atol=1e-12)
    assert prototype_rows(None, 4).shape == (4, 0)


def test_the_lifted_collapsed_point_has_the_collapsed_grams():
    best = solve_interior(tiny_problem())
    labels = [0, 0, 0, 1, 1, 1, 2, 3]
    rows = lift_collapsed(best.gram, best.cross, labels, G, 10)
    assert rows.shape == (8, 10)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-12)
    means = rows[[0, 3, 6, 7]]
    np.testing.assert_allclose(means @ means.T, best.gram, atol=1e-6)
    protos = np.hstack([prototype_rows(G, 4), np.zeros((4, 7))])
    np.testing.assert_allclose(means @ protos.T, best.cross, atol=1e-6)
    with pytest.raises(ValueError, match="p must be at least k \\+ rank G_\\* = 7, got 6"):
        lift_collapsed(best.gram, best.cross, labels, G, 6)


def test_the_default_rank_is_bounded_by_the_samples():
    assert default_rank(50, 4, 3) == 14  # 2 (k + rank G_*) for a few samples
    assert default_rank(8, 4, 3) == 11 and default_rank(4, 4, 0) == 4  # at most N + rank G_*
    assert default_rank(10_000, 4, 3) > 100  # grows like sqrt(2 N) for many samples
