import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ufm.geometry import etf_gram, orthogonal_gram, prototypes_from_gram
from ufm.losses import ce_fixed_classifier_loss, class_averaging_loss, prop1_loss, scl_loss
from ufm.reference import concatenated_scl_loss, naive_class_averaging_loss, naive_scl_loss


def unit(*shape, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=gen, dtype=dtype), dim=-1)


def imbalanced_labels(n, k, seed):
    """Labels with a big class, singletons and (for n < 2k) missing classes."""
    gen = torch.Generator().manual_seed(seed)
    probs = torch.tensor([2.0**-c for c in range(k)])
    y = torch.multinomial(probs, n, replacement=True, generator=gen)
    y[-1] = k - 1  # make sure the rarest class appears (often as a singleton)
    return y


GRID = list(itertools.product([2, 7, 12], [2, 5], [3, 9], [0, 1, 7, 50], [0.1, 1.0], [True, False]))


@pytest.mark.parametrize("n,k,d,n_w,tau,anchors", GRID)
def test_scl_matches_naive_reference(n, k, d, n_w, tau, anchors):
    seed = hash((n, k, d, n_w, tau, anchors)) % 1000
    y = imbalanced_labels(n, k, seed)
    h = unit(n, d, seed=seed).requires_grad_()
    w = unit(k, d, seed=seed + 1).requires_grad_()
    ours = scl_loss(h, y, w, n_w, tau, anchors)
    ref = naive_scl_loss(h, y, w, n_w, tau, anchors)
    assert abs(ours.item() - ref.item()) <= 1e-9 * max(1.0, abs(ref.item()))
    g_ours = torch.autograd.grad(ours, (h, w), allow_unused=True, materialize_grads=True)
    g_ref = torch.autograd.grad(ref, (h, w), allow_unused=True, materialize_grads=True)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("n,k,n_w,tau", list(itertools.product([3, 9], [2, 4], [0, 1, 20], [0.2, 1.0])))
def test_class_averaging_matches_naive_reference(n, k, n_w, tau):
    y = imbalanced_labels(n, k, n + k)
    h = unit(n, 5, seed=n).requires_grad_()
    w = unit(k, 5, seed=k)
    ours = class_averaging_loss(h, y, w, n_w, tau)
    ref = naive_class_averaging_loss(h, y, w, n_w, tau)
    assert abs(ours.item() - ref.item()) <= 1e-9 * max(1.0, abs(ref.item()))
    (ga,) = torch.autograd.grad(ours, h, materialize_grads=True, allow_unused=True)
    gb = torch.autograd.grad(ref, h)[0] if ref.requires_grad else torch.zeros_like(h)
    torch.testing.assert_close(ga, gb, atol=1e-9, rtol=1e-9)


def test_concatenated_baseline_matches_naive():
    y = imbalanced_labels(8, 3, 1)
    h, w = unit(8, 4, seed=1), unit(3, 4, seed=2)
    for anchors in (True, False):
        torch.testing.assert_close(
            concatenated_scl_loss(h, y, w, 5, 0.3, anchors), naive_scl_loss(h, y, w, 5, 0.3, anchors)
        )


def _saved_bytes(fn) -> tuple[int, torch.Tensor]:
    """(bytes of every tensor autograd saves for backward while ``fn()`` builds its graph, the result)."""
    sizes: list[int] = []

    def pack(t):
        sizes.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(sizes), out


def test_memory_saved_for_backward_does_not_grow_with_n_w():
    # What autograd keeps for backward is measured: the same bytes at n_w = 1 and n_w = 10^9 (the naive
    # version would need 10^10 rows), bounded by a few (n + k) x (n + k) and (n + k) x d tensors.
    n, k, d = 16, 10, 12
    y = imbalanced_labels(n, k, 0)
    h, w = unit(n, d, seed=0).requires_grad_(), unit(k, d, seed=1)
    sizes = {}
    for n_w in (1, 10**9):
        sizes[n_w], loss = _saved_bytes(lambda: scl_loss(h, y, w, n_w, 0.5))
        (grad,) = torch.autograd.grad(loss, h)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
    rows = n + k
    assert sizes[1] == sizes[10**9] > 0
    assert sizes[10**9] <= 8 * (4 * rows * rows + 4 * rows * d + 16 * rows)
    # the measurement does see copies when they are made: the concatenated version at n_w = 20 saves
    # tensors that grow with (n + k n_w)^2
    concat, _ = _saved_bytes(lambda: concatenated_scl_loss(h, y, w, 20, 0.5))
    assert concat > 8 * (n + k * 20) ** 2 > 10 * sizes[1]


