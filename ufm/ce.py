"""Geometries of cross-entropy, for comparison with SCL: SELI (learned classifier) and the optimum of CE
with a fixed normalized classifier W on the sphere.

SELI (Thrampoulidis, Kini, Vakilian and Behnia 2022, "Imbalance trouble"): the unconstrained-features CE
solution with a learned classifier is, up to scale and rotation, the SVD of the simplex-encoded label
matrix Z = A Y, with A = I - 1 1^T / k and Y the one-hot label matrix.  With D = diag(class counts),
Z Z^T = A D A, and the class embeddings and classifier have Grams

    Z = U S V^T,  W = U S^(1/2),  H = S^(1/2) V^T:
    H-Gram (one sample per class) = A (A D A)^(+1/2) A,        W-Gram = (A D A)^(1/2).

Both are returned normalized to unit diagonal (the G_M of this literature).
"""

from __future__ import annotations

import numpy as np
import torch

from ufm.geometry import check_gram, prototypes_from_gram

__all__ = ["seli_grams", "ce_fixed_embeddings", "ce_fixed_optimum"]


def _unit_diagonal(g: np.ndarray) -> np.ndarray:
    scale = 1 / np.sqrt(np.diag(g))
    return g * scale[:, None] * scale[None, :]


def seli_grams(counts) -> tuple[np.ndarray, np.ndarray]:
    """(normalized class-embedding Gram, normalized classifier Gram) of SELI for the class counts, ``[k, k]`` each."""
    n = np.asarray(counts, dtype=float).ravel()
    if len(n) < 2 or (n <= 0).any():
        raise ValueError(f"SELI needs >= 2 classes with positive counts, got {n.tolist()}")
    k = len(n)
    a = np.eye(k) - np.ones((k, k)) / k
    ada = a @ np.diag(n) @ a
    lam, vecs = np.linalg.eigh(ada)
    keep = lam > 1e-12 * lam.max()
    inv_root = (vecs[:, keep] / np.sqrt(lam[keep])) @ vecs[:, keep].T
    root = (vecs[:, keep] * np.sqrt(lam[keep])) @ vecs[:, keep].T
    return _unit_diagonal(a @ inv_root @ a), _unit_diagonal(root)


def ce_fixed_optimum(g_star, tau: float = 0.1, steps: int = 3000, lr: float = 0.05) -> np.ndarray:
    """Gram ``[k, k]`` of the unit embeddings minimizing CE with the fixed classifier W (W W^T = G_*);
    see :func:`ce_fixed_embeddings`."""
    _, h = ce_fixed_embeddings(g_star, tau, steps, lr)
    return (h @ h.T).numpy()


def ce_fixed_embeddings(g_star, tau: float = 0.1, steps: int = 3000, lr: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, H), both ``[k, r]`` float64 with r = rank(G_*): h_c = argmin_{||h|| = 1} -log softmax_c(W h / tau),
    one problem per class, solved by Riemannian gradient descent (Adam, normalizing retraction) from
    h_c = w_c.  Logits depend on h only through its projection on span(W), so R^r suffices."""
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be > 0, got {tau}")
    g = check_gram(g_star)
    k = len(g)
    rank = int((torch.linalg.eigvalsh(g) > 1e-9 * max(1.0, float(g.max()))).sum())
    w = prototypes_from_gram(g, rank)
    h = w.clone().requires_grad_()
    opt = torch.optim.Adam([h], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    target = torch.arange(k)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(h @ w.T / tau, target, reduction="sum")
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():
            h.grad -= (h.grad * h).sum(-1, keepdim=True) * h
        opt.step()
        sched.step()
        with torch.no_grad():
            h.copy_(torch.nn.functional.normalize(h, dim=-1))
    return w, h.detach()
