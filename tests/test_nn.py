import pytest
import torch
import torch.nn.functional as F

from ufm.geometry import etf_gram, prototypes_from_gram
from ufm.losses import scl_loss
from ufm.nn import PrototypeSupConLoss
from ufm.reference import naive_scl_loss


def supcon_literal(features, labels, temperature=0.07, contrast_mode="all", base_temperature=0.07):
    """SupContrast's SupConLoss.forward (HobbitLong/SupContrast, losses.py), its math line by line."""
    batch_size = features.shape[0]
    labels = labels.contiguous().view(-1, 1)
    mask = torch.eq(labels, labels.T).to(features.dtype)
    contrast_count = features.shape[1]
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
    if contrast_mode == "one":
        anchor_feature, anchor_count = features[:, 0], 1
    else:
        anchor_feature, anchor_count = contrast_feature, contrast_count
    anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
    logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    mask = mask.repeat(anchor_count, contrast_count)
    logits_mask = torch.scatter(torch.ones_like(mask), 1, torch.arange(batch_size * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))  # SupContrast adds 1e-9 here; see below
    mask_pos_pairs = mask.sum(1)
    mask_pos_pairs = torch.where(mask_pos_pairs < 1e-6, 1, mask_pos_pairs)
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask_pos_pairs
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    return loss.view(anchor_count, batch_size).mean()


def batch(bsz=12, views=2, d=6, k=4, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    feats = F.normalize(torch.randn(bsz, views, d, generator=gen, dtype=dtype), dim=-1)
    labels = torch.randint(0, k, (bsz,), generator=gen)
    labels[-1] = k - 1
    return feats, labels


W = prototypes_from_gram(etf_gram(4), 6, seed=1)


@pytest.mark.parametrize("mode", ["all", "one"])
@pytest.mark.parametrize("tau,base", [(0.5, 0.5), (0.3, 0.07), (1.0, 0.07)])
def test_n_w_zero_is_supcontrast(mode, tau, base):
    # The 1e-9 SupContrast adds inside the log changes its value by < 1e-9 / min denominator; it is left
    # out of the literal copy so that the comparison can be tight.
    feats, labels = batch(seed=3)
    feats.requires_grad_()
    loss = PrototypeSupConLoss(W, n_w=0, temperature=tau, base_temperature=base, contrast_mode=mode)
    ours = loss(feats, labels)
    ref = supcon_literal(feats, labels, tau, mode, base)
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(ours, feats)[0], torch.autograd.grad(ref, feats)[0],
                               atol=1e-12, rtol=1e-12)


def test_singleton_class_with_one_view_counts_as_an_anchor_like_supcontrast():
    feats, _ = batch(bsz=5, views=1, seed=4)
    labels = torch.tensor([0, 0, 1, 1, 2])  # class 2 has no positive
    ours = PrototypeSupConLoss(W, n_w=0, temperature=0.2, base_temperature=0.2)(feats, labels)
    torch.testing.assert_close(ours, supcon_literal(feats, labels, 0.2, "all", 0.2), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "2B"])
