"""ufm.solver.certificate: a feasible geometry from any source gets a proven bound on its suboptimality; an
infeasible one is refused saying what is wrong."""

import numpy as np
import pytest

from _tiny_solver import G, tiny_problem
from ufm.solver.certificate import certify, feasibility
from ufm.solver.interior import solve_interior


def test_the_optimum_is_certified_and_a_worse_point_has_a_larger_gap():
    problem = tiny_problem()
    best = solve_interior(problem)
    at_optimum = certify(problem, best.gram, best.cross)
    at_prototypes = certify(problem, G, G)  # the class means at their prototypes: feasible, not optimal here
    assert at_optimum["objective"] == pytest.approx(best.objective, rel=1e-12)
    assert 0 <= at_optimum["certified_gap"] < 1e-6 * abs(at_optimum["objective"])
    # the bound holds: the prototypes' point is at most its gap above the optimum, and at least its true distance
    assert at_prototypes["certified_gap"] >= at_prototypes["objective"] - best.objective - at_optimum["certified_gap"]
    assert at_prototypes["relative_gap"] == pytest.approx(at_prototypes["certified_gap"] / abs(at_prototypes["objective"]))


def test_an_infeasible_geometry_is_refused_naming_the_violation():
    problem = tiny_problem()
    bad = G.copy()
    bad[0, 0] = 1.5
    assert feasibility(problem, bad, G)["max_diag_error"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"max \|M_aa - 1\| = 0.5.*project it onto the feasible set first"):
        certify(problem, bad, G)
    with pytest.raises(ValueError, match=r"\[\[M, X\], \[X\^T, G_\*\]\] has eigenvalue"):
        certify(problem, G, 2 * G)  # means twice as aligned with the prototypes as unit vectors allow
    asym = G.copy()
    asym[0, 1] += 0.1
    with pytest.raises(ValueError, match=r"max \|M - M\^T\| = 0.1"):
        certify(problem, asym, G)
    assert np.isfinite(feasibility(problem, G, G)["min_eigenvalue"])
