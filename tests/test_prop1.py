import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ufm.geometry import minority_weighted_gram, prototypes_from_gram
from ufm.losses import limit_loss, prop1_loss, scl_loss
from ufm.prop1 import Prop1Case, gaps, verdicts


def setup(seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = prototypes_from_gram(minority_weighted_gram([5, 5, 2, 2], 1.0), 6, seed=1)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 1, 0])
    h = F.normalize(torch.randn(2, 10, 6, generator=gen, dtype=torch.float64), dim=-1)
    return w, y, h


@pytest.mark.parametrize("anchors", [True, False])
def test_limit_loss_matches_scl_with_a_gap_shrinking_like_one_over_n_w(anchors):
    w, y, h = setup()
    value_gaps, grad_gaps = [], []
    for n_w in (1e3, 1e4, 1e5):  # far enough that the 1/n_w^2 term is below 20% of the first (at 1e2 it is not)
        exact = scl_loss(h, y, w, n_w, 0.5, anchors)
        limit = limit_loss(h, y, w, 0.5, anchors)
        value_gaps.append(abs(float((exact[0] - exact[1]) - (limit[0] - limit[1]))))
        x = h[0].clone().requires_grad_()
        g_exact = torch.autograd.grad(scl_loss(x, y, w, n_w, 0.5, anchors), x)[0]
        g_limit = torch.autograd.grad(limit_loss(x, y, w, 0.5, anchors), x)[0]
        tangent = lambda g: g - (g * x.detach()).sum(-1, keepdim=True) * x.detach()  # noqa: E731
        grad_gaps.append(float(torch.linalg.norm(tangent(g_exact) - tangent(g_limit))))
    for series in (value_gaps, grad_gaps):
        ratios = np.array(series[:-1]) / np.array(series[1:])
        assert np.all((ratios > 8) & (ratios < 12)), series  # one decade of n_w, one decade of gap


def test_published_limit_keeps_a_finite_gap():
    w, y, h = setup()
    published = [abs(float((scl_loss(h, y, w, n_w, 0.5)[0] - scl_loss(h, y, w, n_w, 0.5)[1])
                           - (prop1_loss(h, y, w, 0.5)[0] - prop1_loss(h, y, w, 0.5)[1]))) for n_w in (1e3, 1e4)]
    assert published[1] > 0.5 * published[0] > 0.01


def test_limit_loss_terms_by_hand():
    # one sample h = w_0, orthogonal prototypes e1, e2, tau = 1:
    # CE: log(1 + e^{-1}) ... -log softmax_0((1, 0)) = log(1 + e^{-1}); alignment: -1;
    # repulsion: sum_c e^{w_c . h} / Z_c with Z_c = e + 1: (e + 1) / (e + 1) = 1.
    w = torch.eye(2, dtype=torch.float64)
    h = w[:1].clone()
    y = torch.tensor([0])
    ce = np.log(1 + np.exp(-1))
    assert limit_loss(h, y, w, 1.0, False).item() == pytest.approx(ce)
    assert limit_loss(h, y, w, 1.0, True).item() == pytest.approx(ce - 1 + 1)


def test_verify_reports_both_conventions():
    rows = gaps(Prop1Case(inputs="near-optimum", geometry="minority"), n_ws=(100.0, 1000.0, 10000.0))
    assert len(rows) == 6
    out = verdicts(rows)
    assert [v["prototype_anchors"] for v in out] == [True, False]
    for v in out:
        assert v["grad_gap_derived_slope"] == pytest.approx(-1.0, abs=0.1)
        assert v["published_holds"] is False


def test_minimizers_of_the_derived_limit_match_exact_scl_and_the_published_ones_do_not():
    from ufm.prop1 import minimizers

    for row in minimizers(n_w=1e4, tau=0.5, epochs=1500):
        assert row["max_angle_deg_derived"] < 0.5
        assert row["max_angle_deg_published"] > 5.0


def test_batch_anchor_scl_approaches_ce_geometry_as_n_w_grows():
    from ufm.prop1 import scl_vs_ce

    rows = scl_vs_ce(n_ws=(0.0, 10.0, 1000.0), taus=(0.5,), epochs=1500)
    batch_only = [r["distance_scl_to_ce"] for r in rows if not r["prototype_anchors"]]
    assert batch_only[0] > batch_only[1] > batch_only[2] and batch_only[2] < 0.02


def test_published_gradient_gap_has_no_finite_worst_case():
    # Along a descent on exact SCL the exact gradient vanishes while the published limit's does not:
    # the relative gap grows without bound (any "worst case" is the worst of the cases tried).
    from ufm.prop1 import gap_near_the_minimizer

    rows = gap_near_the_minimizer(iterations=(0, 300))
    assert rows[0]["gap"] < 1.0
    assert rows[1]["exact_grad_norm"] < 1e-4 and rows[1]["gap"] > 1e3
    # the published gradient itself stays of order one there: gap x exact norm = ||g_exact - g_published||
    assert rows[1]["gap"] * rows[1]["exact_grad_norm"] > 0.1


def test_local_search_only_raises_the_gap_and_measures_it_with_the_exact_loss():
    from ufm.prop1 import _published_grad_gap, _random_problem, search_worst_gradient_gap

    out = search_worst_gradient_gap(n_w=1e3, starts=2, steps=30, seed=3)
    assert out["worst_after_local_search"] > out["worst_at_random_starts"] > 0
    # the gap function is the definition: recompute one by hand at a random problem
    y, w, tau, h = _random_problem(torch.Generator().manual_seed(0))
    gap, norm = _published_grad_gap(h, y, w, 1e3, tau)
    x = h.clone().requires_grad_()
    ge = torch.autograd.grad(scl_loss(x, y, w, 1e3, tau, True), x)[0]
    gp = torch.autograd.grad(prop1_loss(x, y, w, tau), x)[0]
    tangent = lambda g: g - (g * h).sum(-1, keepdim=True) * h  # noqa: E731
    expected = torch.linalg.norm(tangent(ge) - tangent(gp)) / torch.linalg.norm(tangent(ge))
    assert gap == pytest.approx(float(expected), rel=1e-10)
    assert norm == pytest.approx(float(torch.linalg.norm(tangent(ge))), rel=1e-10)
