"""Target geometries G_* (k x k Gram matrices of unit prototypes) and prototypes W realizing them.

A valid G_* is symmetric, has unit diagonal, is positive semidefinite and has rank <= d, so that
k unit vectors in R^d with W W^T = G_* exist.  Tolerances are absolute on entries and relative to
max(1, largest eigenvalue) on eigenvalues; the default is ``GRAM_TOL = 1e-6``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ufm.errors import FieldError, literal

__all__ = [
    "GRAM_TOL",
    "GEOMETRIES",
    "etf_gram",
    "orthogonal_gram",
    "minority_weighted_gram",
    "check_gram",
    "gram_rank",
    "load_gram",
    "make_gram",
    "prototypes_from_gram",
]

GRAM_TOL = 1e-6
GEOMETRIES = ("etf", "orthogonal", "minority")


def etf_gram(k: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Simplex ETF: G = k/(k-1) (I - 1 1^T / k), off-diagonal -1/(k-1), rank k-1.  ``[k, k]``."""
    if k < 2:
        raise FieldError(f"a simplex ETF needs k >= 2 classes, got k={k}: use {{k}} >= 2 or {{geometry=orthogonal}}")
    eye = torch.eye(k, dtype=dtype)
    return (eye - torch.full((k, k), 1.0 / k, dtype=dtype)) * (k / (k - 1))


def orthogonal_gram(k: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Orthogonal frame: G = I (the SCL geometry with ReLU features, Kini et al. 2023).  ``[k, k]``."""
    if k < 1:
        raise ValueError(f"need k >= 1 classes, got k={k}")
    return torch.eye(k, dtype=dtype)


def minority_weighted_gram(counts, gamma: float = 1.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Weighted simplex in which rarer classes get larger angles.

    With weights p_c ∝ n_c^(-gamma) (sum 1), u_c = e_c - p and w_c = u_c / ||u_c||:
    cos(w_a, w_b) = (||p||^2 - p_a - p_b) / (||u_a|| ||u_b||) for a != b.  This cosine decreases in
    p_a and p_b, so classes with fewer samples (larger p) are spread further apart.  gamma = 0 or equal
    counts give the simplex ETF; sum_c p_c w_c ||u_c|| = 0, so the rank is k - 1.  ``[k, k]``.
    """
    n = torch.as_tensor(counts, dtype=dtype).flatten()
    if n.numel() < 2 or bool((n <= 0).any()):
        raise FieldError(f"{{counts}} must hold >= 2 positive class sizes, got {n.tolist()}")
    if not np.isfinite(gamma) or gamma < 0:
        raise FieldError(f"{{gamma}} must be a finite number >= 0 (0 gives the ETF), got {gamma}")
    p = n ** (-gamma)
    p = p / p.sum()
    u = torch.eye(len(n), dtype=dtype) - p
    g = u @ u.T
    scale = g.diagonal().rsqrt()
    g = g * scale[:, None] * scale[None, :]
    g.diagonal().fill_(1.0)
    return g


def gram_rank(g: torch.Tensor, tol: float = GRAM_TOL) -> int:
    """Number of eigenvalues above tol * max(1, largest eigenvalue)."""
    ev = torch.linalg.eigvalsh(torch.as_tensor(g, dtype=torch.float64))
    return int((ev > tol * max(1.0, float(ev.max()))).sum())


def _as_real_matrix(g) -> torch.Tensor:
    """``g`` as a float64 tensor, refusing what is not an array of real numbers (strings, objects, complex)."""
    if isinstance(g, torch.Tensor):
        if g.is_complex() or g.dtype == torch.bool:
            raise ValueError(f"the Gram matrix must hold real numbers, got dtype {g.dtype}")
        return g.detach().to(torch.float64)
    try:
        arr = np.asarray(g)
    except (ValueError, TypeError) as err:
        raise ValueError(f"the Gram matrix must be a k x k array of real numbers: {err}") from None
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"the Gram matrix must hold real numbers, got numpy dtype {arr.dtype}")
    return torch.as_tensor(arr, dtype=torch.float64)


