"""The cells of a collapse map (:class:`CollapseCell`, the config of the ``collapse`` kind) and the map's config
(:class:`CollapseMapConfig`, the options of ``ufm collapse-map``): checked when built, torch-free (the command
refuses bad input before importing torch); :mod:`ufm.collapse` solves them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

from ufm._config import first_repeat
from ufm._config import option as _opt
from ufm.choices import check_profile, check_solver_n_w
from ufm.errors import FieldError, literal

__all__ = ["CollapseCell", "CollapseMapConfig", "map_cells", "BATCHINGS", "MAX_SEEDS"]

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
    for name, values in (("profile", profiles), ("ratio", ratios), ("tau", taus), ("n_w", n_ws),
                         ("anchors", anchors)):
        again = first_repeat(list(values))
        if again is not None:
            shown = str(again) if isinstance(again, (str, bool)) else format(again, "g")
            raise FieldError(f"{{{name}}} repeats the value {shown}: give each value once")
    for profile in profiles:  # the counts exist, before any is computed
        for ratio in ((1.0,) if profile == "balanced" else ratios):
            check_profile(profile, k, n_major, ratio, minority_fraction)
    from ufm import imbalance  # (torch: the counts are computed here)

    cells = []
    for profile in profiles:
        # balanced counts have no ratio: one set of cells, labelled R = 1 (not one identical copy per ratio)
        for ratio in ((1.0,) if profile == "balanced" else ratios):
            counts = tuple(int(c) for c in imbalance.class_counts(profile, k, n_major, ratio, minority_fraction).tolist())
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
