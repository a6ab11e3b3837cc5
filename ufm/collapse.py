"""When is collapse optimal?  One cell = the certified collapsed optimum against the uncollapsed N x N problem.

For class counts n, a batch-set (full batch, or the batches of one seeded reshuffled epoch), tau, n_w and the
anchor convention, :func:`collapse_cell` brackets the optimum of the full problem (every sample its own unit
row, :func:`ufm.solver.full.full_program`) three ways:

- the collapsed optimum f_c with its certified gap g_c (:func:`ufm.solver.solve`): every collapsed
  geometry has objective >= f_c - g_c;
- the collapsed solution lifted to N samples (every sample at its class mean, exactly feasible:
  :func:`ufm.solver.lowrank_full.lift_collapsed`) with objective f_L and the weak-duality certificate of
  the *full* problem at that point, g_L (:func:`ufm.solver.certificate.gram_certificate`): optimum >= f_L - g_L.
  Where collapse is optimal the dual matrix at the lifted point is PSD up to round-off and g_L is tiny,
  even where the samples barely fail to spread (there the uncollapsed BM stalls and its own gap is loose);
- the uncollapsed Burer-Monteiro optimum f_b with its certified gap g_b (:func:`ufm.solver.solve_full_bm`,
  from the perturbed lifted point and random starts): optimum >= f_b - g_b, and f_b is the objective of a
  feasible uncollapsed point.

Verdicts: "not optimal" (certified) when f_b < f_c - g_c - 1e-11 |f_c| (an uncollapsed point beats every
collapsed one; 1e-11 covers the float64 round-off of the sums); "collapse optimal" (certified within
``collapse_gap``) when collapse_gap = f_L - max(f_L - g_L, f_b - g_b) >= opt_collapsed - opt_full is at most
``rel_tol`` |f_L|; else "undecided".  The full problem is the convex relaxation over Grams, which features of
dimension >= N + k realize, so these statements hold for the UFM with d >= N + k.
"""

from __future__ import annotations

import math

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ufm._config import option as _opt
from ufm.errors import FieldError, literal
from ufm.batching import epoch_batches
from ufm.geometry import make_gram
from ufm.imbalance import class_counts, labels_from_counts
from ufm.solver import solve
from ufm.solver.certificate import gram_certificate
from ufm.solver.full import full_program, within_class_min
from ufm.solver.lowrank_full import default_rank, lift_collapsed, prototype_rows, solve_full_bm
from ufm.grid import Point, config_hash

__all__ = ["VERDICTS", "CollapseCell", "CollapseMapConfig", "collapse_cell", "cell_batches", "lifted_certificate", "map_cells",
           "collapse_map", "run_collapse_map", "cell_point", "ROUNDOFF"]

VERDICTS = ("collapse optimal", "not optimal", "undecided", "error")
ROUNDOFF = 1e-11  # relative round-off allowed when comparing two float64 objectives (sums of ~N^2 terms)
BATCHINGS = ("full", "shuffle")


