"""ufm.solver.problem: the collapsed problem validated once; its objective, groups of equal counts and memory."""

import numpy as np
import pytest

from _tiny_solver import COUNTS, G, tiny_problem
from ufm.solver.problem import block_values, check_compositions, class_groups, prototype_gram, solve_memory_bytes


@pytest.mark.parametrize("comp, n_w, message", [
    ([[3]], 1.0, r"\[num_batches, k >= 2\]"),
    ([[3.5, 2]], 1.0, "must hold integer class counts"),
    ([[3, -1]], 1.0, "must be >= 0"),
    ([[3, 0]], 1.0, r"classes \[1\] appear in no batch"),
    ([[3, 1]], 0.0, r"classes \[1\] never have two samples in one batch"),
])
def test_compositions_are_refused_saying_why(comp, n_w, message):
    with pytest.raises(ValueError, match=message):
        check_compositions(comp, n_w)
    assert check_compositions([[3.0, 2.0]], 1.0).dtype == np.int64


def test_the_prototype_gram_is_checked_against_k():
    assert prototype_gram(G, 0.0, 4) is None
    np.testing.assert_allclose(prototype_gram(G, 1.0, 4), G)
    with pytest.raises(ValueError, match="need their Gram g_star"):
        prototype_gram(None, 1.0, 4)
    with pytest.raises(ValueError, match="g_star is 4 x 4 but the problem has k = 3 classes"):
        prototype_gram(G, 1.0, 3)


def test_groups_of_equal_counts_and_block_constant_values():
    groups = class_groups([3, 3, 1, 1])
    assert [g.tolist() for g in groups] == [[0, 1], [2, 3]]
    within, block = block_values(G, groups)
    np.testing.assert_allclose(within, [-1 / 3, -1 / 3])
    np.testing.assert_allclose(block, [[-1 / 3, -1 / 3], [-1 / 3, -1 / 3]])
    uneven = G.copy()
    uneven[0, 2] = uneven[2, 0] = 0.0  # not constant on the block of classes {0, 1} x {2, 3}
    assert block_values(uneven, groups) is None
    assert [g.tolist() for g in tiny_problem().groups] == [[0, 1], [2, 3]]


def test_the_objective_treats_classes_of_equal_counts_alike():
    problem = tiny_problem()
    assert problem.k == 4 and problem.with_prototypes
    gram = G.copy()
    gram[0, 2] = gram[2, 0] = 0.1  # class 0 nearer class 2 than class 1 is
    swap = [1, 0, 2, 3]  # classes 0 and 1 have the same count
    value = problem.objective(gram, gram)
    assert np.isfinite(value) and value != problem.objective(G, G)
    assert problem.objective(gram[np.ix_(swap, swap)], gram[np.ix_(swap, swap)]) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(problem.factor @ problem.factor.T, G, atol=1e-12)
    assert tiny_problem(n_w=0.0, g_star=None, compositions=COUNTS + 1).factor is None


def test_memory_grows_with_the_size():
    assert 0 < solve_memory_bytes(4, 1, True, "dense") < solve_memory_bytes(40, 1, True, "dense")
    assert solve_memory_bytes(4, 1, True, "full", samples=100) < solve_memory_bytes(4, 1, True, "full", samples=1000)
