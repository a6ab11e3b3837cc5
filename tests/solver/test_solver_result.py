"""ufm.solver.result: what a solve reports: the summary written to solution.json (matrices inline only while small)
and the arrays written beside it."""

import json

import numpy as np

from _tiny_solver import tiny_problem
from ufm.solver.interior import solve_interior
from ufm.solver.result import ARRAYS_FILE, ENTRY_TOL, JSON_MATRIX_MAX_K


def test_the_summary_is_json_and_holds_the_matrices_while_small():
    result = solve_interior(tiny_problem())
    summary = result.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["arrays"] == ARRAYS_FILE and np.allclose(summary["gram"], result.gram)
    assert summary["status"] == "optimal" and summary["method"] == "interior" and summary["certified_gap"] >= 0
    assert summary["entry_accuracy"] <= ENTRY_TOL
    large = result.summary(max_k=3)
    assert large["gram"] is None and large["cross"] is None and JSON_MATRIX_MAX_K >= 4
    assert set(result.arrays()) == {"gram", "cross"}
    assert isinstance(result.describe(), str) and result.describe()
