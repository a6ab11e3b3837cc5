"""Prototype geometry != target geometry: the two-group block prototype Grams G_w and the search for the one
whose optimal class-mean Gram is closest to the target G_* (``ufm design-prototypes``; the prototypes of a
training run with ``prototype_cosines``)."""

from __future__ import annotations

import math

import numpy as np

from ufm import eta
from ufm.copies import SolvePoint, solve_point
from ufm.errors import FieldError
from ufm.geometry import check_gram, make_gram

__all__ = ["block_gram", "best_block_prototypes"]


def block_gram(counts, a: float, b: float, c: float) -> np.ndarray:
    """A two-group Gram: cosine ``a`` between majority prototypes, ``b`` between minority prototypes, ``c``
    across (majority: classes with the largest count).  Valid (PSD) iff a, b <= 1, the group-sum block
    [[1 + (p-1) a, sqrt(p q) c], [sqrt(p q) c, 1 + (q-1) b]] >= 0 (p, q the group sizes)."""
    counts = np.asarray(counts)
    major = counts == counts.max()
    g = np.where(np.outer(major, major), a, np.where(np.outer(~major, ~major), b, c)).astype(float)
    np.fill_diagonal(g, 1.0)
    return g


def _block_from_params(counts, theta: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Unconstrained theta (3,) -> a valid block Gram: a = -1/(p-1) + (1 + 1/(p-1)) sigmoid(theta_0), same for
    b, and c = sin(theta_2) sqrt((1 + (p-1) a)(1 + (q-1) b) / (p q)) (the PSD boundary at |sin| = 1, where
    the ETF lies: its prototypes sum to zero)."""
    counts = np.asarray(counts)
    p = int((counts == counts.max()).sum())
    q = len(counts) - p
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    lo_a, lo_b = -1 / max(p - 1, 1), -1 / max(q - 1, 1)
    a = lo_a + (1 - lo_a) * sig(theta[0])
    b = lo_b + (1 - lo_b) * sig(theta[1])
    c = math.sin(theta[2]) * math.sqrt(max((1 + (p - 1) * a) * (1 + (q - 1) * b), 0.0) / (p * q))
    return block_gram(counts, a, b, c), (a, b, c)


def best_block_prototypes(
    counts,
    tau: float,
    n_w: float,
    g_star=None,
    prototype_anchors: bool = True,
    max_evals: int = 150,
    solver: str = "BM",
) -> dict:
    """Choose the prototype Gram G_w among two-group block Grams (:func:`block_gram`: majority-majority,
    minority-minority and across cosines) to minimize the distance of the optimal G_M to ``g_star``
    (default the ETF) at ``n_w`` copies (full batch), by Nelder-Mead (scipy) from G_w = G_*, over a
    parametrization that keeps G_w valid.  Returns the distance with G_w = G_*, the best one found, the
    best (a, b, c) and G_w (``g_w``, k x k), the number of solves (``certified_solves`` of them certified), the
    status of the G_w = G_* solve (``g_star_status``) and the certificate of the best solve.  The best is chosen
    among the certified solves only (status "optimal"); none certified is refused.  A local search over a
    restricted family: a smaller distance found is real (certified solve), no improvement proves nothing
    beyond this family and this search."""
    from scipy.optimize import minimize

    counts = np.asarray(counts)
    k = len(counts)
    target = (check_gram(g_star).numpy() if g_star is not None else make_gram("etf", k).numpy())
    major = counts == counts.max()
    p, q = int(major.sum()), int((~major).sum())
    if p < 2 or q < 2:  # refused before any solve
        raise FieldError(f"the block prototype design needs at least two majority classes (the largest count) and "
                         f"two minority classes, got {p} and {q} in class counts {counts.tolist()}; give other "
                         "{counts}, or {profile=step} with {k} >= 4")
    base = solve_point(counts, tau, target, n_w, prototype_anchors, solver=solver)
    a0 = float(target[np.ix_(major, major)][~np.eye(p, dtype=bool)].mean())
    b0 = float(target[np.ix_(~major, ~major)][~np.eye(q, dtype=bool)].mean())
    c0 = float(target[np.ix_(major, ~major)].mean())
    bound = math.sqrt((1 + (p - 1) * a0) * (1 + (q - 1) * b0) / (p * q))
    logit = lambda v, lo: math.log((v - lo) / (1 - v))  # noqa: E731
    theta0 = np.array([logit(a0, -1 / (p - 1)), logit(b0, -1 / (q - 1)),
                       math.asin(max(-1.0, min(1.0, c0 / bound))) if bound > 0 else 0.0])
    cache: dict[tuple, SolvePoint] = {}
    timer = eta.Timer(max_evals, "solves", "design-prototypes", min_steps=1, bound=True)

    def point(theta: np.ndarray) -> SolvePoint:
        key = tuple(np.round(theta, 12))
        if key not in cache:
            g_w, _ = _block_from_params(counts, theta)
            with eta.outer(timer):  # the solves' own loops report until the search has
                cache[key] = solve_point(counts, tau, target, n_w, prototype_anchors, g_w=g_w, solver=solver)
            timer.step()
        return cache[key]

    res = minimize(lambda t: point(t).distance, theta0, method="Nelder-Mead",
                   options={"maxfev": max_evals, "xatol": 1e-4, "fatol": 1e-7})
    certified = [t for t in cache if cache[t].status == "optimal"]
    if not certified:
        raise FieldError(f"the solver certified none of the {len(cache)} solves of the design at {{n_w}} {n_w:g}, "
                         f"{{tau}} {tau:g} (status {base.status}): nothing certified to choose from; use fewer copies "
                         "or a larger temperature")
    best_theta = min(certified, key=lambda t: cache[t].distance)
    best = cache[best_theta]
    g_best, (a, b, c) = _block_from_params(counts, np.array(best_theta))
    return {
        "counts": counts.tolist(), "tau": tau, "n_w": n_w, "prototype_anchors": prototype_anchors,
        "distance_g_star": base.distance, "distance_best": best.distance,
        "improvement": base.distance - best.distance, "relative_improvement": 1 - best.distance / base.distance,
        "g_star_cosines": (a0, b0, c0), "best_cosines": (a, b, c), "g_w": g_best.tolist(), "solves": len(cache),
        "best_status": best.status, "best_certified_gap": best.certified_gap, "converged": bool(res.success),
        "certified_solves": len(certified), "g_star_status": base.status,
    }
