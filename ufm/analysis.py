"""Neural-collapse geometry of embeddings: class means, G_M, distance to G_*, angles, NC1, and the field's NC1-NC4
(:func:`nc_metrics`, as rhubarbwu/neural-collapse computes them).

Pure functions over tensors ``h: [..., N, d]`` with labels ``y: [N]`` or ``[..., N]``; leading dims
are stacks of runs.  No loops over samples or classes: class statistics are one-hot matmuls.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "class_means",
    "mean_gram",
    "gram_distance",
    "angles_deg",
    "angle_errors_deg",
    "nc1",
    "nc_metrics",
    "nc_report",
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
    return _covariance_ratio(h - onehot @ mu, mu - h.mean(-2, keepdim=True))


def _covariance_ratio(within: torch.Tensor, between: torch.Tensor) -> torch.Tensor:
    """tr(Sigma_W Sigma_B^+) / k from the rows' deviations from their class means ``within [..., N, d]`` and the
    centred class means ``between [..., k, d]``, ``[...]`` (see :func:`nc1`)."""
    return _spread_ratio(between, lambda vh: (within @ vh.transpose(-1, -2)).square().sum(-2) / within.shape[-2])


def _spread_ratio(between: torch.Tensor, spread_along: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """tr(Sigma_W Sigma_B^+) / k, ``[...]``, from the centred class means ``between [..., k, d]`` and
    ``spread_along(vh)``: v_j^T Sigma_W v_j ``[..., m]`` for the right singular vectors ``vh [..., m, d]`` of
    ``between`` (rows' deviations, or a d x d Sigma_W as :mod:`ufm.nc_stream` keeps it)."""
    _, sv, vh = torch.linalg.svd(between, full_matrices=False)  # [..., m], [..., m, d]
    eig = sv.square()
    rtol = math.sqrt(torch.finfo(between.dtype).eps)
    keep = eig > rtol * eig.amax(-1, keepdim=True)
    spread = spread_along(vh)  # [..., m]: v_j^T Sigma_W v_j
    return torch.where(keep, spread / torch.where(keep, eig, torch.ones_like(eig)), torch.zeros_like(eig)).sum(-1)


def nc_metrics(h: torch.Tensor, y: torch.Tensor, k: int,
               prototypes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The field's neural-collapse metrics of features ``h [..., N, d]`` with labels ``y [N]`` (or ``[..., N]``),
    each ``[...]``, as rhubarbwu/neural-collapse (``neural_collapse/measure.py``) computes them.

    mu_c are the class means and mu_G = (1/k) sum_c mu_c their unweighted mean (not the mean of all rows, which
    :func:`nc1` uses); M = [mu_c - mu_G]_c, ``[k, d]``; E = (I - 11^T/k) / sqrt(k-1), the Gram of a unit-Frobenius
    simplex ETF.

    - ``nc1``: tr(Sigma_W Sigma_B^+) / k (Papyan, Han & Donoho 2020, PNAS 117(40)), Sigma_W = (1/N) sum_i
      (h_i - mu_{y_i})(h_i - mu_{y_i})^T, Sigma_B = M^T M / k.  0 iff the rows sit on their class means.
    - ``cdnv``: mean over class pairs i < j of (var_i + var_j) / (2 ||mu_i - mu_j||^2) (Galanti, Gyorgy & Hutter
      2022, ICLR), var_c = mean over class c of ||h - mu_c||^2.
    - ``nc2``: || M M^T / ||M M^T||_F - E ||_F (Kothapalli 2023, TMLR): 0 iff the centred means form a simplex
      ETF (equal norms, pairwise cosines -1/(k-1)).
    - ``nc3`` (with ``prototypes``, the classifier W ``[k, d]`` or ``[..., k, d]``): || W M^T / ||W M^T||_F - E ||_F,
      the reference's self-duality error (Kothapalli 2023; its form of Papyan et al. 2020's NC3, which compares
      W / ||W||_F with M / ||M||_F directly): 0 iff W M^T is a multiple of the simplex ETF's Gram (e.g. W = M on an
      ETF).
    - ``nc4`` (with ``prototypes``): the fraction of rows on which the linear classifier argmax_c <w_c, h> and the
      nearest class centre argmin_c ||h - mu_c|| agree (Papyan et al. 2020); 1 = full agreement.

    Needs k >= 2 classes, each with at least one sample.  Sigma_B^+ drops eigenvalues below sqrt(eps) x largest
    (the reference: torch's pinv default); computed in the span of the class means, never d x d.
    """
    if k < 2:
        raise ValueError(f"the NC metrics compare classes: they need k >= 2 classes, got k = {k}")
    onehot = _onehot(y, k, h)
    mu = class_means(h, y, k)  # [..., k, d]
    centred = mu - mu.mean(-2, keepdim=True)
    within = h - onehot @ mu  # [..., N, d]
    out = {"nc1": _covariance_ratio(within, centred), "cdnv": _cdnv(within, onehot, mu),
           "nc2": _etf_structure_error(centred, centred)}
    if prototypes is not None:
        w = torch.as_tensor(prototypes, dtype=h.dtype, device=h.device)
        if w.shape[-2:] != mu.shape[-2:]:
            raise ValueError(f"prototypes must be [k, d] = [{k}, {h.shape[-1]}] (one row per class), got "
                             f"{list(w.shape)}")
        out["nc3"] = _etf_structure_error(centred, w)
        ncc = (_square_distances(h, mu)).argmin(-1)  # [..., N]: nearest class centre
        linear = (h @ w.transpose(-1, -2)).argmax(-1)
        out["nc4"] = (ncc == linear).to(h.dtype).mean(-1)
    return out


def _cdnv(within: torch.Tensor, onehot: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Mean over class pairs of (var_i + var_j) / (2 ||mu_i - mu_j||^2), ``[...]`` (see :func:`nc_metrics`)."""
    var = (onehot.transpose(-1, -2) @ within.square().sum(-1, keepdim=True)).squeeze(-1) / onehot.sum(-2)  # [..., k]
    return _cdnv_of(var, mu)


def _cdnv_of(var: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """The CDNV from the class variances ``var [..., k]`` (mean ||h - mu_c||^2 over class c) and means
    ``mu [..., k, d]``, ``[...]``."""
    k = mu.shape[-2]
    centred = mu - mu.mean(-2, keepdim=True)  # distances are shift-free; centring keeps the expansion accurate
    dist2 = _square_distances(centred, centred)  # [..., k, k]
    ratio = (var.unsqueeze(-1) + var.unsqueeze(-2)) / (2 * dist2)
    upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=mu.device), diagonal=1)
    return ratio[..., upper].mean(-1)


