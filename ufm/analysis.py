"""Neural-collapse geometry of embeddings: class means, G_M, distance to G_*, angles, NC1.

Pure functions over tensors ``h: [..., N, d]`` with labels ``y: [N]`` or ``[..., N]``; leading dims
are stacks of runs.  No loops over samples or classes: class statistics are one-hot matmuls.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "class_means",
    "mean_gram",
    "gram_distance",
    "angles_deg",
    "angle_errors_deg",
    "nc1",
    "group_angles",
    "geometry_summary",
]


def _onehot(y: torch.Tensor, k: int, like: torch.Tensor) -> torch.Tensor:
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        raise ValueError(f"labels must lie in [0, {k}), found range [{int(y.min())}, {int(y.max())}]")
    return F.one_hot(y.long(), k).to(like.dtype)


def class_means(h: torch.Tensor, y: torch.Tensor, k: int, center: bool = False) -> torch.Tensor:
    """mu_c = mean of the class-c rows of h, ``[..., k, d]``.

    ``center`` subtracts the plain average of the class means, (1/k) sum_c mu_c (the usual neural-collapse
    convention, e.g. rhubarbwu/neural-collapse), not the mean of all rows: under imbalance the latter is
    pulled toward the majority classes, so class means exactly on a simplex ETF would not read as one.
    Every class must have at least one sample.
    """
    onehot = _onehot(y, k, h)
    counts = onehot.sum(-2)  # [..., k]
    if bool((counts == 0).any()):
        empty = torch.nonzero(counts.reshape(-1, k).amin(0) == 0).flatten().tolist()
        raise ValueError(f"classes {empty} have no samples: their class means are undefined")
    means = (onehot.transpose(-1, -2) @ h) / counts.unsqueeze(-1)
    if center:
        means = means - means.mean(-2, keepdim=True)
    return means


def mean_gram(h: torch.Tensor, y: torch.Tensor, k: int, center: bool = False) -> torch.Tensor:
    """G_M: Gram of the normalized class means, ``[..., k, k]`` (unit diagonal); ``center`` as in
    :func:`class_means` (centred by the average of the class means)."""
    m = F.normalize(class_means(h, y, k, center), dim=-1)
    return m @ m.transpose(-1, -2)


def gram_distance(g_m: torch.Tensor, g_star: torch.Tensor) -> torch.Tensor:
    """|| G_M / ||G_M||_F - G_* / ||G_*||_F ||_F, ``[...]`` (in [0, 2]; 0 iff equal up to scale).  Tensors or
    arrays (a numpy G_M is read as float64)."""
    g_m = torch.as_tensor(g_m)
    g_star = torch.as_tensor(g_star, dtype=g_m.dtype, device=g_m.device)
    a = g_m / torch.linalg.matrix_norm(g_m).unsqueeze(-1).unsqueeze(-1)
    b = g_star / torch.linalg.matrix_norm(g_star).unsqueeze(-1).unsqueeze(-1)
    return torch.linalg.matrix_norm(a - b)


def angles_deg(g: torch.Tensor) -> torch.Tensor:
    """Pairwise angles in degrees from a unit-diagonal Gram, ``[..., k, k]``."""
    return torch.rad2deg(torch.arccos(g.clamp(-1.0, 1.0)))


def angle_errors_deg(g_m: torch.Tensor, g_star: torch.Tensor) -> torch.Tensor:
    """angle(G_M) - angle(G_*) per pair in degrees, ``[..., k, k]`` (zero diagonal)."""
    g_star = torch.as_tensor(g_star, dtype=g_m.dtype, device=g_m.device)
    return angles_deg(g_m) - angles_deg(g_star)


def nc1(h: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """NC1 = tr(Sigma_W Sigma_B^+) / k (Papyan, Han & Donoho 2020), ``[...]``.

    Sigma_W = 1/N sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T, Sigma_B = 1/k sum_c (mu_c - mu_G)(mu_c - mu_G)^T
    with mu_G the global mean of all rows; the pseudo-inverse drops eigenvalues below sqrt(eps) x largest.
    Computed in the span of the class means, never d x d: with B = [mu_c - mu_G]_c = U S V^T (thin SVD, k x d),
    Sigma_B^+ = V diag(k / S^2) V^T, so NC1 = sum_j ||(h - mu_y) v_j||^2 / (N S_j^2): O(N d k).
    """
    onehot = _onehot(y, k, h)
    mu = class_means(h, y, k)
    within = h - onehot @ mu
    between = mu - h.mean(-2, keepdim=True)
    _, sv, vh = torch.linalg.svd(between, full_matrices=False)  # [..., m], [..., m, d]
    eig = sv.square()
    rtol = math.sqrt(torch.finfo(h.dtype).eps)
    keep = eig > rtol * eig.amax(-1, keepdim=True)
    spread = (within @ vh.transpose(-1, -2)).square().sum(-2) / h.shape[-2]  # [..., m]: v_j^T Sigma_W v_j
    return torch.where(keep, spread / torch.where(keep, eig, torch.ones_like(eig)), torch.zeros_like(eig)).sum(-1)


def _pair_mean(values: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    n = pairs.sum()
    if int(n) == 0:
        return torch.full(values.shape[:-2], float("nan"), dtype=values.dtype, device=values.device)
    return (values * pairs).sum((-2, -1)) / n


def group_angles(g: torch.Tensor, minority: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean pairwise angle (degrees) within the majority, within the minority and across, each ``[...]``.

    ``minority: [k]`` bool.  A group with fewer than two classes gives NaN for its within-group mean.
    """
    minority = torch.as_tensor(minority, dtype=torch.bool, device=g.device)
    major = ~minority
    off = ~torch.eye(len(minority), dtype=torch.bool, device=g.device)
    a = angles_deg(g)
    return {
        "majority": _pair_mean(a, major[:, None] & major[None, :] & off),
        "minority": _pair_mean(a, minority[:, None] & minority[None, :] & off),
        "across": _pair_mean(a, major[:, None] & minority[None, :]),
    }


def geometry_summary(
    h: torch.Tensor, y: torch.Tensor, g_star: torch.Tensor, minority: torch.Tensor, center: bool = False
) -> dict[str, torch.Tensor]:
    """The numbers reported for a run, each ``[...]``: distance of G_M to G_*, NC1, worst pair angle
    error, and the majority/minority/across mean angles of G_M."""
    k = g_star.shape[-1]
    g_m = mean_gram(h, y, k, center)
    out = {
        "distance": gram_distance(g_m, g_star),
        "nc1": nc1(h, y, k),
        "max_angle_error": angle_errors_deg(g_m, g_star).abs().amax((-2, -1)),
    }
    for name, value in group_angles(g_m, minority).items():
        out[f"angle_{name}"] = value
    return out
