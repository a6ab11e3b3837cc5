
import numpy as np
import pytest
from typer.testing import CliRunner

from ufm.geometry import check_gram, etf_gram
from ufm.copies import minimal_copies, solve_point
from ufm.design import _block_from_params, block_gram
from ufm.maps import distance_map, map_cells

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
    from ufm.design import best_block_prototypes

    out = best_block_prototypes(STEP4, 0.5, 10.0, G4, max_evals=60, solver="auto")
    assert out["distance_g_star"] == pytest.approx(solve_point(STEP4, 0.5, G4, 10.0, solver="BM").distance, abs=1e-4)
    assert out["distance_best"] < 0.5 * out["distance_g_star"]
    # an independent solve (the other solver) with the designed prototype Gram confirms it
    g_w = check_gram(np.array(out["g_w"])).numpy()
    assert solve_point(STEP4, 0.5, G4, 10.0, g_w=g_w, solver="BM").distance == pytest.approx(out["distance_best"], abs=1e-4)
    with pytest.raises(ValueError, match="two majority classes .* and two minority classes"):
        best_block_prototypes([5, 5, 1], 0.5, 1.0)


def test_small_tau_solves_print_no_solver_warnings():
    """At tau = 1e-6 the factor polish meets ill-conditioned Hessians: judged by its own checks (status, gap),
    not a LinAlgWarning per Newton step on the user's terminal (was 4 here, dozens in a design search)."""
    import warnings

    from ufm.design import best_block_prototypes

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # nothing there is certified (entries loose at tau 1e-6): the design refuses to choose among them
        with pytest.raises(ValueError, match="certified none of the 3 solves"):
            best_block_prototypes([4, 4, 2, 2], 1e-6, 10.0, max_evals=3)
    assert not [w for w in caught if "LinAlgWarning" in str(w.category)], [str(w.message) for w in caught]


# ------------------------------------------------------------------------------ maps as sweeps (issue 13)

from ufm.executors import ExecutorConfig  # noqa: E402
from ufm.maps import MapCell, distance_cell, run_map  # noqa: E402

SMALL = MapCell(k=4, n_major=6, tau=0.5)
SMALL_GRID = {"prototype_anchors": (True, False), "ratio": (1.0, 3.0), "n_w": (0.0, 10.0)}


@pytest.mark.parametrize("geometry", ["etf", "orthogonal"])
def test_balanced_counts_reach_the_etf_without_prototypes_at_any_tau(geometry):
    """n_w = 0, balanced: the optimum is the simplex ETF (known answer), whatever tau; with an orthogonal target
    the distance is then the ETF's own distance to I (computed here from the two matrices)."""
    k = 4
    for tau in (0.1, 0.5, 1.0):
        row = distance_cell(MapCell(ratio=1.0, tau=tau, n_w=0.0, k=k, n_major=5, profile="balanced", geometry=geometry))
        etf = etf_gram(k).numpy()
        expected = 0.0 if geometry == "etf" else float(np.linalg.norm(etf / np.linalg.norm(etf) - np.eye(k) / 2))
        assert row["distance"] == pytest.approx(expected, abs=1e-4), (tau, row)
        assert row["status"].startswith("optimal") and row["distance_spread"] < 1e-4


@pytest.mark.parametrize("anchors", [True, False])
def test_distance_vanishes_as_n_w_grows(anchors):
    """Large-n_w limit, ETF target: the prototypes' terms dominate and G_M -> G_w = G_*; d decreases on the way."""
    rows = [distance_cell(MapCell(ratio=4.0, tau=0.5, n_w=w, prototype_anchors=anchors, k=4, n_major=8))
            for w in (1.0, 10.0, 100.0, 1e4)]
    d = [r["distance"] for r in rows]
    assert all(b < a for a, b in zip(d, d[1:])), d
    assert d[0] > 0.02 and d[-1] < 5e-3, d