def test_stacked_batches_equal_separate_calls():
    b, n, k, d = 4, 9, 3, 5
    h = unit(b, n, d, seed=4)
    y = torch.stack([imbalanced_labels(n, k, s) for s in range(b)])
    w = unit(k, d, seed=5)
    n_w = torch.tensor([0.0, 1.0, 10.0, 100.0], dtype=torch.float64)
    tau = torch.tensor([0.1, 0.5, 1.0, 2.0], dtype=torch.float64)
    for fn in (scl_loss, class_averaging_loss):
        stacked = fn(h, y, w, n_w, tau)
        separate = torch.stack([fn(h[i], y[i], w, n_w[i].item(), tau[i].item()) for i in range(b)])
        torch.testing.assert_close(stacked, separate, atol=1e-10, rtol=1e-10)
    # shared labels [n] broadcast over the stack
    torch.testing.assert_close(
        scl_loss(h, y[0], w, 3, 0.5), torch.stack([scl_loss(h[i], y[0], w, 3, 0.5) for i in range(b)])
    )


def test_zero_n_w_equals_plain_scl_and_tensor_zero_is_safe():
    y = imbalanced_labels(10, 4, 2)
    h = unit(10, 6, seed=2).requires_grad_()
    w = unit(4, 6, seed=3)
    # independent oracle: Eq. (1) term by term on the batch alone (no prototype rows at all)
    plain = naive_scl_loss(h, y, tau=0.3)
    (g_plain,) = torch.autograd.grad(plain, h)
    for n_w in (0, 0.0, torch.tensor(0.0, dtype=torch.float64)):
        for anchors in (True, False):  # with no prototype copies the anchor convention cannot matter
            ours = scl_loss(h, y, w, n_w, 0.3, anchors)
            torch.testing.assert_close(ours, plain, atol=1e-12, rtol=1e-12)
            (g_ours,) = torch.autograd.grad(ours, h)
            assert torch.isfinite(g_ours).all()
            torch.testing.assert_close(g_ours, g_plain, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(scl_loss(h, y, tau=0.3, num_classes=4), plain, atol=1e-12, rtol=1e-12)


def test_mask_equals_loss_on_the_existing_rows():
    n, k, d = 10, 3, 4
    y = imbalanced_labels(n, k, 7)
    h = unit(n, d, seed=7).requires_grad_()
    w = unit(k, d, seed=8)
    mask = torch.tensor([True, False, True, True, False, True, True, True, False, True])
    for fn in (scl_loss, class_averaging_loss):
        padded = h.detach().clone()
        padded[~mask] = 0.0  # padding rows need not be unit-norm
        padded.requires_grad_()
        masked = fn(padded, y, w, 4, 0.4, mask=mask)
        subset = fn(h[mask], y[mask], w, 4, 0.4)
        torch.testing.assert_close(masked, subset)
        masked.backward()
        assert torch.all(padded.grad[~mask] == 0) and torch.isfinite(padded.grad).all()


def test_anchors_without_positives_are_skipped_without_nan():
    h = unit(4, 5, seed=1).requires_grad_()
    y = torch.arange(4)  # every class a singleton, no prototypes: no anchor has a positive
    loss = scl_loss(h, y, tau=0.1)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(h.grad == 0)
    # a single existing row in a padded batch, and a one-row batch
    mask = torch.tensor([True, False, False, False])
    one = scl_loss(h, torch.zeros(4, dtype=torch.long), tau=0.1, mask=mask)
    assert one.item() == 0.0
    single = scl_loss(h[:1], y[:1], tau=0.1)
    assert single.item() == 0.0


def test_permuting_the_batch_and_rotating_everything_leave_the_loss_unchanged():
    n, k, d = 11, 4, 6
    y = imbalanced_labels(n, k, 3)
    h, w = unit(n, d, seed=3), unit(k, d, seed=4)
    base = scl_loss(h, y, w, 7, 0.3)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(scl_loss(h[perm], y[perm], w, 7, 0.3), base)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    torch.testing.assert_close(scl_loss(h @ q, y, w @ q, 7, 0.3), base)
    torch.testing.assert_close(class_averaging_loss(h @ q, y, w @ q, 7, 0.3), class_averaging_loss(h, y, w, 7, 0.3))


def test_float32_agrees_with_float64():
    y = imbalanced_labels(32, 5, 0)
    h, w = unit(32, 8, seed=0), unit(5, 8, seed=1)
    a = scl_loss(h, y, w, 100, 0.1)
    b = scl_loss(h.float(), y, w.float(), 100, 0.1)
    assert abs(a.item() - b.item()) <= 1e-5 * abs(a.item())


def test_balanced_etf_is_a_critical_point_of_scl_on_the_sphere():
    # Collapsed features on the simplex ETF: the Riemannian gradient (tangent part) vanishes.
    # The ETF built in closed form, w_c = sqrt(k/(k-1)) (e_c - 1/k) (padded to d = 5), so that sum_c w_c = 0 to
    # rounding: prototypes factored from the Gram hold it only to sqrt(eps) ~ 1e-8 (an error of 1e-16 in the Gram
    # entries is one of 1e-8 in ||sum_c w_c||), which moves the critical point by as much.
    k, per = 4, 3
    w = torch.cat([(torch.eye(k, dtype=torch.float64) - 1 / k) * (k / (k - 1)) ** 0.5,
                   torch.zeros(k, 1, dtype=torch.float64)], 1)
    torch.testing.assert_close(w @ w.T, etf_gram(k), rtol=0, atol=1e-15)
    y = torch.arange(k).repeat_interleave(per)
    h = w[y].clone().requires_grad_()
    scl_loss(h, y, w, 10, 0.5).backward()
    tangent = h.grad - (h.grad * h).sum(-1, keepdim=True) * h
    assert tangent.abs().max() < 1e-12


def test_ce_fixed_classifier_matches_torch_cross_entropy():
    y = imbalanced_labels(12, 4, 5)
    h, w = unit(12, 6, seed=5), unit(4, 6, seed=6)
    expected = F.cross_entropy(h @ w.T / 0.2, y, reduction="sum")
    torch.testing.assert_close(ce_fixed_classifier_loss(h, y, w, 0.2), expected)


def test_prop1_loss_hand_computed_case():
    # k = 2 orthogonal prototypes e1, e2; one sample h = e1 of class 0; tau = 1:
    # logits (1, 0): log softmax_0 = 1 - log(1 + e); alignment w_0 . h = 1.
    w = prototypes_from_gram(orthogonal_gram(2), 2)
    h = w[:1].clone()
    expected = math.log(1 + math.e) - 2
    assert prop1_loss(h, torch.tensor([0]), w, 1.0).item() == pytest.approx(expected, abs=1e-12)
    # tau = 0.5 doubles every inner product
    expected = math.log(1 + math.exp(2)) - 4
    assert prop1_loss(h, torch.tensor([0]), w, 0.5).item() == pytest.approx(expected, abs=1e-12)


BAD = [
    (lambda h, y, w: scl_loss(h, y[:-1], w, 1), "do not match"),
    (lambda h, y, w: scl_loss(h, y + 10, w, 1), "outside [0, 3)"),
    (lambda h, y, w: scl_loss(h, y - 5, w, 1), ">= 0"),
    (lambda h, y, w: scl_loss(h, y.double(), w, 1), "integer tensor"),
    (lambda h, y, w: scl_loss(h * float("nan"), y, w, 1), "non-finite"),
    (lambda h, y, w: scl_loss(h, y, w, -1), "n_w"),
    (lambda h, y, w: scl_loss(h, y, w, 1, 0.0), "tau"),
    (lambda h, y, w: scl_loss(h, y, w, 1, -1.0), "tau"),
    (lambda h, y, w: scl_loss(h, y, w, torch.tensor([1.0, -2.0])), "n_w"),
    (lambda h, y, w: scl_loss(2 * h, y, w, 1), "unit-norm"),
    (lambda h, y, w: scl_loss(h, y, 2 * w, 1), "prototypes rows must be unit-norm"),
    (lambda h, y, w: scl_loss(h, y, w[:, :2], 1), "dimension"),
    (lambda h, y, w: scl_loss(h, y, w, 1, mask=torch.ones(8)), "bool"),
    (lambda h, y, w: scl_loss(h.long(), y, w, 1), "floating-point"),
    (lambda h, y, w: class_averaging_loss(h, y, w, 1, float("inf")), "finite"),
    (lambda h, y, w: ce_fixed_classifier_loss(h, y, None), "prototypes"),
    (lambda h, y, w: prop1_loss(3 * h, y, w), "unit-norm"),
]


@pytest.mark.parametrize("call,message", BAD)
def test_bad_input_raises_a_clear_value_error(call, message):
    y = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    h, w = unit(8, 4, seed=0), unit(3, 4, seed=1)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        call(h, y, w)


def test_unit_norm_check_can_be_turned_off():
    y = torch.tensor([0, 0, 1, 1])
    h = 2 * unit(4, 3, seed=0)
    loss = scl_loss(h, y, tau=1.0, require_unit_norm=False)
    assert torch.isclose(loss, naive_scl_loss(h, y, tau=1.0))


@pytest.mark.parametrize("masked", [True, False])
def test_both_ways_of_summing_positives_match_the_reference(monkeypatch, masked):

    monkeypatch.setattr("ufm._loss_kernels.masked_positives", lambda rows, d: masked)
    y = imbalanced_labels(9, 4, 11)
    h = unit(2, 9, 5, seed=11)
    h[1, 3] = 0.0  # a padding row
    h = h.requires_grad_()
    w = unit(4, 5, seed=12).requires_grad_()
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 3] = False
    for fn, ref in ((scl_loss, naive_scl_loss), (class_averaging_loss, naive_class_averaging_loss)):
        ours = fn(h, y, w, 6, 0.3, mask=mask)
        keep = mask[1]
        expected = torch.stack([ref(h[0], y, w, 6, 0.3), ref(h[1][keep], y[keep], w, 6, 0.3)])
        torch.testing.assert_close(ours, expected, atol=1e-10, rtol=1e-10)
        g_ours = torch.autograd.grad(ours.sum(), (h, w))
        g_ref = torch.autograd.grad(expected.sum(), (h, w))
        for a, b in zip(g_ours, g_ref):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


