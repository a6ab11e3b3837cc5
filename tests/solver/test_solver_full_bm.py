"""The full (uncollapsed) problem by Burer-Monteiro with a certificate (ufm.solver.solve_full_bm)."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ufm.batching import epoch_batches, epoch_compositions
from ufm.cli.main import app
from ufm.geometry import etf_gram
from ufm.imbalance import labels_from_counts
from ufm.losses import scl_loss
from ufm.solver import solve, solve_collapsed, solve_full, solve_full_bm


def _batches(counts, size, batching, seed=0):
    labels = labels_from_counts(counts)
    b = epoch_batches(labels, size, batching, torch.Generator().manual_seed(seed), len(counts))
    return labels.numpy(), [row[keep].numpy() for row, keep in zip(b.index, b.mask)]


def _features(result, g_star, n):
    """Unit sample rows h [N, d] and prototype rows W [k, d] realizing the solution's joint Gram."""
    joint = result.gram if result.cross is None else np.block([[result.gram, result.cross], [result.cross.T, g_star]])
    lam, vecs = np.linalg.eigh(joint)
    rows = torch.from_numpy(vecs * np.sqrt(np.clip(lam, 0, None)))
    return rows[:n], (rows[n:] if result.cross is not None else None)


def test_matches_the_interior_point_full_solve_and_the_exact_scl_loss():
    # reshuffled batches of 6 with prototypes: collapse is not optimal here (within-class cosines 0.9995)
    labels, index = _batches([4, 4, 2, 2], 6, "shuffle")
    g = etf_gram(4).numpy()
    ip = solve_full(labels, index, 0.3, g, 2)
    bm = solve_full_bm(labels, index, 0.3, g, 2)
    assert bm.status == "optimal" and bm.certified_gap < 1e-6
    assert bm.objective == pytest.approx(ip.objective, rel=1e-7)
    assert bm.objective <= ip.objective + 1e-9  # the interior point is no better than the certified BM optimum
    np.testing.assert_allclose(bm.class_means, ip.class_means, atol=1e-4)
    np.testing.assert_allclose(bm.within_class_min, ip.within_class_min, atol=1e-4)
    assert bm.min_within_class_cosine < 0.9999
    # independent check: the exact SCL loss (ufm.losses) on features realizing the Gram, summed over the batches
    h, w = _features(bm, g, len(labels))
    y = torch.from_numpy(labels)
    loss = sum(float(scl_loss(h[b], y[b], w, 2, 0.3, require_unit_norm=False)) for b in index)
    assert loss == pytest.approx(bm.objective, rel=1e-10)


def test_collapse_is_certified_where_it_is_optimal():
    # full batch, balanced, tau 0.5, n_w = 0: the certified optimum collapses onto the simplex ETF
    counts = [5, 5, 5]
    labels, index = _batches(counts, 15, "full")
    bm = solve_full_bm(labels, index, 0.5, seeds=(0, 1))
    collapsed = solve(np.array([counts]), 0.5)
    assert bm.status == "optimal" and bm.relative_gap < 1e-8
    assert bm.min_within_class_cosine > 1 - 1e-6
    np.testing.assert_allclose(bm.class_means, etf_gram(3).numpy(), atol=1e-5)
    # no uncollapsed point beats the collapsed optimum by more than the certified gap
    assert collapsed.objective - bm.objective <= bm.certified_gap + collapsed.certified_gap
    assert abs(collapsed.objective - bm.objective) < 1e-7 * collapsed.objective


def test_reproduces_the_binding_case_where_collapse_is_not_optimal():
    # README: one epoch of batch binding (counts 4,4,2,2, batches of 6 plus the bound examples), tau 0.5,
    # n_w = 0: the certified optimum has within-class cosines down to 0.945, 0.8% below the collapsed optimum
    labels, index = _batches([4, 4, 2, 2], 6, "binding")
    bm = solve_full_bm(labels, index, 0.5)
    collapsed = solve_collapsed(epoch_compositions([4, 4, 2, 2], 6, "binding").numpy(), 0.5)
    assert bm.status == "optimal" and bm.relative_gap < 1e-7
    assert 1 - bm.objective / collapsed.objective == pytest.approx(0.0079, abs=2e-4)
    assert collapsed.objective - bm.objective > 100 * (bm.certified_gap + collapsed.certified_gap)  # refuted
    assert bm.min_within_class_cosine == pytest.approx(0.945, abs=5e-4)


