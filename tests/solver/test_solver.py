import numpy as np
import pytest

from ufm.batching import epoch_compositions
from ufm.geometry import etf_gram, orthogonal_gram
from ufm.imbalance import step_counts
from ufm.simulate import SimConfig, build_problem, simulate
from ufm.solver import certify, collapsed_objective, solve_collapsed


def test_balanced_full_batch_gives_the_simplex_etf():
    for k, tau in ((4, 0.5), (6, 0.1)):
        result = solve_collapsed([[5] * k], tau=tau)
        assert result.status == "optimal"
        off = result.gram[~np.eye(k, dtype=bool)]
        np.testing.assert_allclose(off, -1 / (k - 1), atol=1e-4)


def test_objective_matches_an_independent_evaluation_and_the_etf_is_optimal_when_balanced():
    comp = [[4, 4, 4]]
    result = solve_collapsed(comp, tau=0.3)
    assert result.objective == pytest.approx(collapsed_objective(result.gram, None, comp, 0.3), rel=1e-9)
    assert result.objective <= collapsed_objective(etf_gram(3).numpy(), None, comp, 0.3) + 1e-6
    # any other feasible geometry is worse
    assert result.objective < collapsed_objective(orthogonal_gram(3).numpy(), None, comp, 0.3)


@pytest.mark.parametrize(
    "counts,n_w,tau,anchors,batching",
    [
        ([20, 20, 2, 2], 10, 0.5, True, "full"),
        ([20, 20, 2, 2], 10, 0.5, False, "full"),
        ([12, 12, 12, 3, 3], 5, 0.2, True, "binding"),
        ([9, 9, 3], 2, 0.3, True, "shuffle"),
    ],
)
def test_two_solvers_agree_on_every_entry(counts, n_w, tau, anchors, batching):
    comp = [counts] if batching == "full" else epoch_compositions(counts, 8, batching).numpy()
    g = etf_gram(len(counts)).numpy()
    a = solve_collapsed(comp, tau, g, n_w, anchors, solver="CLARABEL")
    b = solve_collapsed(comp, tau, g, n_w, anchors, solver="SCS")
    np.testing.assert_allclose(a.gram, b.gram, atol=1e-3)
    np.testing.assert_allclose(a.cross, b.cross, atol=1e-3)
    assert a.objective == pytest.approx(b.objective, rel=1e-6)
    for r in (a, b):
        assert r.min_eigenvalue > -1e-6 and r.max_diag_error < 1e-6
        assert r.certified_gap is not None and r.relative_gap < 1e-7
        assert r.objective == pytest.approx(collapsed_objective(r.gram, r.cross, comp, tau, g, n_w, anchors), rel=1e-6)


@pytest.mark.parametrize(
    "n_w,tau,anchors", [(10, 0.5, True), (3, 0.2, True), (10, 0.5, False)]
)
def test_simulator_reaches_the_certified_optimum(n_w, tau, anchors):
    cfg = SimConfig(k=4, n_major=12, ratio=6, d=8, n_w=(n_w,), tau=(tau,), prototype_anchors=anchors,
                    batching="full", epochs=2000, lr=0.05, log_every=500, dtype="float64", device="cpu")
    sim = simulate(cfg)
    problem = build_problem(cfg)
    result = solve_collapsed([problem.counts.tolist()], tau, problem.g_star.numpy(), n_w, anchors)
    loss = sim.history[-1]["loss"][0]
    assert abs(loss - result.objective) <= 1e-3 * abs(result.objective)
    assert loss >= result.objective - 1e-6 * abs(result.objective)  # the solver's value is a lower bound
    np.testing.assert_allclose(sim.g_m[0], result.gram, atol=1e-3)


def test_imbalance_without_prototypes_is_not_the_etf_but_prototypes_pull_it_back():
    counts = step_counts(4, 20, 10).tolist()
    plain = solve_collapsed([counts], 0.5)
    assert np.abs(plain.gram - etf_gram(4).numpy()).max() > 0.05
    with_w = solve_collapsed([counts], 0.5, etf_gram(4).numpy(), 1000)
    assert np.abs(with_w.gram - etf_gram(4).numpy()).max() < np.abs(plain.gram - etf_gram(4).numpy()).max() / 10


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(compositions=[[5, 1, 1]]), r"classes \[1, 2\] never have two samples"),
        (dict(compositions=[[5, 0, 3]]), r"classes \[1\] appear in no batch"),
        (dict(compositions=[[5, 5]], tau=0.0), "tau must be > 0"),
        (dict(compositions=[[5, 5]], n_w=-1.0), "n_w must be >= 0"),
        (dict(compositions=[[5, 5]], n_w=2.0), "need their Gram"),
        (dict(compositions=[[5, 5, 5]], n_w=2.0, g_star=etf_gram(4).numpy()), "k = 3"),
        (dict(compositions=[[5, 5]], solver="MOSEK"), "not supported"),
        (dict(compositions=[5]), "k >= 2"),
        (dict(compositions=[[5, 5]], nonnegative=True, n_w=2.0, g_star=[[1, -0.5], [-0.5, 1]]), "negative cosines"),
    ],
)
def test_bad_problems_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        solve_collapsed(**kwargs)


