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

import contextlib
import functools
import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ufm import eta
from ufm.errors import FieldError, literal
from ufm.geometry import make_gram, prototypes_from_gram
from ufm.imbalance import labels_from_counts
from ufm.losses import limit_loss, prop1_loss, scl_loss
from ufm.prop1_config import Prop1Config  # noqa: F401 (re-exported: the options of ufm verify-prop1, torch-free)

__all__ = [
    "Prop1Case",
    "Prop1Config",
    "default_cases",
    "gaps",
    "minimizers",
    "scl_vs_ce",
    "search_worst_gradient_gap",
    "gap_near_the_minimizer",
    "verify",
    "verdicts",
    "verdict_line",
]

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
    raise FieldError(f"unknown {{inputs}} {literal(repr(case.inputs))}: use random or near-optimum")


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
    """:func:`gaps` for every case (``default_cases()`` by default).  Deterministic, so computed once per
    (cases, n_ws) in a process: ``ufm verify-prop1`` and its figure read the same rows (fresh copies each call)."""
    rows = _verify(tuple(cases or default_cases()), tuple(n_ws))
    return [dict(row) for row in rows]


@functools.lru_cache(maxsize=8)
def _verify(cases: tuple[Prop1Case, ...], n_ws: tuple[float, ...]) -> tuple[dict, ...]:
    return tuple(row for case in cases for row in gaps(case, n_ws))


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
        entry["cases"] = len({r["case"] for r in sub})
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
        f"{conv}: the published limit {status} (largest relative gradient gap over the {entry['cases']} cases "
        f"tried {entry['grad_gap_published_at_largest']:.3g} at n_w = {entry['largest_n_w']:g}, decay exponent "
        f"{entry['grad_gap_published_slope']:+.2f}); the derived limit's largest gap is "
        f"{entry['grad_gap_derived_at_largest']:.2g} (exponent {entry['grad_gap_derived_slope']:+.2f})"
    )


def _class_directions(result) -> np.ndarray:
    """Unit class means ``[S, k, d]`` of a simulation's final embeddings."""
    from ufm.analysis import class_means

    h = torch.from_numpy(result.embeddings)
    means = class_means(h, torch.from_numpy(result.labels), len(result.counts))
    return F.normalize(means, dim=-1).numpy()


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def _minimize(cfg, timer: eta.Timer | None):
    """:func:`ufm.simulate.simulate` of ``cfg``, one step of ``timer`` (the UFM minimizations of a verification)."""
    from ufm.simulate import simulate

    result = simulate(cfg)
    if timer is not None:
        timer.step()
    return result


def minimizers(
    n_w: float = 1e4, tau: float = 0.5, geometry: str = "minority", epochs: int = 2000, device: str = "cpu",
    timer: eta.Timer | None = None,
) -> list[dict]:
    """Minimize exact SCL at a large n_w, the derived limit and the published limit in the UFM (full batch,
    k = 4, STEP counts 20, 20, 4, 4, float64) and compare the solutions: largest angle between the same
    class's mean directions (the fixed prototypes remove the rotation freedom) and largest G_M entry gap."""
    from ufm.simulate import SimConfig

    base = SimConfig(k=4, n_major=20, ratio=5, d=8, geometry=geometry, tau=(tau,), n_w=(n_w,), batching="full",
                     epochs=epochs, lr=0.05, log_every=epochs, dtype="float64", device=device)
    rows = []
    for anchors in (True, False):
        runs = {loss: _minimize(SimConfig(**{**base.to_dict(), "loss": loss, "prototype_anchors": anchors}), timer)
                for loss in ("scl", "limit", "prop1")}
        exact_dirs, exact_gm = _class_directions(runs["scl"])[0], runs["scl"].g_m[0]
        row = {"prototype_anchors": anchors, "n_w": n_w, "tau": tau, "geometry": geometry}
        for name, loss in (("derived", "limit"), ("published", "prop1")):
            row[f"max_angle_deg_{name}"] = float(_angle_deg(exact_dirs, _class_directions(runs[loss])[0]).max())
            row[f"max_gram_gap_{name}"] = float(np.abs(exact_gm - runs[loss].g_m[0]).max())
        rows.append(row)
    return rows


def scl_vs_ce(
    n_ws=(0.0, 10.0, 100.0, 1000.0), taus=(0.1, 0.5), geometry: str = "minority", epochs: int = 2000,
    device: str = "cpu", timer: eta.Timer | None = None,
) -> list[dict]:
    """Converged G_M of SCL with prototypes (full batch, both anchor conventions) against the G_M of CE
    with the same fixed classifier, over n_w and tau (k = 4, STEP counts 20, 20, 4, 4, float64)."""
    from ufm.analysis import gram_distance
    from ufm.simulate import SimConfig

    rows = []
    for tau in taus:
        base = SimConfig(k=4, n_major=20, ratio=5, d=8, geometry=geometry, tau=(tau,), batching="full",
                         epochs=epochs, lr=0.05, log_every=epochs, dtype="float64", device=device)
        ce = _minimize(SimConfig(**{**base.to_dict(), "loss": "ce", "n_w": (0.0,)}), timer)
        ce_gm = torch.from_numpy(ce.g_m[0])
        g_star = torch.from_numpy(ce.g_star)
        for anchors in (True, False):
            scl = _minimize(SimConfig(**{**base.to_dict(), "n_w": tuple(n_ws), "prototype_anchors": anchors}), timer)
            for i, n_w in enumerate(n_ws):
                gm = torch.from_numpy(scl.g_m[i])
                rows.append({
                    "tau": tau, "n_w": n_w, "prototype_anchors": anchors,
                    "distance_scl_to_ce": float(gram_distance(gm, ce_gm)),
                    "distance_scl_to_target": float(gram_distance(gm, g_star)),
                    "distance_ce_to_target": float(gram_distance(ce_gm, g_star)),
                })
    return rows