@pytest.mark.parametrize("anchors", [True, False])
@pytest.mark.parametrize("mode", ["all", "one"])
def test_matches_scl_loss_and_the_naive_reference(reduction, anchors, mode):
    feats, labels = batch(bsz=7, views=2, seed=5)
    n_w, tau, base = 3, 0.4, 0.1
    module = PrototypeSupConLoss(W, n_w=n_w, temperature=tau, base_temperature=base, contrast_mode=mode,
                                 prototype_anchors=anchors, reduction=reduction)
    ours = module(feats, labels)
    h = torch.cat(torch.unbind(feats, dim=1))
    y = labels.repeat(2)
    if mode == "all":
        total = naive_scl_loss(h, y, W, n_w, tau, anchors)
        batch_anchors = None
    else:
        # anchors: view 0 of each sample (+ the prototype copies): Eq. (1) written out for those anchors,
        # on the batch with every copy materialized
        batch_anchors = torch.arange(14) < 7
        z = torch.cat([h, W.repeat_interleave(n_w, 0)])
        lab = torch.cat([y, torch.arange(4).repeat_interleave(n_w)])
        s = z @ z.T / tau
        total = 0.0
        rows = list(range(7)) + (list(range(14, len(z))) if anchors else [])
        for i in rows:
            others = [j for j in range(len(z)) if j != i]
            pos = [j for j in others if lab[j] == lab[i]]
            total = total + sum(torch.logsumexp(s[i, others] - s[i, j], 0) for j in pos) / len(pos)
    direct = scl_loss(h, y, W, n_w, tau, anchors, batch_anchors=batch_anchors)
    torch.testing.assert_close(direct, torch.as_tensor(total), atol=1e-10, rtol=1e-10)
    count = {"sum": 1, "2B": 14, "mean": (7 if mode == "one" else 14) + (4 * n_w if anchors else 0)}[reduction]
    torch.testing.assert_close(ours, total / count * (tau / base), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("base", [None, 0.07])
def test_prototypes_are_a_buffer_and_temperature_can_be_learned(base):
    module = PrototypeSupConLoss(W.float(), n_w=10, temperature=0.5, learnable_temperature=True,
                                 base_temperature=base)
    assert [name for name, _ in module.named_buffers()] == ["prototypes"]
    assert [name for name, _ in module.named_parameters()] == ["temperature"]
    module = module.double()
    torch.testing.assert_close(module.state_dict()["prototypes"], W)
    feats, labels = batch(seed=6)
    module(feats, labels).backward()
    grad = module.temperature.grad.item()
    eps = 1e-6
    with torch.no_grad():
        module.temperature.fill_(0.5 + eps)
        up = module(feats, labels).item()
        module.temperature.fill_(0.5 - eps)
        down = module(feats, labels).item()
    assert grad == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9)


def test_supcon_training_step_runs_and_reduces_the_loss():
    # the README's swap: a projection head, normalized features of two views, the loss, an optimizer step
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 6)
    criterion = PrototypeSupConLoss(prototypes_from_gram(etf_gram(4), 6).float(), n_w=10, temperature=0.1)
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    x = torch.randn(16, 2, 8)
    labels = torch.arange(16) % 4
    losses = []
    for _ in range(20):
        features = F.normalize(head(x), dim=-1)  # [bsz, n_views, d]
        loss = criterion(features, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


BAD = [
    (lambda: PrototypeSupConLoss(W, reduction="avg"), "reduction must be one of"),
    (lambda: PrototypeSupConLoss(W, contrast_mode="two"), "contrast_mode"),
    (lambda: PrototypeSupConLoss(W, n_w=-1), "n_w"),
    (lambda: PrototypeSupConLoss(W, temperature=0), "temperature"),
    (lambda: PrototypeSupConLoss(W[0]), r"W \[k, d\]"),
    (lambda: PrototypeSupConLoss(W)(torch.zeros(6), torch.zeros(4, dtype=torch.long)), "n_views"),
    (lambda: PrototypeSupConLoss(W)(batch()[0], torch.zeros(3, dtype=torch.long)), r"labels must be \[bsz\]"),
    (lambda: PrototypeSupConLoss(W)(2 * batch()[0], batch()[1]), "unit-norm"),
]


@pytest.mark.parametrize("call,message", BAD)
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_one_view_convention_of_metric_learning_code():
    """loss(embeddings [n, d], labels [n]) is loss(embeddings[:, None], labels): one view per sample."""
    features, labels = batch()
    one = features[:, 0]
    for mode in ("all", "one"):
        crit = PrototypeSupConLoss(W, n_w=10, temperature=0.1, contrast_mode=mode)
        torch.testing.assert_close(crit(one, labels), crit(one.unsqueeze(1), labels), rtol=0, atol=0)