def _square_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 for ``a [..., n, d]``, ``b [..., m, d]``: ``[..., n, m]``, by the expansion (no n x m x d)."""
    cross = a @ b.transpose(-1, -2)
    return (a.square().sum(-1).unsqueeze(-1) + b.square().sum(-1).unsqueeze(-2) - 2 * cross).clamp_min(0)


def _etf_structure_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|| B A^T / ||B A^T||_F - (I - 11^T/k) / sqrt(k-1) ||_F for ``a, b [..., k, d]``, ``[...]``."""
    k = a.shape[-2]
    cross = b @ a.transpose(-1, -2)
    cross = cross / torch.linalg.matrix_norm(cross).unsqueeze(-1).unsqueeze(-1)
    eye = torch.eye(k, dtype=a.dtype, device=a.device)
    return torch.linalg.matrix_norm(cross - (eye - 1.0 / k) / math.sqrt(k - 1))


NC_REPORT_KEYS = {"nc1": "nc1_ref", "cdnv": "cdnv", "nc2": "nc2", "nc3": "nc3", "nc4": "nc4"}


def nc_report(h: torch.Tensor, y: torch.Tensor, k: int, prototypes: torch.Tensor | None = None) -> dict[str, float]:
    """:func:`nc_metrics` of one run as the names training and simulation summaries record: ``nc1`` is kept for
    :func:`nc1` (Sigma_B about the mean of all rows), so the reference's NC1 (about the mean of the class means)
    is ``nc1_ref``; they are equal when the classes are balanced.  Empty for k < 2."""
    if k < 2:
        return {}
    return {NC_REPORT_KEYS[name]: float(value) for name, value in nc_metrics(h, y, k, prototypes).items()}


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
    return _summary_of(mean_gram(h, y, k, center), nc1(h, y, k), g_star, minority)


def _summary_of(g_m: torch.Tensor, nc1_value: torch.Tensor, g_star: torch.Tensor,
                minority: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`geometry_summary` from G_M ``[..., k, k]`` and NC1 ``[...]``."""
    out = {
        "distance": gram_distance(g_m, g_star),
        "nc1": nc1_value,
        "max_angle_error": angle_errors_deg(g_m, g_star).abs().amax((-2, -1)),
    }
    for name, value in group_angles(g_m, minority).items():
        out[f"angle_{name}"] = value
    return out
