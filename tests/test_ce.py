import numpy as np
import torch

from ufm.ce import ce_fixed_embeddings, ce_fixed_optimum, seli_grams
from ufm.geometry import etf_gram, minority_weighted_gram


def test_seli_is_the_etf_when_balanced_and_matches_an_svd_when_not():
    h, w = seli_grams([7, 7, 7, 7])
    np.testing.assert_allclose(h, etf_gram(4).numpy(), atol=1e-12)
    np.testing.assert_allclose(w, etf_gram(4).numpy(), atol=1e-12)
    counts = [6, 6, 2]
    y = np.repeat(np.arange(3), counts)
    z = np.eye(3)[:, y] - 1 / 3  # simplex-encoded labels, k x N
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    keep = s > 1e-9
    emb = np.sqrt(s[keep])[:, None] * vt[keep]  # H = S^1/2 V^T, one column per sample
    first = [0, 6, 12]
    g = emb[:, first].T @ emb[:, first]
    d = 1 / np.sqrt(np.diag(g))
    h, w = seli_grams(counts)
    np.testing.assert_allclose(h, g * d[:, None] * d[None, :], atol=1e-10)
    wg = (u[:, keep] * s[keep]) @ u[:, keep].T
    d = 1 / np.sqrt(np.diag(wg))
    np.testing.assert_allclose(w, wg * d[:, None] * d[None, :], atol=1e-10)


def test_ce_fixed_optimum_beats_the_prototypes_and_random_directions_and_is_stationary():
    g = minority_weighted_gram([50, 50, 50, 5, 5, 5], 1.0)
    w, h = ce_fixed_embeddings(g, 0.1)

    def per_class_loss(x):
        return torch.nn.functional.cross_entropy(x @ w.T / 0.1, torch.arange(6), reduction="none")

    best = per_class_loss(h)
    assert (best <= per_class_loss(w) + 1e-12).all()
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        trial = torch.nn.functional.normalize(torch.randn(6, w.shape[1], generator=gen, dtype=torch.float64), dim=-1)
        assert (best <= per_class_loss(trial) + 1e-12).all()
    x = h.clone().requires_grad_()
    per_class_loss(x).sum().backward()
    tangent = x.grad - (x.grad * x).sum(-1, keepdim=True) * x
    assert tangent.abs().max() < 1e-6
    opt = ce_fixed_optimum(g, 0.1)
    assert np.allclose(np.diag(opt), 1) and not np.allclose(opt, g.numpy(), atol=1e-2)
    np.testing.assert_allclose(ce_fixed_optimum(etf_gram(5), 0.1), etf_gram(5).numpy(), atol=1e-9)
