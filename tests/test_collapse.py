"""Is collapse optimal? (ufm.collapse): verdicts on cases with known answers, the lifted certificate, executors."""

import json

import numpy as np
import pytest

from ufm.collapse import (CollapseCell, cell_batches, collapse_cell, collapse_map, lifted_certificate, map_cells,
                          run_collapse_map)
from ufm.executors import ExecutorConfig
from ufm.geometry import etf_gram
from ufm.solver import solve
from ufm.solver.full import full_objective

STEP_50 = (50,) * 5 + (5,) * 5  # N = 275, R = 10


def test_balanced_counts_collapse_certified_at_n_w_0():
    r = collapse_cell(CollapseCell((6, 6, 6, 6), 0.5, 0.0))
    assert r["verdict"] == "collapse optimal"
    assert r["collapse_gap"] <= 1e-9 * r["lifted"] and r["gain_lower"] == 0
    assert r["lifted_dual_min_eigenvalue"] > -1e-9  # the lifted dual is PSD: the KKT point of the N x N problem
    assert r["min_cos"] > 1 - 1e-6  # the uncollapsed solve collapses too


def test_the_refuted_case_stays_refuted():
    # README: full batch, 50x5,5x5, n_w = 1, tau = 0.1: an uncollapsed point beats every collapsed one
    r = collapse_cell(CollapseCell(STEP_50, 0.1, 1.0))
    assert r["verdict"] == "not optimal"
    assert r["gain_lower"] > 1e-5 and r["full"] < r["collapsed"] - r["collapsed_gap"]
    assert r["min_cos_minority"] == pytest.approx(0.998085, abs=2e-5) and r["min_cos_majority"] > 1 - 1e-6
    assert r["lifted_dual_min_eigenvalue"] < -1e-4  # the lifted collapsed point is not a KKT point


def test_the_lifted_certificate_certifies_collapse_where_the_full_gap_is_loose():
    # n_w = 100: the uncollapsed BM's own certified gap is about 6e-8 (L-BFGS stalls on the flat spread), the
    # lifted collapsed optimum is certified within round-off in the N x N problem
    r = collapse_cell(CollapseCell(STEP_50, 0.1, 100.0))
    assert r["verdict"] == "collapse optimal"
    assert r["lifted_gap"] < 1e-10 * r["lifted"] and r["full_gap"] > 1000 * r["lifted_gap"]
    assert r["lifted"] == pytest.approx(r["collapsed"], rel=1e-12)


def test_the_lift_is_the_collapsed_point_in_the_full_problem():
    counts, tau, n_w = (5, 5, 2), 0.3, 2.0
    cell = CollapseCell(counts, tau, n_w, prototype_anchors=False)
    labels, batches, comp = cell_batches(cell)
    g = etf_gram(3).numpy()
    col = solve(comp, tau, g, n_w, False)
    lifted = lifted_certificate(labels, batches, 3, col.gram, col.cross, g, n_w, False, tau)
    rows = lifted["rows"]
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-15)
    gram = rows @ rows.T
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(gram, onehot @ col.gram @ onehot.T, atol=1e-8)  # the collapsed Gram, lifted
    # independent evaluation: the full objective of the lifted Gram (ufm.solver.full) is the collapsed objective
    value = full_objective(onehot @ col.gram @ onehot.T, onehot @ col.cross, labels, batches, tau, g, n_w, False)
    assert lifted["objective"] == pytest.approx(value, rel=1e-9)
    assert lifted["objective"] == pytest.approx(col.objective, rel=1e-9)


def test_reshuffled_batches_one_epoch():
    # one reshuffled epoch of batches of 6 (counts 4,4,2,2), tau 0.3, n_w 2: collapse is not optimal there
    # (tests/solver/test_solver_full_bm.py: within-class cosines about 0.9995 by the interior point)
    r = collapse_cell(CollapseCell((4, 4, 2, 2), 0.3, 2.0, batching="shuffle", batch_size=6))
    assert r["verdict"] == "not optimal" and r["min_cos"] < 0.9999


def test_local_executor_equals_inline(tmp_path):
    cells = map_cells(profiles=("step",), ratios=(2.0,), taus=(0.5,), n_ws=(0.0, 1.0), anchors=(True,), k=3,
                      n_major=4)
    assert [c.counts for c in cells] == [(4, 4, 2)] * 2  # STEP k = 3: one minority class (half, rounded down)
    inline = collapse_map(cells)
    local = run_collapse_map(tmp_path / "m", cells, ExecutorConfig(executor="local", workers=1))["rows"]
    for a, b in zip(inline, local):
        assert a["verdict"] == b["verdict"]
        for key in ("collapsed", "lifted", "lifted_gap", "full", "full_gap", "collapse_gap"):
            assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-14), key