# --- gradients of every loss against finite differences (float64 gradcheck) -------------------------
# h, W and tau are all differentiated.  h and W enter through F.normalize so that the finite-difference
# perturbations stay on the sphere the losses require; tau is a scalar or one value per stacked batch.

from ufm.losses import limit_loss  # noqa: E402

_WITH_N_W = {
    "scl-proto-anchors": lambda h, y, w, n_w, tau, mask: scl_loss(h, y, w, n_w, tau, True, mask=mask),
    "scl-batch-anchors": lambda h, y, w, n_w, tau, mask: scl_loss(h, y, w, n_w, tau, False, mask=mask),
    "class-averaging": lambda h, y, w, n_w, tau, mask: class_averaging_loss(h, y, w, n_w, tau, mask=mask),
}
_FIXED = {
    "ce": lambda h, y, w, n_w, tau, mask: ce_fixed_classifier_loss(h, y, w, tau, mask=mask),
    "prop1": lambda h, y, w, n_w, tau, mask: prop1_loss(h, y, w, tau, mask=mask),
    "limit-proto-anchors": lambda h, y, w, n_w, tau, mask: limit_loss(h, y, w, tau, True, mask=mask),
    "limit-batch-anchors": lambda h, y, w, n_w, tau, mask: limit_loss(h, y, w, tau, False, mask=mask),
}


