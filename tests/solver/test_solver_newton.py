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


def test_a_kkt_answer_whose_factor_form_check_is_refused_carries_no_bound(monkeypatch):
    # the second opinion refused (as a stalled Newton would be): the KKT estimate alone is not trusted, so the answer
    # has no entry bound (optimal_inaccurate; `ufm solve` would refuse to print it)
    import ufm.solver.newton as newton
    from ufm.geometry import etf_gram
    from ufm.solver import solve

    def refuse(problem, gram, cross, start_gap=None):
        return newton.FactorPolish(gram, cross, 2, 3, float("nan"), float("nan"), False,
                                   "factor polish refused (rank 2: Newton stalled above round-off)")

    comp, g = np.array([[4, 4, 2]]), etf_gram(3).numpy()
    assert solve(comp, 0.5, g, 10.0, solver="CLARABEL").status == "optimal"
    monkeypatch.setattr(newton, "polish_factor", refuse)
    result = solve(comp, 0.5, g, 10.0, solver="CLARABEL")
    assert result.status == "optimal_inaccurate" and result.entry_accuracy is None
    assert "not trusted" in result.note and result.unbounded() is not None
