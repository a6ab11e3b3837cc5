"""The experiment specification of a collapsed problem, validated once: class counts, tau, prototypes (n_w copies
of a geometry G_*, the anchor convention) and the batching of one epoch.

:class:`ProblemSpec` is read by ``ufm solve``, ``ufm solve-sweep``, ``ufm copies`` and ``ufm design-prototypes``,
whose flags are generated from its fields (``cli/_config.py``); :class:`SolveConfig` adds the solver's own options.
``without_effect()`` lists the fields that do nothing in a given spec (the CLI refuses them when typed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ufm._config import NON_NEGATIVE, POSITIVE, UNIT, Range, check_choices, check_gram_source, check_values, from_dict
from ufm._config import option as _opt

__all__ = ["ProblemSpec", "SolveConfig"]

GEOMETRIES = ("etf", "orthogonal", "minority")


@dataclass(frozen=True)
class ProblemSpec:
    """Class counts, batching, tau and n_w copies of prototypes with Gram G_* (collapsed features)."""

    counts: str | None = _opt(None, "class counts, e.g. 50x5,5x5 (instead of k / profile / n_major / ratio)")
    k: int = _opt(10, "number of classes")
    profile: str = _opt("step", "class counts: balanced, step or long-tail")
    n_major: int = _opt(50, "samples in each majority class")
    ratio: float = _opt(10.0, "imbalance ratio R (majority / minority count)")
    minority_fraction: float = _opt(0.5, "fraction rho of minority classes (step profile)")
    tau: float = _opt(0.1, "temperature")
    n_w: float = _opt(0.0, "copies of each prototype per batch")
    geometry: str = _opt("etf", "prototype Gram G_*: etf, orthogonal or minority")
    gamma: float = _opt(1.0, "strength of the minority geometry")
    gram_file: str | None = _opt(None, "a k x k G_* (.npy/.csv/.txt) instead of --geometry")
    prototype_anchors: bool = _opt(True, "prototype copies are anchors too")
    batching: str = _opt("full", "full, or the batch-set of one seeded epoch: shuffle, balanced, binding")
    batch_size: int = _opt(32, "batch size when batching is not full")
    seed: int = _opt(0, "seed of the epoch whose batch-set is solved")

    def __post_init__(self) -> None:
        from ufm.batching import SCHEMES
        from ufm.imbalance import PROFILES

        check_choices(self, {"batching": SCHEMES, "profile": PROFILES, "geometry": GEOMETRIES})
        check_values(self, {"k": Range(2), "n_major": Range(1), "ratio": Range(1), "minority_fraction": UNIT,
                            "tau": POSITIVE, "n_w": NON_NEGATIVE, "gamma": NON_NEGATIVE, "batch_size": Range(1),
                            "seed": NON_NEGATIVE})
        if self.counts is not None and not self.counts.strip():
            raise ValueError("counts is empty; give class counts such as 50x5,5x5, or leave it unset for the profile")
        check_gram_source(self.gram_file, self.geometry)

    def without_effect(self) -> dict[str, str]:
        """The fields that do nothing in this spec, each with the reason (the CLI refuses them when typed)."""
        out = {}
        if self.counts is not None:
            for name in ("k", "profile", "n_major", "ratio", "minority_fraction"):
                out[name] = "when counts are given"
        if self.profile != "step":
            out.setdefault("minority_fraction", f"with profile {self.profile} (step only)")
        if self.profile == "balanced":
            out.setdefault("ratio", "with balanced counts")
        if self.gram_file is not None:
            out["geometry"] = "when gram_file gives G_*"
        if self.geometry != "minority" or self.gram_file is not None:
            out["gamma"] = "without the minority geometry"
        if self.batching == "full":
            out["batch_size"] = "with full batching (one batch of all samples)"
            out["seed"] = "with full batching (nothing is drawn)"
        return out

    def class_counts(self) -> torch.Tensor:
        """``[k]`` class counts (from ``counts`` or the profile)."""
        from ufm.imbalance import class_counts, parse_counts

        if self.counts is not None:
            return parse_counts(self.counts)
        return class_counts(self.profile, self.k, self.n_major, self.ratio, self.minority_fraction)

    def compositions(self, counts: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, k]`` class counts of each batch of the epoch (one row for full batch)."""
        from ufm.batching import epoch_compositions

        n = self.class_counts() if counts is None else counts
        return n.unsqueeze(0) if self.batching == "full" else epoch_compositions(n, self.batch_size, self.batching,
                                                                                 self.seed)

    def g_star(self, counts: torch.Tensor | None = None) -> torch.Tensor:
        """``[k, k]`` the validated target Gram G_* (from ``gram_file`` or ``geometry``), matching the classes."""
        from ufm.geometry import check_gram, load_gram, make_gram

        n = self.class_counts() if counts is None else counts
        g = check_gram(load_gram(self.gram_file) if self.gram_file else make_gram(self.geometry, len(n), n, self.gamma))
        if len(g) != len(n):
            raise ValueError(f"G_* is {len(g)} x {len(g)} but there are {len(n)} classes; make them match")
        return g

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        return from_dict(cls, data)


@dataclass(frozen=True)
class SolveConfig(ProblemSpec):
    """One convex solve: a :class:`ProblemSpec` and the solver's options (``ufm solve``, ``ufm solve-sweep``)."""

    solver: str = _opt("auto", "auto, CLARABEL, SCS or BM")
    reduce: bool = _opt(True, "solve the symmetry-reduced problem when equal-count classes allow it")
    relu: bool = _opt(False, "non-negative features (doubly non-negative relaxation)")

    def __post_init__(self) -> None:
        from ufm.solver import SOLVERS

        super().__post_init__()
        check_choices(self, {"solver": ("auto", *SOLVERS)})

    def without_effect(self) -> dict[str, str]:
        out = super().without_effect()
        if self.n_w == 0:
            for name in ("geometry", "gamma", "gram_file", "prototype_anchors"):
                out.setdefault(name, "with n_w = 0 (no prototypes)")
        return out
