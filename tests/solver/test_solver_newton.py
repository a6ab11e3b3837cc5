"""ufm.solver.newton: the Newton polish in factor form takes a rough optimum to round-off, with an entry-accuracy
estimate and a certificate, or leaves it as it was, saying why."""

import numpy as np

from _tiny_solver import tiny_problem
from ufm.solver.interior import solve_interior
from ufm.solver.newton import factor_unknowns, polish_result


def test_a_rough_optimum_is_polished_to_round_off():
    problem = tiny_problem()
    rough = solve_interior(problem, polish=False)
    polished = polish_result(problem, rough)
    assert polished.status == "optimal" and polished.accuracy_source == "newton"
    assert polished.newton_iterations > 0 and polished.note.startswith("Newton-polished in factor form (rank")
    assert polished.objective <= rough.objective + 1e-9 * abs(rough.objective)
    assert polished.entry_accuracy < 1e-6 and polished.certified_gap < 1e-8 * abs(polished.objective)
    np.testing.assert_allclose(np.diag(polished.gram), 1.0, atol=1e-12)

    assert factor_unknowns(problem, 2) > factor_unknowns(problem, 1) > 0
