"""Many copies (n_w -> infinity): every solver path either gives the optimal entries, within its estimate and the
closed form, or does not say "optimal"; beyond float64's reach (MAX_SOLVER_N_W with prototype anchors) every path
and every command refuses up front, naming the option and the limit.

Closed form: with prototype anchors the optimum is M(n_w) = G_* + D / n_w + E / n_w^2 + O(n_w^-3) (the prototype
anchors pin the class means to the prototypes); D and E are fitted at n_w = 1e3, 2e3, 4e3, where every path agrees to
1e-9, and give the reference at larger n_w to ~1e-12."""

import numpy as np
import pytest
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.errors import FieldError
from ufm.geometry import etf_gram
from ufm.solver import ENTRY_TOL, MAX_SOLVER_N_W, solve, solve_bm, solve_full, solve_full_bm

COUNTS = (2, 2, 1)
TAU = 0.5
G = etf_gram(3).numpy()


def _reference(anchors: bool):
    comp = np.array([COUNTS])
    base = [1e3, 2e3, 4e3]
    ms = np.stack([solve(comp, TAU, G, n, anchors).gram.ravel() for n in base])
    coef = np.linalg.solve(np.array([[1, 1 / n, 1 / n ** 2] for n in base]), ms)
    return lambda n: (coef[0] + coef[1] / n + coef[2] / n ** 2).reshape(3, 3), coef


def _paths(n_w: float, anchors: bool) -> dict:
    comp = np.array([COUNTS])
    labels = np.repeat(np.arange(3), COUNTS)
    batch = [np.arange(len(labels))]
    return {
        "auto": lambda: solve(comp, TAU, G, n_w, anchors),
        "interior": lambda: solve(comp, TAU, G, n_w, anchors, solver="CLARABEL", reduce=False),
        "bm": lambda: solve_bm(comp, TAU, G, n_w, anchors),
        "full": lambda: solve_full(labels, batch, TAU, G, n_w, anchors),
        "full-bm": lambda: solve_full_bm(labels, batch, TAU, G, n_w, anchors),
    }


def _means(result) -> np.ndarray:
    return result.class_means if getattr(result, "class_means", None) is not None else result.gram


def test_the_closed_form_holds_where_it_is_said_optimal():
    reference, coef = _reference(True)
    assert np.abs(coef[0] - G.ravel()).max() < 1e-9  # the limit is G_* itself
    for n_w in (1e5, 1e7):
        for name, call in _paths(n_w, True).items():
            result = call()
            error = np.abs(_means(result) - reference(n_w)).max()
            if result.status == "optimal":
                assert result.entry_accuracy <= ENTRY_TOL, (name, n_w)
                assert error <= max(2 * result.entry_accuracy, 1e-8), (name, n_w, error, result.entry_accuracy)
            else:  # not optimal: the note says why, and the estimate (if any) covers the error
                assert result.note, (name, n_w)
    # the default path holds to 1e7 (Burer-Monteiro when the interior point's polish cannot start)
    result = solve(np.array([COUNTS]), TAU, G, 1e7, True)
    assert result.status == "optimal" and np.abs(result.gram - reference(1e7)).max() < 1e-8


def test_batch_anchors_only_hold_at_any_n_w():
    reference, _ = _reference(False)
    result = solve(np.array([COUNTS]), TAU, G, 1e12, False)
    assert result.status == "optimal"
    assert np.abs(result.gram - reference(1e12)).max() < 1e-7


def test_every_path_refuses_beyond_float64():
    for name, call in _paths(10 * MAX_SOLVER_N_W, True).items():
        with pytest.raises(FieldError, match=r"n_w = 1e\+10 is beyond what the float64 solvers resolve.*n_w <= 1e\+09"):
            call()


@pytest.mark.parametrize("argv, flag", [
    (["solve", "--counts", "6,6,3", "--n-w", "1e12"], "--n-w = 1e+12"),
    (["solve", "--counts", "2,2,1", "--n-w", "1e12", "--full"], "--n-w = 1e+12"),
    (["solve-sweep", "--counts", "6,6,3", "--grid", "n_w=10,1e12"], "--n-w = 1e+12"),
    (["map", "--k", "3", "--n-major", "4", "--ratio", "2", "--n-w", "1e11", "--anchors", "prototype"], "--n-w = 1e+11"),
    (["copies", "--counts", "6,6,3", "--max-n-w", "1e11"], "--max-n-w = 1e+11"),
    (["collapse-map", "--k", "3", "--n-major", "4", "--ratio", "2", "--n-w", "1e11", "--anchors", "prototype"],
     "--n-w = 1e+11"),
    (["design-prototypes", "--counts", "4,4,2,2", "--n-w", "1e11"], "--n-w = 1e+11"),
])
def test_every_command_refuses_beyond_float64(argv, flag, tmp_path):
    out = [] if argv[0] in ("copies", "design-prototypes") else ["--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*argv, *out])
    assert result.exit_code == 2 and flag in result.output and "<= 1e+09" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_solve_prints_the_closed_form_at_many_copies(tmp_path):
    reference, _ = _reference(True)
    result = CliRunner().invoke(app, ["solve", "--counts", "2,2,1", "--tau", "0.5", "--n-w", "1e6", "--json",
                                      "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    solution = data.get("solution", data)
    assert solution["status"] == "optimal"
    assert np.abs(np.array(solution["gram"]) - reference(1e6)).max() < 1e-8