def test_single_sample_classes_are_fine_with_prototypes():
    # checked against the N x N solve (its own rows and variables): with a single sample the class is
    # held by its prototypes, and collapse is optimal in full batch
    from ufm.imbalance import labels_from_counts
    from ufm.solver import class_mean_gram, solve_full

    g = etf_gram(3).numpy()
    result = solve_collapsed([[6, 6, 1]], 0.5, g, 5)
    labels = labels_from_counts([6, 6, 1]).numpy()
    full = solve_full(labels, [np.arange(13)], 0.5, g, 5)
    assert result.status == "optimal" and result.objective == pytest.approx(full.objective, rel=1e-6)
    np.testing.assert_allclose(result.gram, class_mean_gram(full.gram, labels), atol=1e-4)


@pytest.mark.parametrize(
    "k,n_w,tau,anchors,geometry",
    [(6, 0, 0.5, True, "etf"), (6, 10, 0.5, True, "etf"), (8, 5, 0.2, False, "etf"), (6, 10, 0.3, True, "minority")],
)
def test_symmetry_reduction_equals_the_unreduced_solve(k, n_w, tau, anchors, geometry):
    from ufm.geometry import minority_weighted_gram
    from ufm.solver import solve_grouped

    counts = step_counts(k, 20, 10).numpy()
    g = etf_gram(k).numpy() if geometry == "etf" else minority_weighted_gram(counts, 1.0).numpy()
    full = solve_collapsed(counts[None], tau, g, n_w, anchors, polish=False)  # plain interior point, no reduction
    reduced = solve_grouped(counts, tau, g, n_w, anchors)
    assert reduced.groups == (k // 2, k // 2) and reduced.method == "grouped"
    assert reduced.objective == pytest.approx(full.objective, rel=1e-8)
    np.testing.assert_allclose(reduced.gram, full.gram, atol=5e-4)
    if n_w:
        np.testing.assert_allclose(reduced.cross, full.cross, atol=5e-4)
    # the reduced solution is certified in the full k x k space too (independent certificate)
    cert = certify(reduced.gram, reduced.cross, counts[None], tau, g if n_w else None, n_w, anchors)
    assert cert["relative_gap"] < 1e-9
    assert reduced.objective == pytest.approx(
        collapsed_objective(reduced.gram, reduced.cross, counts[None], tau, g if n_w else None, n_w, anchors), rel=1e-8
    )


def test_symmetry_reduction_with_prototypes_is_certified_in_the_full_space_at_k_200():
    # the reduced solve's own certificate is in the reduced space; here the full-space one (2k x 2k dual)
    # and the k x k objective (rows of every anchor) check it independently
    from ufm.solver import solve_grouped

    counts = step_counts(200, 500, 10).numpy()
    g = etf_gram(200).numpy()
    result = solve_grouped(counts, 0.1, g, 100)
    assert result.status == "optimal" and result.accuracy_source == "newton" and result.entry_accuracy < 1e-5
    cert = certify(result.gram, result.cross, counts[None], 0.1, g, 100)
    assert cert["relative_gap"] < 1e-9 and cert["min_eigenvalue"] > -1e-9
    assert result.objective == pytest.approx(collapsed_objective(result.gram, result.cross, counts[None], 0.1, g, 100),
                                              rel=1e-12)


def test_symmetry_reduction_refuses_a_target_without_the_symmetry():
    from ufm.solver import solve_grouped

    counts = np.array([10, 10, 10, 2])  # groups {0, 1, 2} and {3}
    g = np.eye(4)
    g[0, 1] = g[1, 0] = 0.3  # pairs inside the first group no longer all alike
    with pytest.raises(ValueError, match="symmetry reduction does not apply"):
        solve_grouped(counts, 0.5, g, 5)


def test_agreement_rows_and_the_solve_dispatcher():
    from ufm.agreement import solver_vs_simulator
    from ufm.solver import solve

    cfg = SimConfig(k=4, n_major=12, ratio=6, d=8, n_w=(0.0, 10.0), tau=(0.5,), batching="full", epochs=1500,
                    lr=0.05, log_every=500, dtype="float64", device="cpu")
    rows = solver_vs_simulator(cfg)
    assert [r["n_w"] for r in rows] == [0.0, 10.0]
    for r in rows:
        assert abs(r["relative_gap"]) < 1e-3 and r["gram_max_difference"] < 1e-3
        assert r["distance_simulator"] == pytest.approx(r["distance_solver"], abs=1e-3)
    with pytest.raises(ValueError, match="batching='full'"):
        solver_vs_simulator(SimConfig(k=4, n_major=12, ratio=6, d=8, epochs=2, batch_size=8))
    counts = [[12, 12, 2, 2]]
    reduced = solve(counts, 0.5, etf_gram(4).numpy(), 10)
    assert reduced.method == "grouped" and reduced.groups == (2, 2)
    plain = solve(counts, 0.5, etf_gram(4).numpy(), 10, reduce=False)
    assert plain.method == "interior" and plain.groups is None
    np.testing.assert_allclose(reduced.gram, plain.gram, atol=1e-7)  # both polished
    assert solve(counts, 0.5, etf_gram(4).numpy(), 10, solver="BM").method == "bm"
    with pytest.raises(ValueError, match="not supported"):
        solve(counts, 0.5, solver="MOSEK")


def test_nonnegative_relaxation_gives_the_orthogonal_frame_under_imbalance():
    # Kini et al. 2023: with ReLU features full-batch SCL learns the orthogonal frame, whatever the imbalance.
    for counts, tau in (([20, 20, 2, 2], 0.5), ([30, 30, 30, 3, 3], 0.1)):
        result = solve_collapsed([counts], tau, nonnegative=True)
        np.testing.assert_allclose(result.gram, np.eye(len(counts)), atol=1e-4)
    with_w = solve_collapsed([[20, 20, 2, 2]], 0.5, np.eye(4), 10, nonnegative=True)
    np.testing.assert_allclose(with_w.gram, np.eye(4), atol=1e-4)
    with pytest.raises(ValueError, match="negative cosines"):
        solve_collapsed([[20, 20, 2, 2]], 0.5, etf_gram(4).numpy(), 10, nonnegative=True)
    # the dispatcher takes the reduced problem with ReLU too, same answer
    from ufm.solver import solve

    reduced = solve([[20, 20, 2, 2]], 0.5, nonnegative=True)
    assert reduced.method == "grouped" and reduced.accuracy_source == "newton" and "active set" in reduced.note
    np.testing.assert_allclose(reduced.gram, np.eye(4), atol=1e-4)


@pytest.mark.parametrize("n_w,tau,batching", [(10, 0.5, "full"), (0, 0.5, "full"), (3, 0.2, "full")])
def test_full_solver_agrees_with_the_collapsed_one_where_collapse_holds(n_w, tau, batching):
    from ufm.batching import epoch_batches
    from ufm.imbalance import labels_from_counts
    from ufm.solver import full_objective, solve_full

    import torch

    counts = [4, 4, 2, 2]
    labels = labels_from_counts(counts)
    batches = epoch_batches(labels, 6, batching, torch.Generator().manual_seed(0), 4)
    index = [row[keep].numpy() for row, keep in zip(batches.index, batches.mask)]
    comp = epoch_compositions(counts, 6, batching).numpy()
    g = etf_gram(4).numpy() if n_w else None
    full = solve_full(labels.numpy(), index, tau, g, n_w)
    collapsed = solve_collapsed(comp, tau, g, n_w)
    y = labels.numpy()
    for a in range(4):
        assert full.gram[np.ix_(y == a, y == a)].min() > 1 - 1e-4  # the certificate: samples collapse
    first = [int(np.nonzero(y == a)[0][0]) for a in range(4)]
    np.testing.assert_allclose(full.gram[np.ix_(first, first)], collapsed.gram, atol=1e-3)
    assert full.objective == pytest.approx(collapsed.objective, rel=1e-6)
    assert full.objective == pytest.approx(full_objective(full.gram, full.cross, y, index, tau, g, n_w), rel=1e-8)


def test_full_solver_bad_input():
    from ufm.solver import solve_full

    with pytest.raises(ValueError, match="distinct sample indices"):
        solve_full([0, 0, 1, 1], [[0, 1, 1]], 0.5)
    with pytest.raises(ValueError, match="no anchor has a positive"):
        solve_full([0, 1, 2], [[0, 1, 2]], 0.5)


def test_full_solver_shows_when_collapse_is_not_optimal():
    # One epoch of batch binding (batches of 6 plus the 4 bound examples), n_w = 0: the bound examples sit
    # in every batch, the others in one, and the certified optimum is not collapsed.
    from ufm.batching import epoch_batches
    from ufm.imbalance import labels_from_counts
    from ufm.solver import solve_full

    import torch

    labels = labels_from_counts([4, 4, 2, 2])
    batches = epoch_batches(labels, 6, "binding", torch.Generator().manual_seed(0), 4)
    index = [row[keep].numpy() for row, keep in zip(batches.index, batches.mask)]
    full = solve_full(labels.numpy(), index, 0.5)
    collapsed = solve_collapsed(epoch_compositions([4, 4, 2, 2], 6, "binding").numpy(), 0.5)
    # the README states: within-class cosines down to 0.945, 0.8% below the best collapsed configuration
    assert 1 - full.objective / collapsed.objective == pytest.approx(0.008, abs=5e-4)
    y = labels.numpy()
    assert min(full.gram[np.ix_(y == a, y == a)].min() for a in range(4)) == pytest.approx(0.945, abs=5e-4)


@pytest.mark.parametrize(
    "comp,n_w,tau,anchors",
    [([[20, 20, 2, 2]], 10, 0.5, True), ([[20, 20, 2, 2]], 0, 0.5, True), ([[9, 7, 5, 3]], 5, 0.2, False),
     ([[6, 4, 2, 1], [5, 3, 2, 2]], 3, 0.3, True)],
)
def test_burer_monteiro_solve_is_certified_and_agrees_with_the_interior_point_solve(comp, n_w, tau, anchors):
    from ufm.solver import solve_bm

    g = etf_gram(4).numpy() if n_w else None
    bm = solve_bm(comp, tau, g, n_w, anchors)
    ip = solve_collapsed(comp, tau, g, n_w, anchors)
    assert bm.status == "optimal" and bm.relative_gap < 1e-6 and bm.method == "bm"
    np.testing.assert_allclose(bm.gram, ip.gram, atol=1e-3)
    if n_w:
        np.testing.assert_allclose(bm.cross, ip.cross, atol=1e-3)
    # the certificate is a real lower bound: the interior-point optimum is not below it
    assert ip.objective >= bm.objective - bm.certified_gap - 1e-6 * abs(bm.objective)
    # the restart spread is an estimate of the entry error: here it covers the distance to the polished solve
    if ip.accuracy_source == "newton":
        assert np.abs(bm.gram - ip.gram).max() <= 10 * bm.entry_accuracy + 1e-6
    assert bm.objective == pytest.approx(collapsed_objective(bm.gram, bm.cross, comp, tau, g, n_w, anchors), rel=1e-10)


def test_burer_monteiro_certificate_detects_a_non_optimal_point():
    # the dual matrix of a far-from-optimal point has a large negative eigenvalue: a large certified gap
    from ufm.solver import solve_bm

    loose = solve_bm([[12, 12, 3, 3]], 0.5, etf_gram(4).numpy(), 10, max_iter=1, polish=False)
    tight = solve_bm([[12, 12, 3, 3]], 0.5, etf_gram(4).numpy(), 10)
    assert loose.certified_gap > 100 * tight.certified_gap
    assert loose.objective >= tight.objective - tight.certified_gap


def test_auto_solver_handles_a_hundred_classes_without_symmetry():
    from ufm.imbalance import long_tail_counts
    from ufm.solver import solve

    counts = long_tail_counts(100, 500, 10).numpy()
    result = solve(counts[None], 0.1, etf_gram(100).numpy(), 10.0)
    assert result.solver == "BM" and result.status == "optimal"
    assert result.relative_gap < 1e-6 and result.entry_accuracy < 1e-3 and result.accuracy_source == "restarts"


def test_certify_bounds_the_suboptimality_of_any_geometry():
    from ufm.solver import certify

    comp, g = [[20, 20, 2, 2]], etf_gram(4).numpy()
    best = solve_collapsed(comp, 0.5, g, 10)
    assert 0 <= best.relative_gap < 1e-5
    # the prototypes' own geometry is feasible (mu_a = w_a) but not optimal: the bound must cover the true gap
    etf = certify(g, g, comp, 0.5, g, 10)
    true_gap = collapsed_objective(g, g, comp, 0.5, g, 10) - best.objective
    assert etf["certified_gap"] >= true_gap > 0.1


def test_nonnegative_prototypes_are_found_or_refused():
    from ufm.solver import nonnegative_prototypes

    for g in (np.eye(4), np.array([[1, 0.5, 0.5], [0.5, 1, 0.5], [0.5, 0.5, 1]]), np.full((3, 3), 1.0)):
        w = nonnegative_prototypes(g, len(g)).numpy()
        assert w.min() >= 0 and np.abs(w @ w.T - g).max() < 1e-6
    with pytest.raises(ValueError, match="negative cosines"):
        nonnegative_prototypes(etf_gram(3).numpy(), 3)
    # doubly non-negative (PSD, entries >= 0) but not completely positive
    g = np.array([[1, 1, 0, 0, 1], [1, 2, 1, 0, 0], [0, 1, 2, 1, 0], [0, 0, 1, 2, 1], [1, 0, 0, 1, 6]], float)
    d = 1 / np.sqrt(np.diag(g))
    with pytest.raises(ValueError, match="no non-negative prototypes"):
        nonnegative_prototypes(g * d[:, None] * d[None, :], 5)


def test_fractional_copies_with_prototype_anchors_are_refused_everywhere_by_one_rule():
    # with prototype anchors an anchor copy of w_a has n_w - 1 copies of itself as positives: 0 < n_w < 1 has no
    # meaning there; the losses, the collapsed and the full solvers refuse it with the same line
    import torch

    from ufm.losses import batch_loss, check_copies, scl_loss
    from ufm.solver import solve, solve_full, solve_full_bm

    g = np.eye(3)
    h = torch.nn.functional.normalize(torch.randn(6, 3, dtype=torch.float64), dim=1)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    w = torch.eye(3, dtype=torch.float64)
    message = "with prototype anchors n_w must be 0 or >= 1, got 0.5.*prototype_anchors=False"
    calls = [lambda: solve([[5, 3, 2]], 0.5, g, 0.5), lambda: solve_collapsed([[5, 3, 2]], 0.5, g, 0.5),
             lambda: solve_full(np.array([0, 0, 1, 1, 2, 2]), [np.arange(6)], 0.5, g, 0.5),
             lambda: solve_full_bm(np.array([0, 0, 1, 1, 2, 2]), [np.arange(6)], 0.5, g, 0.5),
             lambda: scl_loss(h, y, w, 0.5, 0.5), lambda: batch_loss("scl", h, y, w, 0.5, 0.5),
             lambda: scl_loss(h, y, w, torch.tensor([2.0, 0.5], dtype=torch.float64), 0.5),
             lambda: check_copies(0.5, True)]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()
    # without prototype anchors n_w is a weight: any n_w >= 0; with anchors 0 and >= 1 are fine
    assert solve([[5, 3, 2]], 0.5, g, 0.5, prototype_anchors=False).status == "optimal"
    assert torch.isfinite(scl_loss(h, y, w, 0.5, 0.5, prototype_anchors=False))
    for n_w in (0.0, 1.0, 2.5):
        check_copies(n_w, True)
        assert torch.isfinite(scl_loss(h, y, w, n_w, 0.5))


def test_every_solver_path_checks_its_memory_estimate_first():
    from ufm.solver import solve, solve_bm, solve_full, solve_grouped, solve_memory_bytes

    distinct = (100 + np.arange(60))[None]
    calls = [(lambda: solve(distinct, 0.5, solver="CLARABEL", max_memory_gb=0.01), "interior-point solve \\(k = 60"),
             (lambda: solve(distinct, 0.5, max_memory_gb=0.01), "Burer-Monteiro solve \\(k = 60"),
             (lambda: solve_bm(distinct, 0.5, max_memory_gb=0.01), "Burer-Monteiro solve \\(k = 60"),
             (lambda: solve_collapsed(distinct, 0.5, max_memory_gb=0.01), "interior-point solve \\(k = 60"),
             (lambda: solve_grouped([50] * 30 + [5] * 30, 0.5, max_memory_gb=1e-4),
              "symmetry-reduced solve \\(k = 60, 2 groups"),
             (lambda: solve_full(np.repeat(np.arange(3), 30), [np.arange(90)], 0.5, max_memory_gb=0.01),
              "full N x N interior-point solve \\(90 samples\\)")]
    for call, message in calls:
        with pytest.raises(ValueError, match=message + ".*needs about .* GiB.*max_memory_gb"):
            call()
    # the models grow with the size that drives them
    assert solve_memory_bytes(60, 1, True, "interior") > solve_memory_bytes(30, 1, True, "interior")
    assert solve_memory_bytes(60, 1, False, "grouped", groups=2) < solve_memory_bytes(60, 1, False, "interior")