def _gradcheck_case(fn, n_w, stacked, masked, seed=0):
    """(function of (x, v, tau), inputs): x -> h = normalize(x), v -> W = normalize(v)."""
    gen = torch.Generator().manual_seed(seed)
    n, k, d = 7, 3, 4
    lead = (2,) if stacked else ()
    x = torch.randn(*lead, n, d, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.randn(k, d, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 0])  # class 2 a singleton: a positive only through its prototype
    tau = (torch.tensor([0.4, 0.9], dtype=torch.float64) if stacked else torch.tensor(0.6, dtype=torch.float64))
    tau = tau.requires_grad_()
    if stacked and not isinstance(n_w, int):
        n_w = torch.tensor(n_w, dtype=torch.float64)
    mask = None
    if masked:
        mask = torch.ones(*lead, n, dtype=torch.bool)
        mask[..., 4] = False
    return (lambda a, b, t: fn(F.normalize(a, dim=-1), y, F.normalize(b, dim=-1), n_w, t, mask)), (x, v, tau)


def _force_path(monkeypatch, path):
    """Take one of the three ways of computing SCL: masked positives, class sums, row blocks (chunked)."""
    import ufm.losses

    monkeypatch.setattr("ufm._loss_kernels.masked_positives", lambda rows, d: path == "masked-positives")
    monkeypatch.setattr(ufm.losses, "chunked", lambda stack, rows, itemsize, device: path == "row-blocks")
    if path == "row-blocks":  # blocks of 3 rows or fewer, so that every case spans several blocks
        monkeypatch.setattr("ufm._loss_kernels.CHUNK_BYTES", 8)


