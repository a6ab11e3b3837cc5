"""Non-negative prototypes: W >= 0 with W W^T = G_* (a completely positive factorization), when one is found.

ReLU features are non-negative, so they can only reach prototypes that are non-negative too.  A non-negative
G_* is necessary but not sufficient (G_* must be completely positive).  Search: minimize ||W W^T - G_*||_F^2
over W >= 0 ([k, d]) by L-BFGS-B from the non-negative part of the eigen-factor and from seeded random
starts; accept only an exact check, max |W W^T - G_*| <= tol.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

__all__ = ["nonnegative_prototypes"]


def nonnegative_prototypes(g_star, d: int, tol: float = 1e-7, restarts: int = 8, seed: int = 0) -> torch.Tensor:
    """Prototypes ``[k, d]`` float64, entrywise >= 0, with max |W W^T - G_*| <= ``tol`` (rows then renormalized
    to unit norm).  Raises ValueError when ``g_star`` has negative entries or no such W is found."""
    from ufm.geometry import check_gram

    g = check_gram(g_star).numpy()
    k = len(g)
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"embedding dimension d must be a positive integer, got {d!r}")
    if (g < -1e-12).any():
        raise ValueError("g_star has negative cosines: non-negative prototypes (W >= 0) would have W W^T >= 0 "
                         "entrywise; use a non-negative g_star such as the orthogonal frame")

    def loss(w_flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = w_flat.reshape(k, d)
        r = w @ w.T - g
        return float((r * r).sum()), (4 * r @ w).ravel()

    lam, vecs = np.linalg.eigh(g)
    order = np.argsort(lam)[::-1][:d]
    eigen = vecs[:, order] * np.sqrt(np.clip(lam[order], 0, None))
    eigen = np.pad(eigen, ((0, 0), (0, d - eigen.shape[1])))
    rng = np.random.default_rng(seed)
    starts = [np.abs(eigen), np.clip(eigen, 0, None), np.clip(-eigen, 0, None)]
    starts += [rng.random((k, d)) / np.sqrt(d) for _ in range(restarts)]
    best, best_err = None, np.inf
    for w0 in starts:
        out = minimize(loss, w0.ravel(), jac=True, method="L-BFGS-B", bounds=[(0, None)] * (k * d),
                       options={"maxiter": 5000, "ftol": 1e-30, "gtol": 1e-14})
        w = np.clip(out.x.reshape(k, d), 0, None)
        err = float(np.abs(w @ w.T - g).max())
        if err < best_err:
            best, best_err = w, err
        if best_err <= tol / 4:
            break
    if best_err > tol:
        raise ValueError(f"no non-negative prototypes W ([k, d] = [{k}, {d}], W >= 0) with W W^T = g_star were found "
                         f"(best max |W W^T - G_*| = {best_err:.1e} > {tol:g}): g_star may not be completely positive "
                         "with d columns; use the orthogonal frame (or a larger d) for non-negative (ReLU) features")
    w = best / np.linalg.norm(best, axis=1, keepdims=True)
    return torch.from_numpy(w)
