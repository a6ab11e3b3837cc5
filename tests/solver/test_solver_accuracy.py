"""Every reported entry against an independent high-precision oracle, and certificates that refuse what
they cannot certify."""

import mpmath as mp
import numpy as np
import pytest

from ufm.geometry import etf_gram
from ufm.solver import certify, collapsed_objective, solve


def oracle_two_groups(s: int, n_major: int, n_minor: int, tau: float, start: tuple[float, float, float]):
    """Optimal (majority cosine, minority cosine, cross cosine, loss) of full-batch vanilla SCL with s majority
    classes of n_major samples and s minority classes of n_minor, written from scratch in mpmath (40 digits).

    Block-constant unit means are mu_a = v_i + r_i e_a (e_a: a regular simplex of the group in its own
    subspace, r_i^2 = 1 - |v_i|^2); with v_A = (a, 0), v_B = (b1, b2) every such Gram is reached, and the
    loss is smooth in (a, b1, b2): Newton (mpmath findroot) on its gradient."""
    mp.mp.dps = 40
    s, na, nb, t = mp.mpf(s), mp.mpf(n_major), mp.mpf(n_minor), mp.mpf(tau)

    def cosines(a, b1, b2):
        va, vb = a * a, b1 * b1 + b2 * b2
        return va - (1 - va) / (s - 1), vb - (1 - vb) / (s - 1), a * b1

    def loss(a, b1, b2):
        alpha, beta, gamma = cosines(a, b1, b2)
        major = mp.log((na - 1) * mp.e ** (1 / t) + (s - 1) * na * mp.e ** (alpha / t) + s * nb * mp.e ** (gamma / t))
        minor = mp.log((nb - 1) * mp.e ** (1 / t) + (s - 1) * nb * mp.e ** (beta / t) + s * na * mp.e ** (gamma / t))
        return s * na * (major - 1 / t) + s * nb * (minor - 1 / t)

    alpha0, beta0, gamma0 = (mp.mpf(v) for v in start)
    a0 = mp.sqrt((1 + (s - 1) * alpha0) / s)
    b10 = gamma0 / a0
    b20 = mp.sqrt(max((1 + (s - 1) * beta0) / s - b10 ** 2, 0))  # 0 when v_A, v_B are collinear (f is even in b2)
    a0, b10, b20 = a0 * mp.mpf(1.002), b10 * mp.mpf(0.998), b20 * mp.mpf(1.001) + abs(b10) / 100  # start off the answer

    def gradient(a, b1, b2):
        return [mp.diff(lambda x: loss(x, b1, b2), a), mp.diff(lambda x: loss(a, x, b2), b1),
                mp.diff(lambda x: loss(a, b1, x), b2)]

    a, b1, b2 = mp.findroot(gradient, (a0, b10, b20), tol=mp.mpf(10) ** -30)
    assert max(abs(g) for g in gradient(a, b1, b2)) < mp.mpf(10) ** -20
    return [float(v) for v in cosines(a, b1, b2)] + [loss(a, b1, b2)]