def test_map_cells_and_bad_input():
    cells = map_cells(profiles=("step", "long-tail"), ratios=(10.0,), taus=(0.1,), n_ws=(0.0, 1.0), k=4, n_major=20)
    assert len(cells) == 2 * (1 + 2)  # one cell at n_w = 0 (anchors do not matter), both conventions at n_w = 1
    assert cells[0].counts == (20, 20, 2, 2) and cells[3].counts[0] == 20 and cells[3].counts[-1] == 2
    with pytest.raises(ValueError, match="ratio repeats the value 2"):
        map_cells(ratios=(2.0, 2.0))
    with pytest.raises(ValueError, match="batch_size"):
        CollapseCell((4, 4), 0.1, 1.0, batching="shuffle")
    with pytest.raises(ValueError, match="batch_seed apply to batching='shuffle' only"):
        CollapseCell((4, 4), 0.1, 1.0, batch_seed=3)
    with pytest.raises(ValueError, match="minority_fraction applies to the step profile"):
        map_cells(profiles=("long-tail",), minority_fraction=0.3)
    with pytest.raises(ValueError, match="target"):
        CollapseCell((4, 4), 0.1, 1.0, target="simplex")


def test_an_ill_posed_cell_is_reported_not_fatal():
    # n_w = 0 and a class of one sample: nothing determines that class's mean; the other cells are kept
    rows = collapse_map([CollapseCell((3, 3, 1), 0.5, 0.0), CollapseCell((3, 3, 1), 0.5, 1.0)])
    assert rows[0]["verdict"] == "error" and "no positive pair" in rows[0]["error"]
    assert rows[1]["verdict"] == "collapse optimal"


def test_fractional_copies_make_batch_anchor_cells_only():
    cells = map_cells(profiles=("step",), ratios=(2.0,), taus=(0.5,), n_ws=(0.0, 0.5, 1.0), k=3, n_major=4)
    assert [(c.n_w, c.prototype_anchors) for c in cells] == [(0.0, True), (0.5, False), (1.0, True), (1.0, False)]
    with pytest.raises(ValueError, match="with prototype anchors n_w must be 0 or >= 1"):
        map_cells(profiles=("step",), ratios=(2.0,), taus=(0.5,), n_ws=(0.5,), anchors=(True,), k=3, n_major=4)


def test_balanced_cells_are_made_once_and_a_ratio_without_effect_is_refused():
    """Balanced counts have no ratio: one cell per (tau, n_w, anchors), labelled R = 1, however many ratios the
    other profiles use (was: an identical balanced cell per ratio, labelled R = 2, R = 10); balanced counts only
    with a ratio other than 1 are refused (was: silently ignored)."""
    from ufm.collapse import map_cells

    cells = map_cells(("balanced", "step"), (2.0, 4.0), (0.5,), (1.0,), (False,), k=4, n_major=4)
    assert [(c.profile, c.ratio) for c in cells] == [("balanced", 1.0), ("step", 2.0), ("step", 4.0)]
    assert len({c.counts for c in cells}) == 3
    with pytest.raises(ValueError, match="no effect with balanced counts only"):
        map_cells(("balanced",), (2.0,), (0.5,), (1.0,), (False,), k=4, n_major=4)


def test_a_collapse_map_resumes_and_gathers(tmp_path):
    # a collapse map is a grid of the engine: a killed map continues where it stopped, and ufm gather reads it
    from ufm.collapse import run_collapse_map
    from ufm.engine import gather

    cells = [CollapseCell((3, 3, 1), 0.5, 0.0), CollapseCell((3, 3, 1), 0.5, 1.0), CollapseCell((3, 3, 1), 0.5, 1.0,
                                                                                                 False)]
    calls = []

    def stop_after_first(name: str, ok: bool) -> None:
        calls.append(name)
        raise KeyboardInterrupt  # as Ctrl-C after the first cell finished

    folder = tmp_path / "m"
    with pytest.raises(KeyboardInterrupt):
        run_collapse_map(folder, cells, done=stop_after_first)
    assert len(calls) == 1 and len(list((folder / "points").glob("*/cell.json"))) == 1
    report = gather(folder)  # the table of what finished
    assert report["finished"] == 1 and len(report["missing"]) == 2
    report = run_collapse_map(folder, cells)
    assert report["skipped"] == 1 and report["ran"] == 2 and report["finished"] == 3
    fresh = collapse_map(cells)
    assert [r["verdict"] for r in report["rows"]] == [r["verdict"] for r in fresh] == ["error", "collapse optimal",
                                                                                     "collapse optimal"]
    for a, b in zip(report["rows"], fresh):
        assert a.get("full") == b.get("full") and a["name"] == b["name"]
    saved = json.loads((folder / "collapse_map.json").read_text())
    assert [r["name"] for r in saved] == [c.name for c in cells]
    with open(folder / "table.csv", newline="") as f:
        import csv

        table = list(csv.DictReader(f))
    assert [r["verdict"] for r in table] == [r["verdict"] for r in fresh]
    assert [r["anchors"] for r in table] == ["prototype", "prototype", "batch"]
    # another set of cells in the same folder: refused, unless --overwrite (then the old cells are gone)
    with pytest.raises(ValueError, match=r"holds a collapse-map folder with other settings: 2 point\(s\) there that this run does not ask for \(first: ratio=0, tau=0.5, n_w=1, anchors=prototype\)"):
        run_collapse_map(folder, cells[:1])
    report = run_collapse_map(folder, cells[:1], overwrite=True)
    assert report["total"] == 1 and len(list((folder / "points").iterdir())) == 1
