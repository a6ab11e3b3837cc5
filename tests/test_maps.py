import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from ufm.geometry import check_gram, etf_gram
from ufm.maps import (
    _block_from_params,
    block_gram,
    distance_map,
    map_cells,
    minimal_copies,
    solve_point,
)

runner = CliRunner()
G4 = etf_gram(4).numpy()
STEP4 = [20, 20, 2, 2]


def test_balanced_counts_reach_the_etf_without_prototypes():
    result = minimal_copies([6, 6, 6, 6], 0.5, G4, target_distance=1e-3)
    assert result.reached and result.n_w == 0.0 and result.lower is None
    assert len(result.steps) == 1 and result.distance <= 1e-3
    assert result.steps[0].status.startswith("optimal") and result.steps[0].certified_gap is not None


@pytest.mark.parametrize("anchors", [True, False])
def test_found_copies_meet_the_target_and_slightly_fewer_do_not(anchors):
    target, tol = 0.05, 1e-3
    result = minimal_copies(STEP4, 0.5, G4, target, anchors, max_n_w=1e4, rel_tol=tol)
    assert result.reached and result.n_w > 1 and result.monotone_on_path
    assert result.n_w - result.lower <= tol * result.n_w
    # independent solves on both sides of the answer
    assert solve_point(STEP4, 0.5, G4, result.n_w, anchors, solver="BM").distance <= target
    assert solve_point(STEP4, 0.5, G4, (1 - tol) * result.n_w, anchors, solver="BM").distance > target
    # every solve along the search is reported with its certificate
    assert all(s.certified_gap is not None and s.relative_gap < 1e-4 for s in result.steps)


def test_an_unreachable_target_is_reported_as_not_reached():
    result = minimal_copies(STEP4, 0.5, G4, target_distance=0.0, max_n_w=8)
    assert not result.reached and result.n_w is None and result.lower == 8
    assert [s.n_w for s in result.steps] == [0, 1, 2, 4, 8]
    assert all(s.distance > 0 for s in result.steps)


@pytest.mark.parametrize("anchors", [True, False])
def test_large_n_w_limit_reaches_the_target(anchors):
    d0 = solve_point(STEP4, 0.5, G4, 0.0, anchors, solver="BM").distance
    d_large = solve_point(STEP4, 0.5, G4, 1e4, anchors, solver="BM").distance
    assert d0 > 0.1 and d_large < 1e-2


def test_bad_inputs_are_refused():
    for kwargs, match in (({"target_distance": -0.1}, "target_distance"), ({"max_n_w": 0}, "max_n_w"),
                          ({"rel_tol": 0}, "rel_tol"),
                          ({"max_n_w": 0.5}, "max_n_w must be >= 1 with prototype anchors")):
        with pytest.raises(ValueError, match=match):
            minimal_copies(STEP4, 0.5, G4, **{"target_distance": 0.05, **kwargs})
    with pytest.raises(ValueError, match="k = 4"):
        solve_point(STEP4, 0.5, etf_gram(3), 1.0)


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


def test_distance_map_rows():
    cells = map_cells(ratios=(1.0, 4.0), taus=(0.5,), n_ws=(0.0, 10.0), anchors=(True,), k=4, n_major=4)
    rows = distance_map(cells)
    assert len(rows) == 4
    by = {(r["ratio"], r["n_w"]): r for r in rows}
    assert by[(4.0, 0.0)]["distance"] is None and "positive pair" in by[(4.0, 0.0)]["note"]  # minority of 1 sample
    assert by[(1.0, 0.0)]["distance"] < 1e-3  # balanced: the ETF
    assert by[(4.0, 10.0)]["distance"] > by[(1.0, 10.0)]["distance"]
    for r in rows:
        if r["distance"] is not None:
            assert r["distance_spread"] < 1e-3 and r["status"] == "optimal"
            assert r["distance"] == pytest.approx(solve_point(r["counts"], 0.5, G4, r["n_w"], True, solver="BM").distance)


def test_block_prototype_grams_are_valid_and_contain_the_etf():
    counts = [5, 5, 5, 1, 1, 1]
    a = -1 / 5
    np.testing.assert_allclose(block_gram(counts, a, a, a), etf_gram(6).numpy(), atol=1e-12)
    rng = np.random.default_rng(0)
    for theta in rng.normal(scale=3, size=(20, 3)):
        g, (a, b, c) = _block_from_params(counts, theta)
        check_gram(g)  # PSD with unit diagonal, or raises
        assert g[0, 1] == pytest.approx(a) and g[3, 4] == pytest.approx(b) and g[0, 3] == pytest.approx(c)


def test_prototypes_that_differ_from_the_target_can_bring_g_m_closer():
    from ufm.maps import best_block_prototypes

    out = best_block_prototypes(STEP4, 0.5, 10.0, G4, max_evals=60, solver="auto")
    assert out["distance_g_star"] == pytest.approx(solve_point(STEP4, 0.5, G4, 10.0, solver="BM").distance, abs=1e-4)
    assert out["distance_best"] < 0.5 * out["distance_g_star"]
    # an independent solve (the other solver) with the designed prototype Gram confirms it
    g_w = check_gram(np.array(out["g_w"])).numpy()
    assert solve_point(STEP4, 0.5, G4, 10.0, g_w=g_w, solver="BM").distance == pytest.approx(out["distance_best"], abs=1e-4)
    with pytest.raises(ValueError, match="two majority and two minority"):
        best_block_prototypes([5, 5, 1], 0.5, 1.0)


def test_design_prototypes_command():
    result = runner.invoke(app, ["design-prototypes", "--counts", "20x2,2x2", "--tau", "0.5", "--n-w", "10",
                                 "--max-evals", "20", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["solves"] <= 21 and data["distance_best"] <= data["distance_g_star"] + 1e-6
    result = runner.invoke(app, ["design-prototypes", "--counts", "20x2,2x2", "--tau", "-1"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