PATHS = ["masked-positives", "class-sums", "row-blocks"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("stacked", [False, True], ids=["scalar-tau", "per-stack-tau"])
@pytest.mark.parametrize("n_w", [0, 3, (0.0, 2.5)], ids=["n_w=0", "n_w=3", "n_w-per-stack"])
@pytest.mark.parametrize("name", list(_WITH_N_W))
def test_scl_gradients_match_finite_differences(monkeypatch, name, n_w, stacked, masked, path):
    if isinstance(n_w, tuple) and not stacked:
        n_w = n_w[1]
    _force_path(monkeypatch, path)
    fn, inputs = _gradcheck_case(_WITH_N_W[name], n_w, stacked, masked)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("stacked", [False, True], ids=["scalar-tau", "per-stack-tau"])
@pytest.mark.parametrize("name", list(_FIXED))
def test_fixed_classifier_gradients_match_finite_differences(name, stacked, masked):
    fn, inputs = _gradcheck_case(_FIXED[name], 0, stacked, masked)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_issue_case_learnable_tau_gradient_is_the_finite_difference():
    # The reported failure: d loss / d tau from the custom backward disagreed with finite differences
    # (scl 101.5 vs 6.28, class-averaging 9.23 vs -4.46) because the temperature's term was dropped.
    y = imbalanced_labels(12, 4, 3)
    h, w = unit(12, 6, seed=3), unit(4, 6, seed=4)
    for fn in (scl_loss, class_averaging_loss):
        tau = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(fn(h, y, w, 10, tau), tau)
        eps = 1e-5
        fd = (fn(h, y, w, 10, 0.5 + eps) - fn(h, y, w, 10, 0.5 - eps)) / (2 * eps)
        assert abs(g.item() - fd.item()) <= 1e-7 * max(1.0, abs(fd.item()))
        # and the naive reference, differentiated by plain autograd, agrees
        tau_ref = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        ref = (naive_scl_loss if fn is scl_loss else naive_class_averaging_loss)(h, y, w, 10, tau_ref)
        (g_ref,) = torch.autograd.grad(ref, tau_ref)
        assert abs(g.item() - g_ref.item()) <= 1e-9 * max(1.0, abs(g_ref.item()))


def test_float32_tau_parameter_with_float64_features_gets_its_gradient():
    # A learnable nn.Parameter kept in float32 while the features are float64: the cast is differentiable.
    y = imbalanced_labels(8, 3, 5)
    h, w = unit(8, 5, seed=5), unit(3, 5, seed=6)
    tau = torch.nn.Parameter(torch.tensor(0.7))
    scl_loss(h, y, w, 2, tau).backward()
    tau64 = torch.tensor(0.7).double().requires_grad_()  # the same float32-rounded value
    scl_loss(h, y, w, 2, tau64).backward()
    assert tau.grad is not None and abs(tau.grad.item() - tau64.grad.item()) <= 1e-5 * abs(tau64.grad.item())


def test_batch_anchors_select_anchors_and_split_the_loss_additively():
    n, k, d = 10, 3, 5
    y = imbalanced_labels(n, k, 9)
    h, w = unit(n, d, seed=9), unit(k, d, seed=10)
    full = scl_loss(h, y, w, 4, 0.4, False)
    first = torch.arange(n) < 4
    a = scl_loss(h, y, w, 4, 0.4, False, batch_anchors=first)
    b = scl_loss(h, y, w, 4, 0.4, False, batch_anchors=~first)
    torch.testing.assert_close(a + b, full, atol=1e-12, rtol=1e-12)
    # one anchor alone: Eq. (1)'s term for that anchor, written out by hand (no prototypes, every l != 0 a member)
    one = torch.zeros(n, dtype=torch.bool)
    one[0] = True
    s = h @ h.T / 0.4
    pos = [j for j in range(1, n) if y[j] == y[0]]
    expected = sum(torch.logsumexp(s[0, 1:] - s[0, j], 0) for j in pos) / len(pos)
    torch.testing.assert_close(scl_loss(h, y, tau=0.4, num_classes=k, batch_anchors=one), expected)
    with pytest.raises(ValueError, match="batch_anchors must be a bool tensor"):
        scl_loss(h, y, w, 4, 0.4, batch_anchors=torch.ones(n + 1, dtype=torch.bool))


@pytest.mark.parametrize("n,k,d,n_w,tau,anchors", GRID[::5])
def test_row_blocks_match_the_reference_and_the_full_path(monkeypatch, n, k, d, n_w, tau, anchors):
    # The chunked path (no R x R tensor) against the naive reference, and against the full path to 1e-12
    seed = hash((n, k, d, n_w, tau, anchors)) % 1000
    y = imbalanced_labels(n, k, seed)
    h = unit(n, d, seed=seed).requires_grad_()
    w = unit(k, d, seed=seed + 1).requires_grad_()
    t = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
    full = {}
    for path in ("class-sums", "row-blocks"):
        _force_path(monkeypatch, path)
        for fn in (scl_loss, class_averaging_loss):
            loss = fn(h, y, w, n_w, t, anchors) if fn is scl_loss else fn(h, y, w, n_w, t)
            grads = torch.autograd.grad(loss, (h, w, t), allow_unused=True, materialize_grads=True)
            if path == "class-sums":
                full[fn] = (loss, grads)
                continue
            if fn is scl_loss:
                ref = naive_scl_loss(h, y, w, n_w, tau, anchors)
            else:
                ref = naive_class_averaging_loss(h, y, w, n_w, tau)
            assert abs(loss.item() - ref.item()) <= 1e-9 * max(1.0, abs(ref.item()))
            torch.testing.assert_close(loss, full[fn][0], atol=1e-12, rtol=1e-12)
            for a, b in zip(grads, full[fn][1]):
                torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_row_blocks_are_taken_for_large_batches_and_allocate_nothing_quadratic():
    # R = 1200 rows in float64: one R x R tensor is 11.5 MB; the stack of 2 passes FULL_BYTES (16 MB).
    import ufm.losses

    cpu = torch.device("cpu")
    assert ufm.losses.chunked(2, 1200, 8, cpu) and not ufm.losses.chunked(1, 1200, 8, cpu)
    assert not ufm.losses.chunked(2, 1200, 8, torch.device("cuda"))  # a caching allocator: full logits
    n, k, d = 1190, 10, 8
    y = torch.arange(n) % k
    h = unit(2, n, d, seed=1).requires_grad_()
    w = unit(k, d, seed=2)
    rows = n + k
    saved, loss = _saved_bytes(lambda: scl_loss(h, y, w, torch.tensor([0.0, 50.0], dtype=torch.float64), 0.5))
    assert saved < 8 * 2 * rows * (4 * d + 2 * k + 8)  # O(R (d + k)): nothing R x R kept for backward
    (g,) = torch.autograd.grad(loss.sum(), h)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("loss", ["scl", "class-averaging"])
def test_simulation_on_row_blocks_equals_the_full_path(monkeypatch, loss):
    # A whole full-batch UFM run (prototypes, both stacked n_w) on the row-block path ends where the
    # full-logits path ends, to 1e-12 in float64.
    import ufm.losses
    from ufm.simulate import SimConfig, simulate

    cfg = SimConfig(k=4, n_major=12, ratio=3, d=6, n_w=(0.0, 20.0), tau=(0.5,), loss=loss, batching="full",
                    epochs=15, log_every=5, dtype="float64", device="cpu")
    full = simulate(cfg)
    monkeypatch.setattr(ufm.losses, "chunked", lambda stack, rows, itemsize, device: True)
    monkeypatch.setattr("ufm._loss_kernels.CHUNK_BYTES", 8 * 2 * 7 * 36)  # blocks of 7 rows of the 36 (N = 32 + k)
    blocks = simulate(cfg)
    np.testing.assert_allclose(blocks.embeddings, full.embeddings, atol=1e-12, rtol=0)
    np.testing.assert_allclose(blocks.history[-1]["loss"], full.history[-1]["loss"], rtol=1e-12)
