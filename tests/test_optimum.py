"""ufm.optimum: the certified optimum of a SolveConfig in the one solution.json schema (collapsed and full), and the
refusals of what the full problem cannot do."""

import json

import numpy as np
import pytest

from ufm.errors import FieldError
from ufm.optimum import solve_config
from ufm.spec import SolveConfig

TINY = dict(counts="2,2,1,1", tau=0.5, n_w=5.0)


def test_the_collapsed_summary_and_arrays():
    summary, arrays, result = solve_config(SolveConfig(**TINY))
    assert summary["counts"] == [2, 2, 1, 1] and summary["batches"] == 1 and summary["tau"] == 0.5
    assert summary["n_w"] == 5.0 and summary["status"] == "optimal"
    for key in ("objective", "distance", "max_angle_error", "angle_majority", "angle_minority", "angle_across"):
        assert np.isfinite(summary[key]), key
    assert json.loads(json.dumps(summary)) == summary  # JSON-ready: solution.json as it is
    assert arrays["gram"].shape == arrays["g_star"].shape == (4, 4)
    np.testing.assert_allclose(np.diag(arrays["gram"]), 1.0, atol=1e-6)
    np.testing.assert_allclose(arrays["gram"], result.gram)
    # the distance is G_M's to the target the arrays hold
    g, t = arrays["gram"], arrays["g_star"]
    assert summary["distance"] == pytest.approx(np.linalg.norm(g / np.linalg.norm(g) - t / np.linalg.norm(t)),
                                                abs=1e-9)


def test_the_full_problem_writes_the_same_schema_and_the_sample_gram():
    collapsed, _, _ = solve_config(SolveConfig(**TINY))
    summary, arrays, _ = solve_config(SolveConfig(**TINY), full=True)
    assert set(collapsed) <= set(summary) and "min_within_class_cosine" in summary
    assert arrays["sample_gram"].shape == (6, 6) and arrays["gram"].shape == (4, 4)
    # full batching: the collapsed optimum is the full one (every sample of a class at its mean)
    assert summary["objective"] == pytest.approx(collapsed["objective"], rel=1e-5)


@pytest.mark.parametrize("overrides, fields", [({"relu": True}, ("full", "relu")), ({"reduce": False}, ("reduce", "full"))])
def test_what_the_full_problem_cannot_do_is_refused(overrides, fields):
    with pytest.raises(FieldError) as err:
        solve_config(SolveConfig(**TINY, **overrides), full=True)
    assert err.value.fields == fields
