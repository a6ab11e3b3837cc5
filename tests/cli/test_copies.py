"""ufm copies concludes from certified solves only: it stops where the solver stops certifying and says so."""

import json

import pytest
from typer.testing import CliRunner

import ufm.copies as copies
from ufm.cli.main import app
from ufm.copies import SolvePoint, minimal_copies
from ufm.geometry import etf_gram

G4 = etf_gram(4).numpy()
STEP4 = [20, 20, 2, 2]

runner = CliRunner()


def test_the_search_stops_where_certification_ends():
    """STEP 20x2,2x2 at tau 0.075 (below 0.1 float64 bounds the entries more loosely as n_w grows): certified up to
    n_w = 2048, not at 4096 (optimal_inaccurate); a target that only larger n_w would reach is not concluded "not
    reached up to --max-n-w" from uncertified solves."""
    args = ["copies", "--counts", "20x2,2x2", "--tau", "0.075", "--target-distance", "1e-7", "--max-n-w", "1e9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert ("not reached up to n_w = 2048, the largest certified value; beyond it the solver cannot certify "
            "n_w = 4096 (status optimal_inaccurate)") in text
    assert "unknown" in text and "up to n_w = 1e+09" not in text
    data = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert not data["reached"] and data["lower"] == 2048 and data["uncertified"]["n_w"] == 4096
    assert all(s["status"] == "optimal" for s in data["steps"][:-1]) and data["steps"][-1]["n_w"] == 4096


def _fake_solver(monkeypatch, certified_below: float, distance=lambda n_w: 1 / (1 + n_w)):
    """solve_point replaced: distance 1 / (1 + n_w), certified for n_w < ``certified_below``."""
    def fake(counts, tau, g_star, n_w, prototype_anchors=True, g_w=None, solver="auto"):
        status = "optimal" if n_w < certified_below else "optimal_inaccurate"
        return SolvePoint(float(n_w), distance(n_w), status, "BM", 1.0, 0.0, 0.0, None)

    monkeypatch.setattr(copies, "solve_point", fake)


@pytest.mark.parametrize("certified_below, reached, answer, lower, stop, says", [
    (1e9, True, 9.0, 8.99, None, "not reached at n_w = 8.99"),  # every solve certified: the plain search
    (5.0, False, None, 4.0, 8.0, "not reached up to n_w = 4, the largest certified value"),  # stops doubling
    (0.0, False, None, None, 0.0, "no answer: the solver cannot certify n_w = 0"),  # nothing certified
])
def test_uncertified_solves_never_decide(monkeypatch, certified_below, reached, answer, lower, stop, says):
    _fake_solver(monkeypatch, certified_below)
    result = minimal_copies([5, 5, 2, 2], 0.1, None, target_distance=0.1, rel_tol=1e-3)
    assert result.reached is reached
    assert result.lower == (None if lower is None else pytest.approx(lower, abs=0.01))
    assert result.n_w == (None if answer is None else pytest.approx(answer, rel=2e-3))
    assert (result.uncertified is None) if stop is None else result.uncertified.n_w == stop
    assert says in result.conclusion()


def test_an_uncertified_bisection_step_keeps_the_certified_bracket(monkeypatch):
    # certified at 8 (miss) and 16 (hit) but not in between: the answer is the certified hit, bracket [8, 16]
    def fake(counts, tau, g_star, n_w, prototype_anchors=True, g_w=None, solver="auto"):
        status = "optimal" if n_w in (0.0, 1.0, 2.0, 4.0, 8.0, 16.0) else "optimal_inaccurate"
        return SolvePoint(float(n_w), 1 / (1 + n_w), status, "BM", 1.0, 0.0, 0.0, None)

    monkeypatch.setattr(copies, "solve_point", fake)
    result = minimal_copies([5, 5, 1, 1], 0.1, None, target_distance=0.1, rel_tol=1e-3)
    assert result.reached and result.n_w == 16.0 and result.lower == 8.0 and result.uncertified.n_w == 12.0
    assert "the bisection stopped between them: the solver cannot certify n_w = 12" in result.conclusion()


def test_copies_command_matches_the_library_and_refuses_bad_flags():
    result = runner.invoke(app, ["copies", "--counts", "20x2,2x2", "--tau", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["reached"] and data["n_w"] == pytest.approx(minimal_copies(STEP4, 0.5, G4, 0.05).n_w)
    result = runner.invoke(app, ["copies", "--counts", "20x2,2x2", "--tau", "0.5", "--target-distance", "0",
                                 "--max-n-w", "2"])
    assert result.exit_code == 0 and "not reached up to n_w = 2" in result.output
    for bad in (["--target-distance", "-1"], ["--tol", "2"], ["--tau", "0"]):
        result = runner.invoke(app, ["copies", "--counts", "20x2,2x2", *bad])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--target-distance" in runner.invoke(app, ["copies", "--target-distance", "-1"]).output
    # an unknown solver is refused naming the choices, and --help names every one of them
    result = runner.invoke(app, ["copies", "--solver", "foo"])
    assert result.exit_code == 2 and "--solver 'foo' is not one of" in result.output, result.output
    choices = result.output.strip().rsplit(" is not one of ", 1)[1].split(", ")
    help_text = " ".join(runner.invoke(app, ["copies", "--help"], env={"COLUMNS": "300"}).output.split())
    assert sorted(choices) == ["BM", "CLARABEL", "SCS", "auto"] and all(c in help_text for c in choices), help_text