def test_bad_input_and_the_cli(tmp_path):
    labels, index = _batches([4, 4, 2, 2], 12, "full")
    with pytest.raises(ValueError, match="rank must be at least"):
        solve_full_bm(labels, index, 0.5, etf_gram(4).numpy(), 1, rank=2)
    with pytest.raises(ValueError, match="at least one seed"):
        solve_full_bm(labels, index, 0.5, seeds=())
    result = CliRunner().invoke(app, ["solve", "--counts", "4x2,2x2", "--tau", "0.5", "--full", "--solver", "BM",
                                      "--batching", "binding", "--batch-size", "6", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["solver"] == "BM" and data["method"] == "full" and len(data["gram"]) == 4
    assert data["min_within_class_cosine"] == pytest.approx(0.945, abs=5e-4)
    assert data["certified_gap"] < 1e-6


def test_minimize_unit_rows_the_shared_lbfgs_routine():
    # known minimum: ||sum_i u_i||^2 over unit rows is 0 (n >= 2 rows can cancel), and the rows stay unit
    from ufm.solver.lowrank import minimize_unit_rows

    start = torch.ones(5, 3, dtype=torch.float64) + 0.1 * torch.eye(5, 3, dtype=torch.float64)
    solutions, iterations = minimize_unit_rows(lambda u: (u.sum(0) ** 2).sum(), 5, 3, (0, 1), 200, starts=[start])
    assert len(solutions) == 3 and iterations > 0  # the given start first, then one per seed
    for value, rows in solutions:
        assert value < 1e-12
        np.testing.assert_allclose(rows.norm(dim=1).numpy(), 1, atol=1e-14)
    with pytest.raises(ValueError, match="at least one seed or start"):
        minimize_unit_rows(lambda u: u.sum(), 2, 2, (), 10)


def test_accuracy_estimates_against_the_exact_optimum():
    # full batch 5,5,3, tau 0.5, n_w 1: collapse is optimal (certified by the lifted certificate, ufm.collapse),
    # so the exact optimum is the collapsed one lifted to N samples: the BM objective is within its certified
    # gap of it and its Gram entries within (a small multiple of) the restart estimate entry_accuracy
    from ufm.collapse import lifted_certificate

    counts = [5, 5, 3]
    labels, index = _batches(counts, 13, "full")
    g = etf_gram(3).numpy()
    bm = solve_full_bm(labels, index, 0.5, g, 1.0)
    col = solve(np.array([counts]), 0.5, g, 1.0)
    lifted = lifted_certificate(labels, index, 3, col.gram, col.cross, g, 1.0, True, 0.5)
    assert lifted["certified_gap"] < 1e-10 * lifted["objective"]  # the exact optimum, to round-off
    exact = lifted["objective"] - lifted["certified_gap"]
    assert exact - 1e-12 <= bm.objective <= exact + bm.certified_gap + lifted["certified_gap"]
    onehot = np.eye(3)[labels]
    error = np.abs(bm.gram - onehot @ col.gram @ onehot.T).max()
    assert bm.accuracy_source == "restarts" and bm.entry_accuracy < 1e-6
    assert error <= 10 * bm.entry_accuracy + 1e-8


def test_full_bm_checks_its_size_before_solving():
    import numpy as np

    from ufm.solver import solve_full_bm

    labels = np.repeat(np.arange(2), 50)
    with pytest.raises(ValueError, match="full N x N Burer-Monteiro"):
        solve_full_bm(labels, [np.arange(100)], 0.5, max_memory_gb=1e-6)
