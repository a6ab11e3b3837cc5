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

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ufm.collapse_config import (BATCHINGS, MAX_SEEDS, CollapseCell, CollapseMapConfig,  # noqa: F401
                                 map_cells)  # (re-exported: the cells of a map are configs, torch-free)
from ufm.batching import epoch_batches
from ufm.geometry import make_gram
from ufm.imbalance import labels_from_counts
from ufm.solver import solve
from ufm.solver.certificate import gram_certificate
from ufm.solver.full import full_program, within_class_min
from ufm.solver.lowrank_full import default_rank, lift_collapsed, prototype_rows, solve_full_bm
from ufm.grid import Point, config_hash

__all__ = ["VERDICTS", "CollapseCell", "CollapseMapConfig", "collapse_cell", "cell_batches", "lifted_certificate", "map_cells",
           "collapse_map", "run_collapse_map", "cell_point", "ROUNDOFF"]

VERDICTS = ("collapse optimal", "not optimal", "undecided", "error")
ROUNDOFF = 1e-11  # relative round-off allowed when comparing two float64 objectives (sums of ~N^2 terms)


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
