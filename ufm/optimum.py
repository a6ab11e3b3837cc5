"""The certified optimum of one :class:`ufm.spec.SolveConfig`, as ``ufm solve`` and every ``ufm solve-sweep`` point
write it: one ``solution.json`` schema.

- collapsed (default): the k x k class-mean Gram over the batch compositions (:func:`ufm.solver.solve`);
- ``full=True``: every sample its own row, N x N (:func:`ufm.solver.solve_full`, or :func:`solve_full_bm` with
  ``solver="BM"``), over the batches of one epoch drawn with the config's seed; G_M is the Gram of the solution's
  normalized class means.

The summary holds the counts, the number of batches, tau, n_w, the solver's own summary (status, objective,
certificate), and G_M's distance to G_* (the config's target, prototypes or not), its largest angle error and the
majority / minority / across angles; the arrays hold every matrix.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ufm.errors import FieldError
from ufm.spec import SolveConfig

__all__ = ["solve_config"]


def _check_full(cfg: SolveConfig) -> None:
    if cfg.relu:
        raise FieldError("{full} does not support {relu} yet; drop one of them")
    if not cfg.reduce:
        raise FieldError("{reduce=False} has no effect with {full} (the N x N problem is never symmetry-reduced); "
                         "drop it")


def solve_config(cfg: SolveConfig, full: bool = False, max_memory_gb: float | None = None):
    """``(summary, arrays, result)``: the certified optimum of ``cfg`` (collapsed, or ``full`` N x N) with the
    schema of ``solution.json`` (see the module docstring); sizes are refused before any matrix is built."""
    from ufm.analysis import angle_errors_deg, gram_distance, group_angles
    from ufm.imbalance import labels_from_counts, minority_mask
    from ufm.solver import check_solve_size, nonnegative_prototypes, solve, solve_full, solve_full_bm
    from ufm.solver.result import JSON_MATRIX_MAX_K

    if full:
        _check_full(cfg)
    n = cfg.class_counts()
    comp = cfg.compositions(n)
    labels = labels_from_counts(n) if full else None
    check_solve_size(len(n), len(comp), cfg.n_w > 0, "dense", max_memory_gb)
    if full:
        check_solve_size(len(n), 1, cfg.n_w > 0, "full-bm" if cfg.solver == "BM" else "full", max_memory_gb,
                         samples=len(labels))
    target = cfg.g_star(n)
    g_star = target if cfg.n_w > 0 else None  # the prototypes' Gram; without copies only the measure's target
    extra: dict = {}
    arrays: dict = {}
    if cfg.relu and g_star is not None:  # ReLU features reach only non-negative prototypes: find them or refuse
        try:
            extra["nonnegative_prototypes"] = nonnegative_prototypes(g_star, len(n)).tolist()
        except ValueError as err:
            raise ValueError(f"relu: {err}") from None
        arrays["nonnegative_prototypes"] = np.array(extra["nonnegative_prototypes"])
    if full:
        from ufm.batching import epoch_batches

        gen = torch.Generator() if cfg.batching == "full" else torch.Generator().manual_seed(cfg.seed)
        batches = epoch_batches(labels, len(labels) if cfg.batching == "full" else cfg.batch_size, cfg.batching,
                                gen, len(n))
        index = [row[keep].numpy() for row, keep in zip(batches.index, batches.mask)]
        if cfg.solver == "BM":
            result = solve_full_bm(labels.numpy(), index, cfg.tau, g_star, cfg.n_w, cfg.prototype_anchors, len(n))
        else:
            result = solve_full(labels.numpy(), index, cfg.tau, g_star, cfg.n_w, cfg.prototype_anchors,
                                "CLARABEL" if cfg.solver == "auto" else cfg.solver, len(n), max_memory_gb=max_memory_gb)
        extra["min_within_class_cosine"] = result.min_within_class_cosine
        arrays.update({"sample_gram": result.gram, **({} if result.cross is None else {"sample_cross": result.cross})})
        result = replace(result, gram=result.class_means, cross=None)
    else:
        result = solve(comp.numpy(), cfg.tau, g_star, cfg.n_w, cfg.prototype_anchors, cfg.solver, cfg.reduce,
                       cfg.relu, max_memory_gb=max_memory_gb)
    _refuse_unbounded(cfg, result, full)
    gram = torch.from_numpy(np.asarray(result.gram, dtype=np.float64))
    metrics = {"distance": float(gram_distance(gram, target)),
               "max_angle_error": float(angle_errors_deg(gram, target).abs().max())}
    metrics.update({f"angle_{k}": float(v) for k, v in group_angles(gram, minority_mask(n)).items()})
    if "nonnegative_prototypes" in extra and len(n) > JSON_MATRIX_MAX_K:  # large matrices only in the arrays
        extra["nonnegative_prototypes"] = None
    summary = {"counts": n.tolist(), "batches": len(comp), "tau": cfg.tau, "n_w": cfg.n_w, **extra,
               **result.summary(), **metrics}
    arrays = {**result.arrays(), **arrays, "g_star": target.numpy()}
    return summary, arrays, result


def _refuse_unbounded(cfg, result, full: bool) -> None:
    """Raise :class:`ufm.errors.UncertifiedError` (the reason and a path that would work) for an answer without an
    entry bound or with one above :data:`ufm.solver.result.PRINT_TOL`: no geometry is written or printed."""
    from ufm.errors import UncertifiedError, literal
    from ufm.solver.result import PRINT_TOL

    why = result.unbounded(PRINT_TOL)
    if why is None:
        return
    if cfg.relu:
        fix = "drop {relu} (the ReLU relaxation is polished only on its active set)"
    elif cfg.solver != "auto":
        fix = "use {solver=auto} (the interior point, Newton-polished and certified, Burer-Monteiro where it fails)"
    elif full:
        fix = "drop {full} (the collapsed problem is certified at any size the solver accepts) or use fewer samples"
    else:
        fix = "raise {tau} (tau >= 0.1 is certified up to n_w = 1e9 in the cases tried) or lower {n_w}"
    raise UncertifiedError(f"the {result.method} solve ({result.solver}) cannot vouch for its answer: {literal(why)}; "
                           f"no geometry written; {fix}")
