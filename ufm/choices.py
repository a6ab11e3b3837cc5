"""The names and rules the configs check when they are built, torch-free.

A config is validated before anything is computed (``__post_init__``), and the ``ufm`` command refuses bad input
before it imports torch, cvxpy or matplotlib (a refusal answers in a fraction of a second).  So the names a config
field may take (class-count profiles, batchings, losses, solvers, heads, augmentations, figures) and the rules on
numbers of copies, on class counts and on the search for the fewest copies live here; the modules that compute with
them import them from here (``ufm.batching.SCHEMES``, ``ufm.losses.check_copies``, ... stay importable where they
were).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ufm.errors import FieldError, literal

__all__ = ["PROFILES", "SCHEMES", "SOLVERS", "HEADS", "AUGMENTATIONS", "LOSS_OPTIONS", "FIGURES", "MAX_SOLVER_N_W",
           "MAX_CLASSES", "MAX_CLASS_COUNT", "JSON_MATRIX_MAX_K", "check_copies", "check_solver_n_w", "count_list",
           "check_figure_names", "minority_classes", "check_profile", "check_copies_search", "check_comparable"]

PROFILES = ("balanced", "step", "long-tail")  # class-count profiles (ufm.imbalance)
SCHEMES = ("full", "shuffle", "balanced", "binding")  # batchings of an epoch (ufm.batching)
SOLVERS = ("CLARABEL", "SCS", "BM")  # convex solvers (ufm.solver)
HEADS = ("linear", "relu")  # embedding heads of the network (ufm.deep.model)
AUGMENTATIONS = ("crop-flip", "supcon", "none")  # image augmentations (ufm.deep.augment)
# the batch losses (ufm.losses.LOSSES) and the options beyond tau each one has: the others have no effect
LOSS_OPTIONS: dict[str, tuple[str, ...]] = {
    "scl": ("n_w", "prototype_anchors"),
    "class-averaging": ("n_w",),
    "ce": (),
    "limit": ("prototype_anchors",),
    "prop1": (),
}
# the registered figures of ``ufm figures`` (ufm.figures.FIGURES draws them), each with its description
FIGURES: dict[str, str] = {
    "ufm-fig1-heatmaps": "UFM Figure 1: G_M of SCL, class-averaging + binding, SCL with n_w = 100",
    "ufm-distance-vs-nw": "UFM: distance to G_* against n_w for R = 1, 10, 100",
    "prop1-gaps": "Proposition 1: gradient gap of the published and the derived limit against n_w",
    "scl-vs-ce": "G_M of SCL with prototypes against CE with the same fixed classifier, over n_w and tau",
    "solver-vs-simulator": "distance to G_* against n_w: convex solver vs simulator (full batch)",
    "maps-distance": "distance of the optimal G_M to the ETF over (R, n_w) and (tau, n_w), both anchor conventions",
    "collapse-map": "where collapse stops being optimal over (R, n_w): certified verdicts, STEP and long-tail, "
                    "both anchor conventions",
    "maps-targets": "distance maps over (R, n_w) for k = 10, 100, STEP and long-tail, ETF and orthogonal targets",
    "maps-batching": "distance against n_w: certified optimum, simulator full batch, reshuffled and bound batches",
}
MAX_SOLVER_N_W = 1e9  # with prototype anchors: see check_solver_n_w
MAX_CLASSES = 1_000_000
JSON_MATRIX_MAX_K = 100  # matrices go into JSON summaries as lists up to this order (ufm.solver.result)
MAX_CLASS_COUNT = 10**12  # samples in one class (far beyond any memory; keeps int64 sums exact)


def check_copies(n_w: Any, prototype_anchors: bool, name: str = "n_w") -> None:
    """The one rule for the number of prototype copies (used by the losses, the solver and the configs):
    n_w >= 0, and with prototype anchors n_w is 0 or >= 1.  Each anchor copy of w_a has n_w - 1 other copies
    of itself as positives, a negative count for 0 < n_w < 1 (no meaning there: the loss would have to clamp
    it); without prototype anchors n_w is only a weight and any n_w >= 0 is fine.  ``n_w`` may be a number, a
    sequence of numbers or a tensor (every value is checked)."""
    if hasattr(n_w, "detach"):  # a torch tensor (not imported here)
        values = n_w.detach().reshape(-1).tolist()
    else:
        values = list(n_w) if isinstance(n_w, (list, tuple)) else [n_w]
    for v in values:
        if prototype_anchors and 0 < float(v) < 1:
            raise FieldError(f"with prototype anchors {{{name}}} must be 0 or >= 1, got {float(v):g}: an anchor copy of "
                             f"a prototype would have n_w - 1 < 0 copies of itself as positives; use {{{name}}} >= 1, "
                             "or {prototype_anchors=False} for a weight below one copy")


def check_solver_n_w(n_w: float, prototype_anchors: bool, name: str = "n_w") -> None:
    """Refuse (FieldError) copies beyond what float64 resolves: with prototype anchors the class means move the
    objective by about (c / n_w)^2 of its size (c: a class count), below its round-off as n_w grows.  Measured
    against 60-digit references (``benchmarks/solver_references.py``, docs/performance): the default path is
    certified (entries within 1e-6, bound covering the true error) up to this limit at tau 0.1 to 1 in the cases
    tried; before the factor polish's round-off floor was made per coordinate, at 1e12 every path gave entries off by
    1e-3 to 1.  Batch anchors only keep entries to 1e-13 at any n_w measured."""
    if prototype_anchors and n_w > MAX_SOLVER_N_W:
        raise FieldError(f"{{{name}}} = {n_w:g} is beyond what the float64 solvers resolve with prototype anchors "
                         f"(the class means move the objective by ~(count / n_w)^2 of its size, under its round-off); "
                         f"use {{{name}}} <= {MAX_SOLVER_N_W:g}, or the exact n_w -> infinity limit "
                         "(ufm.losses.limit_loss; ufm verify-prop1)")


def count_list(spec: str) -> list[int]:
    """Class counts from text: ``"5000x5,500x5"`` (count x number of classes) or ``"50,50,5"``
    (:func:`ufm.imbalance.parse_counts` gives them as a tensor)."""
    counts: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        count, _, times = part.partition("x")
        try:
            value, repeat = int(count), int(times) if times else 1
        except ValueError:
            raise FieldError(f"cannot read {{counts}} {literal(repr(spec))}: write class counts as e.g. 5000x5,500x5 or 50,50,5"
                             ) from None
        if value < 1 or repeat < 1:
            raise FieldError(f"{{counts}} {literal(repr(spec))}: class counts and repeats must be >= 1")
        if value > MAX_CLASS_COUNT:
            raise FieldError(f"{{counts}} {literal(repr(spec))} asks for more than {MAX_CLASS_COUNT:.0e} samples in a class; give "
                             "fewer")
        if repeat > MAX_CLASSES or len(counts) + repeat > MAX_CLASSES:
            raise FieldError(f"{{counts}} {literal(repr(spec))} asks for more than {MAX_CLASSES} classes; give fewer")
        counts += [value] * repeat
    if len(counts) < 2:
        raise FieldError(f"{{counts}} needs at least 2 classes, got {literal(repr(spec))}")
    return counts


def check_figure_names(names: Sequence[str]) -> None:
    """Refuse names that are not registered figures (:data:`FIGURES`)."""
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise FieldError(f"unknown figures {literal(unknown)} ({{name}}); registered: {', '.join(FIGURES)}")


def minority_classes(k: int, minority_fraction: float = 0.5) -> int:
    """floor(rho k): how many of k STEP classes are minorities (the last ones)."""
    return math.floor(minority_fraction * k + 1e-9)


def check_profile(profile: str, k: int, n: int, ratio: float, minority_fraction: float = 0.5) -> None:
    """Refuse (FieldError) a class-count profile whose counts do not exist (:func:`ufm.imbalance.class_counts` computes
    them): an unknown profile, STEP minorities of n // R = 0 samples or none at all, a long tail whose rarest class
    floor(n / R) is empty.  Only the profile's own rules: k, n and R are checked as the config's fields."""
    if profile not in PROFILES:
        raise FieldError(f"unknown imbalance {{profile}} {literal(repr(profile))}; choose one of {', '.join(PROFILES)}")
    if profile == "step":
        if not 0 <= minority_fraction <= 1:
            raise FieldError(f"the minority fraction {{minority_fraction}} must lie in [0, 1], got {minority_fraction}")
        if int(n // ratio) < 1:
            raise FieldError(f"minority classes would have n // R = {n} // {ratio:g} = 0 samples; increase {{n_major}} or "
                             "lower {ratio}")
        if k < 2 and ratio > 1:
            raise FieldError(f"{{k}} must be >= 2 for step counts (majority and minority classes), got {k}")
        if minority_classes(k, minority_fraction) == 0 and ratio > 1:
            raise FieldError(f"{{minority_fraction}} = {minority_fraction:g} of k = {k} classes gives floor(rho k) = 0 "
                             f"minority classes: the counts would be balanced and {{ratio}} would do nothing; use "
                             f"{{minority_fraction}} >= {1 / k:.4g} (1/k), or {{profile=balanced}}")
    if profile == "long-tail" and k > 1:
        rarest = math.floor(n * ratio ** -1.0 + 1e-9)
        if rarest < 1:
            raise FieldError(f"the rarest class would get {rarest} samples; increase {{n_major}} or lower {{ratio}}")


def check_copies_search(target_distance: float, max_n_w: float, rel_tol: float, solver: str,
                        prototype_anchors: bool) -> None:
    """The options of the search for the fewest copies (:func:`ufm.copies.minimal_copies`)."""
    if solver not in (*SOLVERS, "auto"):
        raise FieldError(f"{{solver}} {literal(repr(solver))} is not one of {', '.join(sorted((*SOLVERS, 'auto'), key=str.lower))}")
    if not (math.isfinite(target_distance) and target_distance >= 0):
        raise FieldError(f"{{target_distance}} must be a finite number >= 0, got {target_distance}")
    if not (math.isfinite(max_n_w) and max_n_w > 0):
        raise FieldError(f"{{max_n_w}} must be a finite number > 0, got {max_n_w}")
    if not (0 < rel_tol < 1):
        raise FieldError(f"{{rel_tol}} must lie in (0, 1), got {rel_tol}")
    if prototype_anchors and max_n_w < 1:
        raise FieldError(f"{{max_n_w}} must be >= 1 with prototype anchors (fewer than one copy is not a count), got "
                         f"{max_n_w}")
    check_solver_n_w(max_n_w, prototype_anchors, "max_n_w")


def check_comparable(loss: str, relu: bool, n_ws, prototype_anchors: bool | None) -> None:
    """Refuse (FieldError) a simulation the convex solver cannot be compared with (`ufm agree`): the solver covers
    SCL without ReLU, and copies up to :data:`MAX_SOLVER_N_W` with prototype anchors (None: anchors)."""
    if loss != "scl" or relu:
        raise FieldError("the solver covers SCL without ReLU; use {loss=scl} and {relu=False}")
    for n_w in n_ws or ():
        check_solver_n_w(float(n_w), prototype_anchors is not False)