@pytest.mark.parametrize("k", [10, 100, 1000])
def test_every_entry_within_1e_5_of_the_oracle_full_batch_step_500_vs_5(k):
    counts = np.array([500] * (k // 2) + [5] * (k // 2))
    result = solve(counts[None], 1.0)
    assert result.method == "grouped" and result.status == "optimal" and result.accuracy_source == "newton"
    reported = (result.gram[0, 1], result.gram[-1, -2], result.gram[0, -1])
    # the oracle starts 0.1-0.2% off the solver's answer and converges on its own
    *exact, loss = oracle_two_groups(k // 2, 500, 5, 1.0, reported)
    errors = np.abs(np.array(reported) - np.array(exact))
    assert errors.max() < 1e-5
    assert errors.max() <= max(result.entry_accuracy, 1e-12)  # the estimate covers the true error
    assert result.entry_accuracy < 1e-5
    # every entry of the k x k matrix is one of the three block values
    off = ~np.eye(k // 2, dtype=bool)
    h = k // 2
    for block, value in ((result.gram[:h, :h][off], exact[0]), (result.gram[h:, h:][off], exact[1]),
                         (result.gram[:h, h:], exact[2])):
        assert np.abs(block - value).max() < 1e-5
    assert np.all(np.diag(result.gram) == 1)
    assert result.objective == pytest.approx(float(loss), rel=1e-12)
    assert result.objective - float(loss) <= result.certified_gap  # the certificate holds against the oracle
    assert result.relative_gap < 1e-12


def test_the_issue_case_at_k_1000_is_the_oracle_not_the_unpolished_interior_point():
    # before the polish, k = 1000 reported a minority cosine of 0.0057 against 0.0019
    counts = np.array([500] * 500 + [5] * 500)
    *exact, _ = oracle_two_groups(500, 500, 5, 1.0, (-0.002, 0.0057, -0.00004))  # from the old, wrong answer
    assert exact[1] == pytest.approx(0.0019254, abs=1e-6)
    polished = solve(counts[None], 1.0)
    assert abs(polished.gram[-1, -2] - exact[1]) < 1e-9
    unpolished = solve(counts[None], 1.0, polish=False)  # the interior point alone misses the target
    assert unpolished.accuracy_source == "none" and abs(unpolished.gram[-1, -2] - exact[1]) > 1e-5


def test_interior_point_with_prototypes_is_polished_and_agrees_with_the_grouped_solve():
    counts = np.array([50] * 3 + [5] * 3)
    g = etf_gram(6).numpy()
    grouped = solve(counts[None], 0.2, g, 10)
    interior = solve(counts[None], 0.2, g, 10, reduce=False)
    assert grouped.method == "grouped" and interior.method == "interior"
    for r in (grouped, interior):
        assert r.accuracy_source == "newton" and r.entry_accuracy < 1e-6
    np.testing.assert_allclose(grouped.gram, interior.gram, atol=1e-9)
    np.testing.assert_allclose(grouped.cross, interior.cross, atol=1e-9)


def test_certify_refuses_a_matrix_that_is_not_a_gram():
    k = 10
    bad = np.full((k, k), -0.5)
    np.fill_diagonal(bad, 1.0)
    assert np.linalg.eigvalsh(bad).min() == pytest.approx(-3.5)
    with pytest.raises(ValueError, match="not a feasible collapsed geometry.*eigenvalue -3.5"):
        certify(bad, None, [[5] * k], 0.5)
    off_diag = np.eye(3) * 1.1
    with pytest.raises(ValueError, match=r"max \|M_aa - 1\|"):
        certify(off_diag, None, [[5, 5, 5]], 0.5)


def test_certify_refuses_an_almost_feasible_matrix_below_the_optimum():
    k, comp, tau = 10, [[5] * 10], 0.5
    best = solve(comp, tau)
    # move along the ETF's null direction (ones) while keeping the unit diagonal: eigenvalue about -4e-5
    u = np.ones(k) / np.sqrt(k)
    t = 4e-5 / (1 - 1 / k)
    near = best.gram - t * (np.outer(u, u) - np.diag(u * u))
    assert np.linalg.eigvalsh(near).min() == pytest.approx(-4e-5, rel=0.05)
    assert collapsed_objective(near, None, comp, tau) < best.objective  # below the optimum: infeasible
    with pytest.raises(ValueError, match="not a feasible"):
        certify(near, None, comp, tau)
    ok = certify(best.gram, None, comp, tau)  # the optimum itself passes, with a tiny gap
    assert ok["relative_gap"] < 1e-9 and ok["objective"] == pytest.approx(best.objective, rel=1e-12)


def test_certify_checks_feasibility_jointly_with_the_prototypes():
    # M alone is a Gram, but [[M, X], [X^T, G_*]] is not: mu_a = w_a (X = G_*) forces M = G_*
    comp, g = [[20, 20, 2, 2]], etf_gram(4).numpy()
    m = np.eye(4)
    with pytest.raises(ValueError, match=r"\[\[M, X\], \[X\^T, G_\*\]\] has eigenvalue"):
        certify(m, g, comp, 0.5, g, 10)
    with pytest.raises(ValueError, match="cross-Gram"):
        certify(g, None, comp, 0.5, g, 10)


def test_the_reduced_certificate_never_claims_more_than_the_optimum():
    # at perturbed points and with perturbed multipliers, f(y) - gap (the certified lower bound) stays
    # below the optimum; at the polished point it meets it
    from ufm.solver import Problem
    from ufm.solver.grouped import reduced_program

    counts = np.array([50] * 3 + [5] * 3)
    problem = Problem.make(counts[None], 0.2, etf_gram(6).numpy(), 10)
    best = solve(problem)
    cone, _ = reduced_program(problem, problem.groups)
    y_best = cone.polish(cone.solve_cvxpy("CLARABEL", {})[0])
    assert y_best.accepted and cone.f(y_best.y) == pytest.approx(best.objective, rel=1e-12)
    rng = np.random.default_rng(0)
    for scale in (1e-6, 1e-4, 1e-2):
        y = y_best.y + scale * rng.normal(size=cone.n_y)
        duals = [s + scale * (lambda a: a + a.T)(rng.normal(size=s.shape)) for s in y_best.duals]
        lower = cone.f(y) - cone.certified_gap(y, duals, y_best.eq_dual)
        assert lower <= best.objective + 1e-9 * abs(best.objective)
    tight = cone.f(y_best.y) - cone.certified_gap(y_best.y, y_best.duals, y_best.eq_dual)
    assert tight == pytest.approx(best.objective, rel=1e-12)


@pytest.mark.parametrize("method", ["interior", "bm"])
def test_an_unreduced_problem_beyond_the_kkt_polish_limit_is_polished_to_the_oracle(method):
    # two identical full batches of the STEP case (17 + 17 classes): the solver cannot reduce a batch-set, and
    # its cone KKT system has more unknowns than the dense polish takes, so the factor-form Newton polishes it;
    # the objective is twice the one-batch loss, so the mpmath oracle of the two-group problem is exact here
    from ufm.solver import MAX_FACTOR_UNKNOWNS, Problem, solve_bm, solve_collapsed
    from ufm.solver.grouped import MAX_POLISH_UNKNOWNS, reduced_program

    counts = np.array([500] * 17 + [5] * 17)
    problem = Problem.make(np.stack([counts, counts]), 1.0)
    assert problem.groups is None
    cone, _ = reduced_program(problem, [np.array([c]) for c in range(34)])
    assert cone.n_unknowns > MAX_POLISH_UNKNOWNS  # beyond the dense KKT polish
    result = solve_collapsed(problem) if method == "interior" else solve_bm(problem)
    assert result.method == method and result.accuracy_source == "newton" and "factor form" in result.note
    assert result.status == "optimal" and result.relative_gap < 1e-12
    reported = (result.gram[0, 1], result.gram[-1, -2], result.gram[0, -1])
    *exact, loss = oracle_two_groups(17, 500, 5, 1.0, reported)
    h = 17
    off = ~np.eye(h, dtype=bool)
    errors = [np.abs(result.gram[:h, :h][off] - exact[0]).max(), np.abs(result.gram[h:, h:][off] - exact[1]).max(),
              np.abs(result.gram[:h, h:] - exact[2]).max()]
    assert max(errors) < 1e-9
    assert max(errors) <= result.entry_accuracy < 1e-6  # the estimate covers the true error
    assert result.objective == pytest.approx(2 * float(loss), rel=1e-12)
    assert result.objective - 2 * float(loss) <= result.certified_gap
    assert MAX_FACTOR_UNKNOWNS >= 34 * 33


def test_factor_polish_agrees_with_the_kkt_polish_on_distinct_counts(monkeypatch):
    # k = 32 distinct counts (no symmetry): the factor-form polish (the default at this size) and the cone KKT
    # polish (forced by lifting its limit) are two Newton methods on different unknowns; they agree to 1e-10
    import ufm.solver.grouped as grouped
    import ufm.solver.newton as newton
    from ufm.solver import solve_collapsed

    counts = 100 + 3 * np.arange(32)[::-1]
    factor = solve_collapsed(counts[None], 0.5)
    monkeypatch.setattr(grouped, "MAX_POLISH_UNKNOWNS", 10 ** 5)
    monkeypatch.setattr(newton, "MAX_CHECK_UNKNOWNS", 0)  # the KKT polish alone, without its factor-form check
    kkt = solve_collapsed(counts[None], 0.5)
    assert "factor form" in factor.note and "factor form" not in kkt.note
    assert factor.accuracy_source == kkt.accuracy_source == "newton"
    difference = np.abs(factor.gram - kkt.gram).max()
    assert difference < 1e-10 and difference <= factor.entry_accuracy + kkt.entry_accuracy
    assert factor.objective == pytest.approx(kkt.objective, rel=1e-13)


@pytest.mark.parametrize("counts,tau", [([20, 20, 20, 2, 2], 0.5), ([20, 12, 7, 2, 2], 2.0)])
def test_relu_relaxation_reports_an_accuracy_that_covers_the_exact_orthogonal_frame(counts, tau):
    # ReLU features, full batch, no prototypes: the optimum is the orthogonal frame M = I (Kini et al. 2023);
    # its loss written out by hand: sum_a n_a [log((n_a - 1) e^(1/tau) + sum_(c != a) n_c) - 1/tau]
    n = np.array(counts, dtype=float)
    exact = float(sum(n[a] * (np.log((n[a] - 1) * np.exp(1 / tau) + n.sum() - n[a]) - 1 / tau) for a in range(len(n))))
    for result in (solve([counts], tau, nonnegative=True), solve([counts], tau, nonnegative=True, reduce=False)):
        assert result.accuracy_source == "newton" and result.status == "optimal"
        error = np.abs(result.gram - np.eye(len(counts))).max()
        assert error <= result.entry_accuracy < 1e-9
        assert result.objective == pytest.approx(exact, rel=1e-12)
        assert result.objective - exact <= result.certified_gap < 1e-9 * abs(exact)


def test_full_n_by_n_solve_reports_an_accuracy_that_covers_the_oracle():
    # full batch, no prototypes, counts 8, 8, 2, 2 (N = 20): the samples collapse, so every entry of the N x N
    # Gram is 1 within a class and the mpmath two-group oracle's cosine across classes
    from ufm.solver import solve_full

    counts = [8, 8, 2, 2]
    labels = np.repeat(np.arange(4), counts)
    result = solve_full(labels, [np.arange(len(labels))], 1.0)
    assert result.accuracy_source == "newton" and result.status == "optimal" and result.certified_gap is not None
    *exact, loss = oracle_two_groups(2, 8, 2, 1.0, (result.class_means[0, 1], result.class_means[2, 3],
                                                    result.class_means[0, 2]))
    block = np.array([[1, exact[0], exact[2], exact[2]], [exact[0], 1, exact[2], exact[2]],
                      [exact[2], exact[2], 1, exact[1]], [exact[2], exact[2], exact[1], 1]])
    expected = block[np.ix_(labels, labels)]
    error = np.abs(result.gram - expected).max()
    assert error <= result.entry_accuracy < 1e-8
    assert result.objective == pytest.approx(float(loss), rel=1e-12)
    assert result.objective - float(loss) <= result.certified_gap