@dataclass(frozen=True)
class CollapseCell:
    """One cell: ``counts [k]``, tau, n_w, the anchor convention, the target G_* (``etf`` or ``orthogonal``)
    and the batching: ``full`` or ``shuffle`` (the batches of one reshuffled epoch of ``batch_size``, drawn
    with ``batch_seed``).  ``seeds``: random starts of the uncollapsed BM (besides the perturbed lifted
    collapsed point); ``rel_tol``: the relative gap under which collapse counts as certified optimal.
    ``profile`` and ``ratio`` only label the cell."""

    counts: tuple[int, ...]
    tau: float
    n_w: float
    prototype_anchors: bool = True
    target: str = "etf"
    batching: str = "full"
    batch_size: int = 0
    batch_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    rel_tol: float = 1e-9
    profile: str = ""
    ratio: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", tuple(int(c) for c in self.counts))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if len(self.counts) < 2 or min(self.counts) < 1:
            raise FieldError(f"{{counts}} must list at least 2 classes of >= 1 sample, got {self.counts}")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise FieldError(f"{{tau}} must be a finite number > 0, got {self.tau}")
        if not (math.isfinite(self.n_w) and self.n_w >= 0):
            raise FieldError(f"{{n_w}} must be a finite number >= 0, got {self.n_w}")
        from ufm.solver.problem import check_solver_n_w

        check_solver_n_w(self.n_w, self.prototype_anchors)
        if self.target not in ("etf", "orthogonal"):
            raise FieldError(f"{{target}} must be etf or orthogonal, got {literal(repr(self.target))}")
        if self.batching not in BATCHINGS:
            raise FieldError(f"{{batching}} must be one of {', '.join(BATCHINGS)}, got {literal(repr(self.batching))}")
        if self.batching == "shuffle" and not 2 <= self.batch_size < sum(self.counts):
            raise FieldError(f"{{batch_size}} must be in [2, N) = [2, {sum(self.counts)}) for reshuffled batches, "
                             f"got {self.batch_size}")
        if self.batching == "full" and (self.batch_size not in (0, sum(self.counts)) or self.batch_seed != 0):
            raise FieldError("{batch_size} and {batch_seed} apply to {batching=shuffle} only")
        if not (0 < self.rel_tol < 1):
            raise FieldError(f"{{rel_tol}} must be in (0, 1), got {self.rel_tol}")

    @property
    def name(self) -> str:
        parts = [self.profile or "counts", f"R{self.ratio:g}" if self.ratio else f"N{sum(self.counts)}",
                 f"tau{self.tau:g}", f"nw{self.n_w:g}", "pa" if self.prototype_anchors else "ba", self.target,
                 self.batching + (f"{self.batch_size}s{self.batch_seed}" if self.batching == "shuffle" else "")]
        return "_".join(parts)

    def to_dict(self) -> dict:
        return {**asdict(self), "counts": list(self.counts), "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, data: dict) -> "CollapseCell":
        return cls(**data)

    def without_effect(self) -> dict[str, str]:
        return {}


def cell_batches(cell: CollapseCell) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """``labels [N]`` (sorted by class), the batches (sample-index arrays) and their class compositions
    ``[B, k]``: one full batch, or one reshuffled epoch drawn with ``cell.batch_seed``."""
    k = len(cell.counts)
    labels_t = labels_from_counts(cell.counts)
    labels = labels_t.numpy()
    if cell.batching == "full":
        batches = [np.arange(len(labels))]
    else:
        b = epoch_batches(labels_t, cell.batch_size, "shuffle", torch.Generator().manual_seed(cell.batch_seed), k)
        batches = [row[keep].numpy() for row, keep in zip(b.index, b.mask)]
    comp = np.stack([np.bincount(labels[b], minlength=k) for b in batches])
    return labels, batches, comp


def lifted_certificate(labels, batches, k: int, gram: np.ndarray, cross: np.ndarray | None, g: np.ndarray | None,
                       n_w: float, prototype_anchors: bool, tau: float, p: int | None = None) -> dict:
    """The collapsed geometry (``gram [k, k]``, ``cross [k, k]``) lifted to the N samples (exactly feasible,
    :func:`lift_collapsed`) and certified in the full N x N problem: ``objective`` (f_L), ``certified_gap``
    (>= f_L - full optimum), ``relative_gap``, ``dual_min_eigenvalue`` and the lifted unit ``rows [N, p]``."""
    labels = np.asarray(labels)
    n = len(labels)
    rank_g = prototype_rows(g, k).shape[1]
    p = default_rank(n, k, rank_g) if p is None else p
    rows = lift_collapsed(gram, cross, labels, g, p)
    w_rows = np.hstack([prototype_rows(g, k), np.zeros((k, p - rank_g))])
    full_gram = rows @ rows.T
    full_cross = rows @ w_rows.T if g is not None else None
    program = full_program(labels, batches, k, n_w, prototype_anchors, tau)
    x = np.zeros((n, k)) if full_cross is None else full_cross
    value = program.numpy(np.concatenate([full_gram.ravel(), x.ravel(), (np.eye(k) if g is None else g).ravel()]))
    cert = gram_certificate(program, full_gram, full_cross, g, k)
    return {"objective": float(value), **cert, "rows": rows}


def collapse_cell(cell: CollapseCell) -> dict:
    """The verdict of one cell (see the module docstring) with its numbers: ``collapsed`` (f_c),
    ``collapsed_gap`` (g_c), ``lifted`` (f_L), ``lifted_gap`` (g_L), ``lifted_dual_min_eigenvalue``, ``full``
    (f_b), ``full_gap`` (g_b), ``gain_lower`` (certified lower bound on opt_collapsed - opt_full, > 0 only
    when refuted), ``collapse_gap`` (certified upper bound on it), ``min_cos_majority`` / ``_minority`` (smallest
    within-class cosine of the BM point over the largest / smallest classes), ``verdict`` and ``seconds``."""
    start = time.perf_counter()
    labels, batches, comp = cell_batches(cell)
    k = len(cell.counts)
    g = make_gram(cell.target, k, cell.counts).numpy() if cell.n_w > 0 else None
    collapsed = solve(comp, cell.tau, g, cell.n_w, cell.prototype_anchors)
    lifted = lifted_certificate(labels, batches, k, collapsed.gram, collapsed.cross, g, cell.n_w,
                                cell.prototype_anchors, cell.tau)
    rows = lifted.pop("rows")
    noise = torch.randn(rows.shape, generator=torch.Generator().manual_seed(12345), dtype=torch.float64).numpy()
    full = solve_full_bm(labels, batches, cell.tau, g, cell.n_w, cell.prototype_anchors, num_classes=k,
                         seeds=cell.seeds, starts=[rows + 1e-2 * noise])
    f_c, g_c, f_l, g_l, f_b, g_b = (collapsed.objective, collapsed.certified_gap, lifted["objective"],
                                    lifted["certified_gap"], full.objective, full.certified_gap)
    gain_lower = (f_c - g_c) - f_b - ROUNDOFF * abs(f_c)
    collapse_gap = f_l - max(f_l - g_l, f_b - g_b)
    if gain_lower > 0:
        verdict = "not optimal"
    elif collapse_gap <= cell.rel_tol * abs(f_l):
        verdict = "collapse optimal"
    else:
        verdict = "undecided"
    counts = np.asarray(cell.counts)
    w = within_class_min(full.gram, labels)
    return {**cell.to_dict(), "name": cell.name, "N": int(counts.sum()), "collapsed": f_c, "collapsed_gap": g_c,
            "lifted": f_l, "lifted_gap": g_l, "lifted_dual_min_eigenvalue": lifted["dual_min_eigenvalue"],
            "full": f_b, "full_gap": g_b, "full_status": full.status, "gain_lower": max(gain_lower, 0.0),
            "collapse_gap": collapse_gap, "relative_collapse_gap": collapse_gap / abs(f_l),
            "relative_difference": (f_c - f_b) / abs(f_c),
            "min_cos_majority": float(np.nanmin(w[counts == counts.max()])),
            "min_cos_minority": float(np.nanmin(w[counts == counts.min()])),
            "min_cos": float(np.nanmin(w)), "verdict": verdict, "seconds": time.perf_counter() - start}


def map_cells(profiles: Sequence[str] = ("step", "long-tail"), ratios: Sequence[float] = (2.0, 10.0),
              taus: Sequence[float] = (0.1, 0.5), n_ws: Sequence[float] = (0.0, 1.0, 10.0),
              anchors: Sequence[bool] = (True, False), k: int = 10, n_major: int = 20, minority_fraction: float = 0.5,
              target: str = "etf", batching: str = "full", batch_size: int = 0, batch_seed: int = 0,
              seeds: Sequence[int] = (0,), rel_tol: float = 1e-9) -> list[CollapseCell]:
    """The grid profiles x ratios x taus x n_ws x anchors (counts from :func:`ufm.imbalance.class_counts`
    with ``k``, ``n_major`` and, for STEP, ``minority_fraction``); at n_w = 0 the anchor convention does not
    matter, so only one cell is made there, and for 0 < n_w < 1 only batch anchors are a valid problem
    (:func:`ufm.losses.check_copies`), so no prototype-anchor cell is made there (refused when that leaves none)."""
    if k < 2:
        raise FieldError(f"{{k}} must be >= 2, got {k}")
    if minority_fraction != 0.5 and "step" not in profiles:
        raise FieldError("{minority_fraction} applies to the step profile only; add {profile=step} or drop it")
    if set(profiles) == {"balanced"} and any(r != 1 for r in ratios):
        raise FieldError("{ratio} values other than 1 have no effect with balanced counts only; drop them (or add "
                         "{profile=step} or {profile=long-tail})")
    from ufm._config import first_repeat

    for name, values in (("profile", profiles), ("ratio", ratios), ("tau", taus), ("n_w", n_ws),
                         ("anchors", anchors)):
        again = first_repeat(list(values))
        if again is not None:
            shown = str(again) if isinstance(again, (str, bool)) else format(again, "g")
            raise FieldError(f"{{{name}}} repeats the value {shown}: give each value once")
    cells = []
    for profile in profiles:
        # balanced counts have no ratio: one set of cells, labelled R = 1 (not one identical copy per ratio)
        for ratio in ((1.0,) if profile == "balanced" else ratios):
            counts = tuple(int(c) for c in class_counts(profile, k, n_major, ratio, minority_fraction).tolist())
            for tau in taus:
                for n_w in n_ws:
                    conventions = anchors[:1] if n_w == 0 else [a for a in anchors if not (a and 0 < n_w < 1)]
                    if not conventions:
                        raise FieldError(f"{{n_w}} = {n_w:g} with prototype anchors only: with prototype anchors n_w "
                                         "must be 0 or >= 1; add batch anchors ({anchors=both} or {anchors=batch}) or "
                                         "drop that value")
                    for a in conventions:
                        cells.append(CollapseCell(counts, float(tau), float(n_w), bool(a), target, batching,
                                                  batch_size, batch_seed, tuple(seeds), rel_tol, profile,
                                                  float(ratio)))
    if len({c.name for c in cells}) != len(cells):
        raise FieldError("the grid has repeated cells (repeated values in {profile}, {ratio}, {tau}, {n_w} or {anchors})")
    from ufm.solver import check_solve_size

    for counts, protos in sorted({(c.counts, c.n_w > 0) for c in cells}):  # before any cell runs
        check_solve_size(len(counts), 1, protos, "dense")
        check_solve_size(len(counts), 1, protos, "full-bm", samples=sum(counts))
    return cells


MAX_SEEDS = 1000  # random starts per cell: each one an N x N Burer-Monteiro solve


@dataclass(frozen=True)
class CollapseMapConfig:
    """A collapse map: the cells profiles x ratios x taus x n_ws x anchor conventions (:func:`map_cells`), each
    with ``k`` classes of up to ``n_major`` samples, the target ``geometry`` and the batching; ``seeds``: random starts
    of each cell's uncollapsed Burer-Monteiro solve.  Empty ``ratio`` / ``prototype_anchors``: their defaults (2 and
    10, or 1 for balanced counts only; both conventions).  The options of ``ufm collapse-map`` come from its fields."""

    profile: tuple[str, ...] = _opt(("step", "long-tail"), "imbalance profiles: step, long-tail, balanced (repeat)")
    ratio: tuple[float, ...] = _opt((), "imbalance ratios R (repeat; default 2 and 10, none for balanced counts)")
    tau: tuple[float, ...] = _opt((0.1, 0.5), "temperatures (repeat)")
    n_w: tuple[float, ...] = _opt((0.0, 1.0, 10.0), "prototype copies per batch (repeat)")
    prototype_anchors: tuple[bool, ...] = _opt((), "anchor conventions (default both)")
    k: int = _opt(10, "number of classes")
    n_major: int = _opt(20, "samples in each majority class")
    minority_fraction: float = _opt(0.5, "STEP: fraction of minority classes")
    geometry: str = _opt("etf", "the prototypes' Gram G_*: etf or orthogonal")
    batching: str = _opt("full", "full (one batch) or shuffle (the batches of one seeded epoch)")
    batch_size: int = _opt(0, "batch size with --batching shuffle")
    batch_seed: int = _opt(0, "seed of the reshuffled epoch")
    seeds: int = _opt(1, "random starts of each cell's uncollapsed Burer-Monteiro solve (besides the perturbed "
                         "collapsed point)")
    rel_tol: float = _opt(1e-9, "relative gap under which collapse counts as certified optimal")

    def __post_init__(self) -> None:
        for name in ("profile", "ratio", "tau", "n_w", "prototype_anchors"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not 0 <= self.seeds <= MAX_SEEDS:
            raise FieldError(f"{{seeds}} must be in [0, {MAX_SEEDS}] (random starts of each cell's N x N solve), "
                             f"got {self.seeds}")
        if self.geometry not in ("etf", "orthogonal"):
            raise FieldError(f"{{geometry}} must be etf or orthogonal, got {literal(repr(self.geometry))}")
        if self.prototype_anchors and self.n_w and all(w == 0 for w in self.n_w):
            given = (f"{{prototype_anchors={self.prototype_anchors[0]}}}" if len(self.prototype_anchors) == 1
                     else "{prototype_anchors}")
            raise FieldError(f"{given} has no effect with {{n_w}} 0 only (no prototypes); drop it")

    def cells(self) -> list[CollapseCell]:
        """The map's cells (:func:`map_cells`), checked before any runs."""
        default_ratios = (1.0,) if set(self.profile) == {"balanced"} else (2.0, 10.0)
        return map_cells(self.profile, self.ratio or default_ratios, self.tau, self.n_w,
                         self.prototype_anchors or (True, False), self.k, self.n_major, self.minority_fraction,
                         self.geometry, self.batching, self.batch_size, self.batch_seed, tuple(range(self.seeds)),
                         self.rel_tol)

    def to_dict(self) -> dict:
        return asdict(self)

    def without_effect(self) -> dict[str, str]:
        return {}


def _error_row(cell: CollapseCell, error: str) -> dict:
    return {**cell.to_dict(), "name": cell.name, "N": sum(cell.counts), "verdict": "error", "error": error}


def collapse_map(cells: Sequence[CollapseCell]) -> list[dict]:
    """:func:`collapse_cell` for every cell, in memory and in order (a resumable map on any executor:
    :func:`run_collapse_map`).  A cell whose problem is ill-posed (e.g. n_w = 0 with a class of one sample: nothing
    determines its mean) comes back as its cell with ``verdict`` "error" and the reason in ``error``."""
    rows = []
    for cell in cells:
        try:
            rows.append(collapse_cell(cell))
        except ValueError as err:
            rows.append(_error_row(cell, str(err)))
    return rows


# ------------------------------------------------------------------------------- as a kind of grid point


def cell_point(cell: CollapseCell) -> Point:
    """The grid point of one cell: folder ``<cell name>-<config hash>``, values profile, ratio, tau, n_w, anchors."""
    values = {"profile": cell.profile, "ratio": cell.ratio, "tau": cell.tau, "n_w": cell.n_w,
              "anchors": "prototype" if cell.prototype_anchors else "batch"}
    return Point(f"{cell.name}-{config_hash('collapse', cell)}", values, cell)


def run_collapse_map(folder: str | Path, cells: Sequence[CollapseCell], executor=None, done=None,
                     overwrite: bool | None = None) -> dict:
    """The cells as a resumable set in ``folder`` (:func:`ufm.engine.run_set`: one run folder per cell, a killed
    map continues where it stopped when run again, ``ufm gather`` rebuilds its table); the rows, in the order
    of ``cells``, also go to ``folder/collapse_map.json``.  Returns the engine's report (``rows``, ``finished``,
    ``total``, ``missing``, ``skipped``, ``ran``, or ``submitted`` for SLURM without waiting)."""
    from ufm.engine import run_set

    return run_set(folder, "collapse", [cell_point(c) for c in cells], executor, done, overwrite=overwrite)
