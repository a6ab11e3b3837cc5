"""ufm.solver.interior and ufm.solver.conic: the interior point on the cone program, its Newton polish and its
weak-duality certificate."""

import numpy as np
import pytest

from _tiny_solver import G, tiny_problem
from ufm.solver.conic import ConeProgram
from ufm.solver.grouped import TOLERANCES, reduced_program
from ufm.solver.interior import solve_interior


def test_the_interior_point_is_certified_and_no_worse_than_the_prototypes():
    problem = tiny_problem()
    result = solve_interior(problem)
    assert result.method == "interior" and result.status == "optimal"
    assert 0 <= result.certified_gap < 1e-6 * abs(result.objective)
    assert result.objective <= problem.objective(G, G) + result.certified_gap  # the means at the prototypes
    np.testing.assert_allclose(np.diag(result.gram), 1.0, atol=1e-9)
    unpolished = solve_interior(problem, polish=False)
    assert unpolished.newton_iterations == 0 and unpolished.objective == pytest.approx(result.objective, rel=1e-6)


def test_the_cone_program_polishes_to_round_off_and_certifies_its_point():
    problem = tiny_problem()
    cone, _ = reduced_program(problem, problem.groups)
    assert isinstance(cone, ConeProgram) and cone.n_y < 4 * 4 * 2  # symmetry-reduced: few unknowns
    y0, status, iterations = cone.solve_cvxpy("CLARABEL", TOLERANCES["CLARABEL"])
    assert status.startswith("optimal") and iterations > 0 and cone.min_eigenvalue(y0) > -1e-6
    polish = cone.polish(y0)
    assert polish.accepted and polish.residual < 1e-10 and polish.entry_accuracy < 1e-6
    assert cone.f(polish.y) <= cone.f(y0) + 1e-9 * abs(cone.f(y0))
    gap = cone.certified_gap(polish.y, polish.duals, polish.eq_dual)
    assert 0 <= gap < 1e-8 * abs(cone.f(polish.y))
    with pytest.raises(ValueError, match="not supported here"):
        solve_interior(problem, solver="MOSEK")