MINIMIZATIONS = 6 + 3 * 2  # UFM minimizations of minimizers() and of scl_vs_ce() with its default taus


def minimize_both(epochs: int = 2000, device: str = "cpu",
                  on_estimate: Callable[[eta.Estimate], None] | None = None) -> tuple[list[dict], list[dict]]:
    """:func:`minimizers` and :func:`scl_vs_ce` (``epochs`` each, on ``device``) with one time estimate for their
    :data:`MINIMIZATIONS` UFM minimizations, after the first one's own (``on_estimate``, default the
    ``ufm.eta.reporting`` callback)."""
    given = eta.reporting(on_estimate) if on_estimate is not None else contextlib.nullcontext()
    with given, eta.outer(eta.Timer(MINIMIZATIONS, "UFM minimizations", "verify-prop1", min_steps=1)) as timer:
        return minimizers(epochs=epochs, device=device, timer=timer), scl_vs_ce(epochs=epochs, device=device,
                                                                                timer=timer)


def _published_grad_gap(
    h: torch.Tensor, y: torch.Tensor, w: torch.Tensor, n_w: float, tau: float
) -> tuple[float, float]:
    """(relative Riemannian gradient gap of the published limit to exact SCL with prototype anchors,
    norm of the exact Riemannian gradient) at h."""
    g_exact = _riemannian_grad(lambda x: scl_loss(x, y, w, n_w, tau, True), h)
    g_pub = _riemannian_grad(lambda x: prop1_loss(x, y, w, tau), h)
    norm = float(torch.linalg.norm(g_exact))
    return float(torch.linalg.norm(g_exact - g_pub)) / norm, norm


def _random_problem(gen: torch.Generator, d: int = 8):
    """Random k in 3..6, class counts 1..6 (each class present), unit prototypes in general position
    (a random target G_*), tau log-uniform in [0.1, 1], random unit features."""
    k = int(torch.randint(3, 7, (1,), generator=gen))
    counts = torch.randint(1, 7, (k,), generator=gen)
    y = labels_from_counts(counts)
    w = F.normalize(torch.randn(k, d, generator=gen, dtype=torch.float64), dim=-1)
    tau = float(10 ** (-torch.rand(1, generator=gen, dtype=torch.float64)))
    h = F.normalize(torch.randn(len(y), d, generator=gen, dtype=torch.float64), dim=-1)
    return y, w, tau, h


def search_worst_gradient_gap(
    n_w: float = 1e4, starts: int = 20, steps: int = 150, seed: int = 0
) -> dict:
    """Look for large relative gradient gaps of the published limit (prototype anchors) at ``n_w``.

    ``starts`` random problems (random k, counts, target prototypes, tau and features, see
    :func:`_random_problem`); from each, a local maximization of the gap over the features (hill climbing
    on the sphere: a random tangent step, kept if the gap grows; the step halves after failures).  Every
    gap is measured with the exact loss at ``n_w``.  Returns the largest gap at the random starts, the
    largest after local maximization, and that case (tau, counts, the exact gradient's norm there).
    """
    gen = torch.Generator().manual_seed(seed)
    best_start, best = 0.0, {"gap": 0.0}
    for _ in range(starts):
        y, w, tau, h = _random_problem(gen)
        gap, norm = _published_grad_gap(h, y, w, n_w, tau)
        best_start = max(best_start, gap)
        sigma, fails = 0.3, 0
        for _ in range(steps):
            trial = F.normalize(h + sigma * torch.randn(h.shape, generator=gen, dtype=torch.float64), dim=-1)
            trial_gap, trial_norm = _published_grad_gap(trial, y, w, n_w, tau)
            if trial_gap > gap:
                h, gap, norm, fails = trial, trial_gap, trial_norm, 0
            else:
                fails += 1
                if fails >= 10:
                    sigma, fails = sigma / 2, 0
        if gap > best["gap"]:
            best = {"gap": gap, "tau": tau, "counts": torch.bincount(y).tolist(), "exact_grad_norm": norm}
    return {"n_w": n_w, "starts": starts, "steps": steps, "worst_at_random_starts": best_start,
            "worst_after_local_search": best["gap"], "worst_case": best}


def gap_near_the_minimizer(
    n_w: float = 1e4, tau: float = 0.5, iterations=(0, 30, 100, 300), lr: float = 0.05, seed: int = 0
) -> list[dict]:
    """The gap has no finite worst case: along a descent on exact SCL (prototype anchors, ``n_w``), the
    exact gradient goes to 0 while the published limit's does not (their minimizers differ), so the
    relative gap grows without bound.  Riemannian gradient descent with a normalizing retraction on
    the features of ``Prop1Case(geometry="minority")`` (k = 4, counts 4, 4, 2, 2, minority-weighted target,
    d = 8) from random features;
    returns (iteration, gap, exact gradient norm) at the given iteration counts."""
    case = Prop1Case(geometry="minority", tau=tau, seed=seed)
    y = labels_from_counts(torch.tensor(case.counts))
    counts = torch.tensor(case.counts)
    w = prototypes_from_gram(make_gram(case.geometry, len(case.counts), counts), case.d, seed=seed)
    h = _features(case, w, y, seed + 1)
    rows, done = [], 0
    for target in sorted(iterations):
        for _ in range(target - done):
            g = _riemannian_grad(lambda x: scl_loss(x, y, w, n_w, tau, True), h)
            h = F.normalize(h - lr * g, dim=-1)
        done = target
        gap, norm = _published_grad_gap(h, y, w, n_w, tau)
        rows.append({"iteration": target, "gap": gap, "exact_grad_norm": norm})
    return rows
