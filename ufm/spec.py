"""The experiment specification, validated once: class counts, target geometry, tau, prototypes (n_w copies
of G_*, the anchor convention) and the batching of one epoch.

The fields shared by several configs are declared once, here, in small frozen dataclass blocks that the
configs inherit (field, default, help text, validation and ``without_effect()`` reasons written once):

- :class:`ImbalanceProfile` (profile, n_major, ratio, minority_fraction) and :class:`ClassCounts` (+ k,
  ``class_counts()``): :class:`ProblemSpec`, :class:`ufm.simulate.SimConfig`; ``TrainConfig`` takes the
  profile only (its k comes from the data set) and overrides n_major's default (0: all the data set has);
- :class:`NamedGeometry` (geometry, gamma, ``g_star(counts)``) and :class:`TargetGeometry` (+ gram_file):
  ``ProblemSpec``, ``SimConfig``, :class:`CheckConfig`; ``TrainConfig`` takes the named geometry only.

:class:`ProblemSpec` is read by ``ufm solve``, ``ufm solve-sweep``, ``ufm copies`` and ``ufm design-prototypes``,
whose flags are generated from its fields (``cli/_config.py``); :class:`SolveConfig` adds the solver's own options.
``without_effect()`` lists the fields that do nothing in a given spec (the CLI refuses them when typed, a sweep
refuses a grid over them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ufm._config import NON_NEGATIVE, POSITIVE, UNIT, Range, check_choices, check_gram_source, check_values, from_dict
from ufm._config import option as _opt
from ufm.choices import PROFILES, SCHEMES, SOLVERS, check_copies, check_profile, check_solver_n_w, count_list
from ufm.errors import FieldError, literal

__all__ = ["ImbalanceProfile", "ClassCounts", "NamedGeometry", "TargetGeometry", "ProblemSpec", "SolveConfig",
           "DesignConfig", "CheckConfig", "GEOMETRIES"]

GEOMETRIES = ("etf", "orthogonal", "minority")

if TYPE_CHECKING:  # torch is imported where the configs compute (the CLI refuses bad input without it)
    import torch


@dataclass(frozen=True)
class _Block:
    """The root of the blocks: each block's ``__post_init__`` and ``without_effect`` add their own part and call
    ``super()`` (cooperative), so a config that inherits several blocks runs every block's part once."""

    def __post_init__(self) -> None:
        pass

    def without_effect(self) -> dict[str, str]:
        """The fields that do nothing in this config, each with the reason (the CLI refuses them when typed).

        A reason is a :class:`ufm.errors.FieldError` fragment naming the fields it mentions as placeholders
        (``"with {n_w} = 0 (no prototypes)"``); ``str(FieldError(reason))`` reads it with field names."""
        return {}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """The config from its ``to_dict()`` (a run folder's config.json), refusing unknown fields."""
        return from_dict(cls, data)


