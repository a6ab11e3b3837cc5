"""Numerical check of Proposition 1 (the large-n_w limit of SCL with prototypes), as published and as
derived in docs/prop1.md.

For a feature set h and a reference h', the constants drop out of L(h) - L(h').  For each n_w we compare
the exact loss (``scl_loss``, copies as multiplicities: nothing grows with n_w) with each limit:

- value gap: |(L(h) - L(h')) - (limit(h) - limit(h'))| / |L(h) - L(h')|;
- gradient gap: || grad_R L(h) - grad_R limit(h) || / || grad_R L(h) ||, Riemannian (tangent) gradients
  on the sphere, where the constants do not enter at all.

The published limit holds for a convention when its gaps vanish as n_w grows; the derived one must
vanish at the rate 1 / n_w.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ufm.geometry import make_gram, prototypes_from_gram
from ufm.imbalance import labels_from_counts
from ufm.losses import limit_loss, prop1_loss, scl_loss

__all__ = ["Prop1Case", "default_cases", "gaps", "verify", "verdicts", "verdict_line"]

N_WS = tuple(float(v) for v in np.logspace(0, 4, 9))


@dataclass(frozen=True)
class Prop1Case:
    """One input: class counts of the batch, target geometry, temperature, and how h is drawn."""

    counts: tuple[int, ...] = (4, 4, 2, 2)
    geometry: str = "etf"
    tau: float = 0.5
    inputs: str = "random"  # or "near-optimum": h_i = normalize(w_{y_i} + 0.3 noise)
    d: int = 8
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.geometry}, tau {self.tau:g}, counts {list(self.counts)}, {self.inputs} h"


def default_cases() -> list[Prop1Case]:
    """Random and near-optimal inputs, ETF and non-ETF targets, two temperatures, two compositions."""
    return [
        Prop1Case(counts, geometry, tau, inputs)
        for counts, geometry, tau, inputs in itertools.product(
            ((4, 4, 2, 2), (6, 1, 3, 2)), ("etf", "minority"), (0.1, 0.5), ("random", "near-optimum")
        )
    ]


def _features(case: Prop1Case, w: torch.Tensor, y: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(y), case.d, generator=gen, dtype=torch.float64)
    if case.inputs == "random":
        return F.normalize(noise, dim=-1)
    if case.inputs == "near-optimum":
        return F.normalize(w[y] + 0.3 * noise, dim=-1)
    raise ValueError(f"unknown inputs {case.inputs!r}: use random or near-optimum")


def _riemannian_grad(fn, h: torch.Tensor) -> torch.Tensor:
    x = h.clone().requires_grad_()
    (grad,) = torch.autograd.grad(fn(x), x)
    return (grad - (grad * x).sum(-1, keepdim=True) * x).detach()


def gaps(case: Prop1Case, n_ws=N_WS) -> list[dict]:
    """Value and gradient gaps of the derived and the published limit, per n_w and anchor convention."""
    y = labels_from_counts(torch.tensor(case.counts))
    k = len(case.counts)
    w = prototypes_from_gram(make_gram(case.geometry, k, torch.tensor(case.counts)), case.d, seed=case.seed)
    h, ref = _features(case, w, y, case.seed + 1), _features(case, w, y, case.seed + 2)
    limits = {
        "derived": lambda x, anchors: limit_loss(x, y, w, case.tau, anchors),
        "published": lambda x, anchors: prop1_loss(x, y, w, case.tau),
    }
    rows = []
    for anchors, n_w in itertools.product((True, False), n_ws):
        exact = lambda x: scl_loss(x, y, w, n_w, case.tau, anchors)  # noqa: E731
        delta = float((exact(h) - exact(ref)).detach())
        g_exact = _riemannian_grad(exact, h)
        row = {"case": case.name, "prototype_anchors": anchors, "n_w": n_w}
        for name, limit in limits.items():
            d_limit = float((limit(h, anchors) - limit(ref, anchors)).detach())
            g_limit = _riemannian_grad(lambda x: limit(x, anchors), h)
            row[f"value_gap_{name}"] = abs(delta - d_limit) / abs(delta)
            row[f"grad_gap_{name}"] = float(torch.linalg.norm(g_exact - g_limit) / torch.linalg.norm(g_exact))
        rows.append(row)
    return rows


def verify(cases: list[Prop1Case] | None = None, n_ws=N_WS) -> list[dict]:
    """:func:`gaps` for every case (``default_cases()`` by default)."""
    return [row for case in (cases or default_cases()) for row in gaps(case, n_ws)]


def _slope(n_ws: np.ndarray, values: np.ndarray) -> float:
    """Least-squares slope of log(value) against log(n_w) over the last three n_w."""
    x, v = np.log(n_ws[-3:]), np.log(np.maximum(values[-3:], 1e-300))
    return float(np.polyfit(x, v, 1)[0])


def verdicts(rows: list[dict]) -> list[dict]:
    """Per anchor convention: worst gap over the cases at the largest n_w and the fitted decay rate, for
    each limit, and whether the published limit holds (its worst gradient gap < 1% and decaying)."""
    out = []
    for anchors in (True, False):
        sub = [r for r in rows if r["prototype_anchors"] == anchors]
        n_ws = np.array(sorted({r["n_w"] for r in sub}))
        entry = {"prototype_anchors": anchors, "largest_n_w": float(n_ws[-1])}
        for name in ("derived", "published"):
            for kind in ("value", "grad"):
                key = f"{kind}_gap_{name}"
                per_case = {}
                for r in sub:
                    per_case.setdefault(r["case"], []).append((r["n_w"], r[key]))
                worst = max(sorted(v)[-1][1] for v in per_case.values())
                slopes = [_slope(n_ws, np.array([g for _, g in sorted(v)])) for v in per_case.values()]
                entry[f"{key}_at_largest"] = worst
                entry[f"{key}_slope"] = float(np.median(slopes))
        entry["published_holds"] = bool(
            entry["grad_gap_published_at_largest"] < 1e-2 and entry["grad_gap_published_slope"] < -0.5
        )
        out.append(entry)
    return out


def verdict_line(entry: dict) -> str:
    """One sentence per convention."""
    conv = "prototypes as anchors" if entry["prototype_anchors"] else "batch samples as the only anchors"
    status = "holds" if entry["published_holds"] else "does NOT hold"
    return (
        f"{conv}: the published limit {status} (worst relative gradient gap {entry['grad_gap_published_at_largest']:.3g} "
        f"at n_w = {entry['largest_n_w']:g}, decay exponent {entry['grad_gap_published_slope']:+.2f}); the derived "
        f"limit's worst gap is {entry['grad_gap_derived_at_largest']:.2g} (exponent {entry['grad_gap_derived_slope']:+.2f})"
    )