def test_orthogonal_target_without_prototype_anchors_drifts_back_towards_the_etf():
    """Batch anchors only, orthogonal prototypes: as n_w -> infinity each sample's loss tends to cross-entropy
    with the fixed classifier W = I, log(1 + sum_{c' != c} exp((h.w_c' - h.w_c)/tau)), whose unit minimizer
    maximizes the margins: h ~ w_c - mean(w), the simplex ETF.  So d first falls, then climbs back towards
    the ETF's own distance to I (computed here from the two matrices), not to 0."""
    k = 4
    etf = etf_gram(k).numpy()
    d_etf = float(np.linalg.norm(etf / np.linalg.norm(etf) - np.eye(k) / 2))
    d = [distance_cell(MapCell(ratio=1.0, tau=0.1, n_w=w, prototype_anchors=False, k=k, n_major=8,
                               geometry="orthogonal"))["distance"] for w in (0.0, 10.0, 1e3, 1e4)]
    assert d[0] == pytest.approx(d_etf, abs=1e-4)  # balanced, no prototypes: the ETF
    assert d[1] < 0.1 < d[2] < d[3] < d_etf, d


def test_k100_step_reduces_and_agrees_with_burer_monteiro():
    """k = 100 STEP: the symmetry-reduced solve (auto) and the unreduced Burer-Monteiro give the same distance."""
    row = distance_cell(MapCell(ratio=10.0, tau=0.1, n_w=10.0, k=100, n_major=50, solver="auto"))
    assert row["solver_method"] != "BM" and row["solver_check"] == "BM"
    assert row["distance_spread"] < 1e-4 and row["status"] == "optimal" and 0.01 < row["distance"] < 0.2


def test_cross_check_too_costly_is_refused_before_solving():
    cell = MapCell(k=100, profile="long-tail", ratio=10.0)
    with pytest.raises(ValueError, match="cross_check=False"):
        cell.check()
    MapCell(k=100, profile="long-tail", ratio=10.0, cross_check=False).check()
    with pytest.raises(ValueError, match="balanced"):
        MapCell(profile="balanced", ratio=10.0).check()
    with pytest.raises(ValueError, match="geometry"):
        MapCell(geometry="minority")
    with pytest.raises(ValueError, match="tau"):
        MapCell(tau=0.0)


def test_map_on_local_processes_equals_inline_and_reruns_skip_finished_cells(tmp_path):
    inline = run_map(tmp_path / "inline", SMALL, SMALL_GRID)
    assert inline["finished"] == 8 and inline["ran"] == 8 and inline["figure"].is_file()
    assert inline["rows"] == [{**distance_cell(c), "point": r["point"]} for c, r in zip(
        [MapCell(**{**SMALL.to_dict(), "prototype_anchors": a, "ratio": q, "n_w": w})
         for a in (True, False) for q in (1.0, 3.0) for w in (0.0, 10.0)], inline["rows"])]
    local = run_map(tmp_path / "local", SMALL, SMALL_GRID, ExecutorConfig(executor="local", workers=2))
    assert local["ran"] == 8 and len(local["rows"]) == 8
    for a, b in zip(inline["rows"], local["rows"]):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert b[key] == pytest.approx(a[key], rel=1e-8, abs=1e-12), key
            else:
                assert b[key] == a[key], key
    again = run_map(tmp_path / "local", SMALL, SMALL_GRID, ExecutorConfig(executor="local", workers=2))
    assert (again["ran"], again["skipped"], again["rows"]) == (0, 8, local["rows"])
    (tmp_path / "local" / "points" / local["rows"][3]["point"] / "cell.json").unlink()
    again = run_map(tmp_path / "local", SMALL, SMALL_GRID)
    assert (again["ran"], again["skipped"]) == (1, 7)
    with pytest.raises(ValueError, match=r"holds a distance-map folder with other settings: values of n_w \(saved \[0.0, 10.0\], asked \[0.0, 5.0\]\)"):
        run_map(tmp_path / "local", SMALL, {**SMALL_GRID, "n_w": (0.0, 5.0)})


def test_map_on_slurm_equals_inline(tmp_path):
    from test_slurm import _no_cluster

    reason = _no_cluster()
    if reason is not None:
        pytest.skip(reason)
    grid = {"prototype_anchors": (True,), "ratio": (1.0, 3.0), "n_w": (10.0,)}
    inline = run_map(tmp_path / "inline", SMALL, grid)
    slurm = run_map(tmp_path / "slurm", SMALL, grid, ExecutorConfig(executor="slurm", cpus_per_task=1, time_min=10))
    assert slurm["finished"] == 2 and slurm["figure"].is_file()
    for a, b in zip(inline["rows"], slurm["rows"]):
        assert b["distance"] == pytest.approx(a["distance"], rel=1e-8, abs=1e-12) and b["counts"] == a["counts"]
    assert len(list((tmp_path / "slurm" / "logs").glob("*_log.out"))) == 2