@dataclass(frozen=True)
class ImbalanceProfile(_Block):
    """The class-count profile: balanced, STEP (a fraction rho of minority classes) or long-tail (geometric)."""

    # the lowest n_major allowed (TrainConfig: 0, all the images the data set has)
    N_MAJOR_RANGE: ClassVar[Range] = Range(1)

    profile: str = _opt("step", "class counts: balanced, step or long-tail")
    n_major: int = _opt(50, "samples in each majority class")
    ratio: float = _opt(10.0, "imbalance ratio R (majority / minority count; not for balanced)")
    minority_fraction: float = _opt(0.5, "fraction rho of minority classes (step profile)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choices(self, {"profile": PROFILES})
        check_values(self, {"n_major": self.N_MAJOR_RANGE, "ratio": Range(1), "minority_fraction": UNIT})

    def without_effect(self) -> dict[str, str]:
        out = super().without_effect()
        if self.profile != "step":
            out.setdefault("minority_fraction", f"with {{profile}} {self.profile} (step only)")
        if self.profile == "balanced":
            out.setdefault("ratio", "with balanced counts")
        return out


@dataclass(frozen=True)
class ClassCounts(ImbalanceProfile):
    """k classes with counts from the profile."""

    k: int = _opt(10, "number of classes")
    counts: str | None = _opt(None, "class counts, e.g. 50x5,5x5 (instead of k / profile / n_major / ratio)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_values(self, {"k": Range(2)})
        if self.counts is not None:
            if not self.counts.strip():
                raise FieldError("{counts} is empty; give class counts such as 50x5,5x5, or leave it unset for "
                                 "the {profile}")
            count_list(self.counts)  # refused here, before anything runs

    def without_effect(self) -> dict[str, str]:
        out = {}
        if self.counts is not None:
            for name in ("k", "profile", "n_major", "ratio", "minority_fraction"):
                out[name] = "when {counts} are given"
        out.update({k: v for k, v in super().without_effect().items() if k not in out})
        return out

    def check_counts(self) -> None:
        """Refuse (FieldError) a profile whose counts do not exist (e.g. STEP minorities of n_major // ratio = 0),
        without computing them (torch-free): checked where the config is final (a run, each point of a grid), not
        when it is built (a grid's base config may have its ratio replaced)."""
        if self.counts is None:
            check_profile(self.profile, self.k, self.n_major, self.ratio, self.minority_fraction)

    def class_counts(self) -> torch.Tensor:
        """``[k]`` class counts: ``counts`` when given, else the profile's (majority first)."""
        from ufm.imbalance import class_counts, parse_counts

        if self.counts is not None:
            return parse_counts(self.counts)
        return class_counts(self.profile, self.k, self.n_major, self.ratio, self.minority_fraction)


@dataclass(frozen=True)
class NamedGeometry(_Block):
    """The target Gram G_* by name: the simplex ETF, the orthogonal frame, or the minority-weighted geometry."""

    geometry: str = _opt("etf", "target G_*: etf, orthogonal or minority (rarer classes get larger angles)")
    gamma: float = _opt(1.0, "strength of the minority geometry (0 = ETF; minority geometry only)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choices(self, {"geometry": GEOMETRIES})
        check_values(self, {"gamma": NON_NEGATIVE})

    def without_effect(self) -> dict[str, str]:
        out = super().without_effect()
        if self.geometry != "minority" or getattr(self, "gram_file", None) is not None:
            out.setdefault("gamma", "without the minority geometry")
        return out

    def g_star(self, counts: torch.Tensor) -> torch.Tensor:
        """``[k, k]`` the validated G_* for the class counts ``counts: [k]`` (the minority geometry reads them)."""
        from ufm.geometry import check_gram, make_gram

        return check_gram(make_gram(self.geometry, len(counts), counts, self.gamma))


@dataclass(frozen=True)
class TargetGeometry(NamedGeometry):
    """G_* by name, or read from a k x k Gram file."""

    gram_file: str | None = _opt(None, "a k x k G_* (.npy/.csv/.txt) instead of --geometry")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_gram_source(self.gram_file, self.geometry)

    def without_effect(self) -> dict[str, str]:
        out = super().without_effect()
        if self.gram_file is not None:
            out.setdefault("geometry", "when {gram_file} gives G_*")
        return out

    def g_star(self, counts: torch.Tensor) -> torch.Tensor:
        """``[k, k]`` the validated G_* (from ``gram_file`` or ``geometry``), refused unless it has one row per class."""
        from ufm.geometry import check_gram, load_gram

        if self.gram_file is None:
            return super().g_star(counts)
        g = check_gram(load_gram(self.gram_file))
        if len(g) != len(counts):
            raise FieldError(f"the Gram in {{gram_file}} {literal(self.gram_file)} is {len(g)} x {len(g)} but there are "
                             f"{len(counts)} classes; make them match ({{k}} = {len(g)} classes, or another Gram file)")
        return g


@dataclass(frozen=True)
class ProblemSpec(TargetGeometry, ClassCounts):
    """Class counts, batching, tau and n_w copies of prototypes with Gram G_* (collapsed features)."""

    tau: float = _opt(0.1, "temperature")
    n_w: float = _opt(0.0, "copies of each prototype per batch")
    prototype_anchors: bool = _opt(True, "prototype copies are anchors too")
    batching: str = _opt("full", "full, or the batch-set of one seeded epoch: shuffle, balanced, binding")
    batch_size: int = _opt(32, "batch size when batching is not full")
    seed: int = _opt(0, "seed of the epoch whose batch-set is solved")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choices(self, {"batching": SCHEMES})
        check_values(self, {"tau": POSITIVE, "n_w": NON_NEGATIVE, "batch_size": Range(1), "seed": NON_NEGATIVE})
        check_copies(self.n_w, self.prototype_anchors)
        check_solver_n_w(self.n_w, self.prototype_anchors)

    def without_effect(self) -> dict[str, str]:
        out = super().without_effect()
        if self.batching == "full":
            out["batch_size"] = "with full batching (one batch of all samples)"
            out["seed"] = "with full batching (nothing is drawn)"
        return out

    def compositions(self, counts: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, k]`` class counts of each batch of the epoch (one row for full batch)."""
        from ufm.batching import epoch_compositions

        n = self.class_counts() if counts is None else counts
        return n.unsqueeze(0) if self.batching == "full" else epoch_compositions(n, self.batch_size, self.batching,
                                                                                 self.seed)

    def g_star(self, counts: torch.Tensor | None = None) -> torch.Tensor:
        """``[k, k]`` the validated target Gram G_* (from ``gram_file`` or ``geometry``), matching the classes."""
        return super().g_star(self.class_counts() if counts is None else counts)


@dataclass(frozen=True)
class SolveConfig(ProblemSpec):
    """One convex solve: a :class:`ProblemSpec` and the solver's options (``ufm solve``, ``ufm solve-sweep``)."""

    solver: str = _opt("auto", "auto, CLARABEL, SCS or BM")
    reduce: bool = _opt(True, "solve the symmetry-reduced problem when equal-count classes allow it")
    relu: bool = _opt(False, "non-negative features (doubly non-negative relaxation)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choices(self, {"solver": ("auto", *SOLVERS)})

    def without_effect(self) -> dict[str, str]:
        out = super().without_effect()
        if self.n_w == 0:
            for name in ("geometry", "gamma", "gram_file", "prototype_anchors"):
                out.setdefault(name, "with {n_w} = 0 (no prototypes)")
        if self.solver == "BM":
            out.setdefault("reduce", "with {solver} BM (Burer-Monteiro is never symmetry-reduced)")
        return out


@dataclass(frozen=True)
class DesignConfig(ProblemSpec):
    """``ufm design-prototypes``: a :class:`ProblemSpec` (full batch) and the search's budget.

    The search is over prototype Grams G_w at ``n_w`` copies, full batch, for the optimal G_M closest to G_*
    (:func:`ufm.maps.best_block_prototypes`)."""

    n_w: float = _opt(10.0, "copies of each prototype per batch")
    max_evals: int = _opt(150, "solves the Nelder-Mead search may make")

    def __post_init__(self) -> None:
        # before the problem's own n_w >= 0, the whole range a design takes: it needs prototypes, and with prototype
        # anchors at least one copy (an anchor copy has n_w - 1 copies of itself as positives)
        check_values(self, {"n_w": Range(1) if self.prototype_anchors else POSITIVE})
        super().__post_init__()
        check_values(self, {"max_evals": Range(1)})
        if self.batching != "full":
            raise FieldError(f"{{batching={literal(repr(self.batching))}}}: the prototype design solves the full-batch problem; "
                             "leave {batching} full")


@dataclass(frozen=True)
class CheckConfig(TargetGeometry):
    """``ufm check``: one random batch of ``n`` unit embeddings in R^d with labels over k classes, k prototypes
    realizing G_* with ``n_w`` copies each, tau; the minority geometry reads the counts k, k - 1, ..., 1."""

    k: int = _opt(10, "number of classes (prototypes)")
    n: int = _opt(32, "batch size")
    d: int = _opt(16, "embedding dimension")
    n_w: int = _opt(50, "copies of each prototype in the batch (materialized by the naive loss)")
    tau: float = _opt(0.5, "temperature")
    prototype_anchors: bool = _opt(True, "prototype copies are anchors too (else only positives and negatives)")
    seed: int = _opt(0, "random seed")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_values(self, {"k": Range(1), "n": Range(1), "d": Range(1), "n_w": NON_NEGATIVE, "tau": POSITIVE,
                            "seed": NON_NEGATIVE})

    def without_effect(self) -> dict[str, str]:
        out = super().without_effect()
        if self.n_w == 0:
            for name in ("geometry", "gamma", "gram_file", "prototype_anchors"):
                out.setdefault(name, "with {n_w} = 0 (no prototypes in the batch)")
        return out

    def class_counts(self) -> torch.Tensor:
        """``[k]`` the counts k, k - 1, ..., 1 that the minority geometry reads (the batch's labels are random)."""
        import torch

        return torch.arange(self.k, 0, -1)

    def g_star(self, counts: torch.Tensor | None = None) -> torch.Tensor:
        """``[k, k]`` the validated G_* of the check."""
        return super().g_star(self.class_counts() if counts is None else counts)