def check_gram(g, d: int | None = None, tol: float = GRAM_TOL) -> torch.Tensor:
    """Validate a target Gram and return it as a symmetric float64 tensor ``[k, k]``.

    Refused, with the failing condition and its size: not square, non-finite, not symmetric
    (max |G - G^T| > tol), not unit-diagonal (max |G_cc - 1| > tol), not PSD (smallest eigenvalue
    < -tol * max(1, largest)), or rank > d.
    """
    g = _as_real_matrix(g)
    if g.dim() != 2 or g.shape[0] != g.shape[1] or g.shape[0] < 1:
        raise ValueError(f"a Gram matrix must be square k x k, got shape {tuple(g.shape)}")
    if not bool(torch.isfinite(g).all()):
        raise ValueError("the Gram matrix has non-finite entries")
    asym = float((g - g.T).abs().max())
    if asym > tol:
        raise ValueError(f"the Gram matrix is not symmetric: max |G - G^T| = {asym:.3g} > tolerance {tol:g}")
    g = (g + g.T) / 2
    diag_err = float((g.diagonal() - 1).abs().max())
    if diag_err > tol:
        raise ValueError(
            f"the Gram matrix must have unit diagonal (unit-norm prototypes): max |G_cc - 1| = {diag_err:.3g} "
            f"> tolerance {tol:g}; rescale it as D^-1/2 G D^-1/2 with D = diag(G)"
        )
    ev = torch.linalg.eigvalsh(g)
    scale = max(1.0, float(ev.max()))
    if float(ev.min()) < -tol * scale:
        raise ValueError(
            f"the Gram matrix is not positive semidefinite: smallest eigenvalue {float(ev.min()):.3g} "
            f"< -{tol * scale:.3g} (tolerance {tol:g} x max(1, largest eigenvalue)); no unit vectors have this Gram"
        )
    rank = int((ev > tol * scale).sum())
    if d is not None and rank > d:
        raise FieldError(
            f"the Gram matrix has rank {rank} > embedding dimension d={d}: it cannot be realized in R^{d}; "
            f"use {{d}} >= {rank} or a lower-rank geometry"
        )
    return g


def load_gram(path: str | Path) -> torch.Tensor:
    """Read a k x k Gram from ``.npy`` or a text file (``.csv``/``.txt``: comma or whitespace separated)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Gram file {path} does not exist; pass a .npy, .csv or .txt file holding a k x k matrix")
    if not path.is_file():
        raise ValueError(f"Gram file {path} is not a regular file (a folder or a device); pass a .npy, .csv or .txt "
                         "file holding a k x k matrix")
    if path.stat().st_size == 0:
        raise ValueError(f"Gram file {path} is empty; it should hold a k x k matrix (.npy, .csv or .txt)")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as err:
        kind = "a .npy array" if path.suffix == ".npy" else "a numeric text table"
        raise ValueError(f"Gram file {path} is not {kind} of a k x k matrix ({err}); "
                         "write it with numpy.save or numpy.savetxt") from None
    if not isinstance(arr, np.ndarray):  # np.load gives an NpzFile for .npz archives whatever the suffix
        arr.close()
        raise ValueError(f"Gram file {path} is an .npz archive, not one array; save the k x k matrix with numpy.save")
    try:
        return check_gram(arr)
    except ValueError as err:
        raise ValueError(f"Gram file {path}: {err}") from None


def make_gram(name: str, k: int, counts=None, gamma: float = 1.0) -> torch.Tensor:
    """G_* by name: ``etf``, ``orthogonal``, or ``minority`` (needs ``counts``; see :func:`minority_weighted_gram`)."""
    if name == "etf":
        return etf_gram(k)
    if name == "orthogonal":
        return orthogonal_gram(k)
    if name == "minority":
        if counts is None:
            raise ValueError("the 'minority' geometry needs the class counts")
        return minority_weighted_gram(counts, gamma)
    raise FieldError(f"unknown {{geometry}} {literal(repr(name))}; choose one of {', '.join(GEOMETRIES)} or give a Gram file "
                     "({gram_file})")


def prototypes_from_gram(
    g,
    d: int,
    *,
    seed: int | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    tol: float = GRAM_TOL,
) -> torch.Tensor:
    """Unit prototypes W ``[k, d]`` with W W^T = G (to round-off), from G = V diag(λ) V^T.

    W = V_r diag(λ_r)^(1/2) padded with zero columns to d (r = rank), rows renormalized.  With
    ``seed``, W is multiplied by a seeded random rotation of R^d (same Gram, generic coordinates), drawn as a
    d x min(d, k) orthonormal matrix, so a large d costs O(d k^2).
    """
    if not isinstance(d, int) or d < 1:
        raise FieldError(f"the embedding dimension {{d}} must be a positive integer, got {literal(repr(d))}")
    g = check_gram(g, d, tol)
    ev, vecs = torch.linalg.eigh(g)
    m = min(d, len(ev))
    order = torch.argsort(ev, descending=True)[:m]
    w = vecs[:, order] * ev[order].clamp_min(0).sqrt()  # [k, m]
    w = w / torch.linalg.vector_norm(w, dim=1, keepdim=True)
    if seed is None:
        w = torch.nn.functional.pad(w, (0, d - m))
    else:
        # W padded to d columns times a Haar rotation R of R^d is W R[:m]; R[:m]^T is a Haar-random d x m matrix
        # with orthonormal columns: the sign-fixed QR of a d x m Gaussian, O(d m^2) instead of O(d^3).
        gen = torch.Generator().manual_seed(seed)
        q, r = torch.linalg.qr(torch.randn(d, m, generator=gen, dtype=torch.float64))
        w = w @ (q * torch.sign(r.diagonal())).T
    return w.to(dtype=dtype, device=device)