def test_batching_curves_average_the_seeds_and_overlay_the_solver():
    from ufm.batching_curves import batching_curves
    from ufm.simulate import SimConfig

    # tau 0.5: there full batch converges in G_M within 400 steps (at tau 0.1 the loss is so flat near the
    # optimum that 3000 steps end within 6e-6 of it in loss and still 0.13 away in distance)
    base = SimConfig(k=4, n_major=8, ratio=4.0, d=8, batch_size=8, epochs=400, log_every=400, lr=0.05, tau=(0.5,),
                     dtype="float64", device="cpu")
    rows = batching_curves(base, n_ws=(0.0, 10.0), seeds=(0, 1))
    assert [(r["batching"], r["n_w"]) for r in rows] == [(b, w) for b in ("full", "shuffle", "binding", "solver")
                                                         for w in (0.0, 10.0)]
    for r in rows:
        assert r["mean"] == pytest.approx(np.mean(r["distances"])) and r["std"] == pytest.approx(np.std(r["distances"]))
        assert len(r["distances"]) == {"full": 1, "solver": 1}.get(r["batching"], 2)
    by = {(r["batching"], r["n_w"]): r for r in rows}
    counts = [8, 8, 2, 2]
    for w in (0.0, 10.0):
        assert by[("solver", w)]["mean"] == pytest.approx(solve_point(counts, 0.5, G4, w, solver="BM").distance)
        # the overlay compares: full-batch gradient descent reaches the certified optimum's geometry
        assert by[("full", w)]["mean"] == pytest.approx(by[("solver", w)]["mean"], abs=1e-3)
    assert by[("solver", 10.0)]["mean"] < by[("solver", 0.0)]["mean"] - 0.1
    with pytest.raises(ValueError, match="one temperature"):
        batching_curves(SimConfig(tau=(0.1, 0.5)))


def test_map_panels_split_by_what_varies():
    from ufm.plots import map_panels

    rows = [{"profile": "step", "k": 4, "n_major": 6, "geometry": g, "ratio": r, "tau": 0.5, "prototype_anchors": a,
             "n_w": 0.0, "distance": 0.1} for g in ("etf", "orthogonal") for r in (1.0, 3.0) for a in (False, True)]
    shared, panels = map_panels(rows)
    assert shared == "profile step, k 4, n_major 6, tau 0.5"
    assert [t for t, _, _ in panels] == ["ETF target\nprototype anchors", "ETF target\nbatch anchors only",
                                         "orthogonal target\nprototype anchors", "orthogonal target\nbatch anchors only"]
    assert all(y == "ratio" and len(sub) == 2 for _, sub, y in panels)
    _, panels = map_panels([{**r, "ratio": 3.0, "tau": t} for r in rows[:1] for t in (0.1, 1.0)])
    assert [y for _, _, y in panels] == ["tau"]


def test_the_design_chooses_among_certified_solves_only(monkeypatch):
    """A solve that is not certified never becomes the designed G_w, however small its distance."""
    import ufm.design as design
    from ufm.copies import SolvePoint

    def fake(counts, tau, target, n_w, prototype_anchors=True, g_w=None, solver="auto"):
        d = 0.5 if g_w is None else float(np.abs(np.asarray(g_w) - np.asarray(target)).sum())
        status = "optimal" if g_w is None or d > 0.05 else "optimal_inaccurate"  # near G_*: not certified
        return SolvePoint(n_w, d, status, "BM", 1.0, 0.0, 0.0, None)

    monkeypatch.setattr(design, "solve_point", fake)
    out = design.best_block_prototypes([6, 6, 2, 2], 0.1, 10.0, max_evals=30)
    assert out["best_status"] == "optimal" and out["distance_best"] > 0.05
    assert 0 < out["certified_solves"] < out["solves"] and out["g_star_status"] == "optimal"
