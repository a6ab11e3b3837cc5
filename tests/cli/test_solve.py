"""`ufm solve`: every path (method x output) exits 0 and prints its numbers, the same fields on every path;
gram.png says when the solver could not certify G_M."""

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import ufm.plots as plots
from ufm.cli.main import app


def test_gram_figure_says_whether_g_m_is_certified(tmp_path, monkeypatch):
    drawn = []
    real = plots.gram_heatmaps
    monkeypatch.setattr(plots, "gram_heatmaps", lambda grams, titles, suptitle: drawn.append((titles, suptitle))
                        or real(grams, titles, suptitle))
    # STEP 20x2,2x2 at tau 0.1: certified; 2,2,1 at tau 0.07, n_w 100: entries bounded to ~1e-5 only (printed with
    # that bound: below the 1e-3 above which nothing is printed)
    for args, out in ((["20x2,2x2", "--tau", "0.1", "--n-w", "10"], "a"), (["2,2,1", "--tau", "0.07", "--n-w", "100"], "b")):
        result = CliRunner().invoke(app, ["solve", "--counts", *args, "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / out / "gram.png").is_file()
    (good, good_title), (loose, loose_title) = drawn
    assert good[0] == "optimal G_M (certified)" and "could not certify" not in good_title
    assert loose[0] == "G_M, NOT certified (optimal_inaccurate)" and "could not certify G_M's entries" in loose_title


runner = CliRunner()


FIELDS = ("objective", "status", "method", "solver", "iterations", "newton_iterations", "min_eigenvalue",
          "max_diag_error", "certified_gap", "relative_gap", "entry_accuracy", "accuracy_source", "note", "groups",
          "compile_s", "solve_s", "polish_s", "total_s", "gram", "cross")


CASES = {
    "interior": (["--counts", "5,4,3", "--tau", "0.5"], "interior", "newton"),
    "grouped": (["--counts", "6x2,2x2", "--tau", "0.5", "--n-w", "5"], "grouped", "newton"),
    "bm": (["--counts", "6x2,2x2", "--tau", "0.5", "--n-w", "5", "--solver", "BM"], "bm", "newton"),
    "scs": (["--counts", "5,4,3", "--tau", "0.5", "--solver", "SCS", "--no-reduce"], "interior", "newton"),
    "batch-set": (["--counts", "12x3,3x2", "--batching", "binding", "--batch-size", "8", "--n-w", "5"],
                  "interior", "newton"),
    "relu": (["--counts", "20x3,2x2", "--tau", "0.5", "--relu"], "grouped", "newton"),
    "full": (["--counts", "4x2,2x2", "--tau", "0.5", "--full"], "full", "newton"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_path_prints_the_same_fields_as_json_and_as_a_table(case, tmp_path):
    args, method, source = CASES[case]
    result = runner.invoke(app, ["solve", *args, "--out", str(tmp_path / "a"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert all(f in data for f in FIELDS), [f for f in FIELDS if f not in data]
    assert data["method"] == method and data["accuracy_source"] == source and data["status"] == "optimal"
    k = len(data["counts"])
    gram = np.array(data["gram"])
    assert gram.shape == (k, k) and np.allclose(np.diag(gram), 1, atol=1e-6)
    assert np.linalg.eigvalsh(gram).min() > -1e-6
    if source == "newton":
        assert data["entry_accuracy"] < 1e-5 and data["relative_gap"] < 1e-9
    assert json.loads((tmp_path / "a" / "solution.json").read_text())["objective"] == data["objective"]
    # the same matrices in arrays.npz as in the JSON (k <= JSON_MATRIX_MAX_K)
    arrays = np.load(tmp_path / "a" / data["arrays"])
    np.testing.assert_array_equal(arrays["gram"], gram)
    if data["cross"] is not None:
        np.testing.assert_array_equal(arrays["cross"], np.array(data["cross"]))
    if case == "full":
        n = sum(data["counts"])
        assert arrays["sample_gram"].shape == (n, n) and np.allclose(np.diag(arrays["sample_gram"]), 1)

    table = runner.invoke(app, ["solve", *args, "--out", str(tmp_path / "b")])
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    for phrase in ("optimal class-mean Gram", f"{method} (", "certified gap", "entries accurate to",
                   "min eigenvalue", "Newton", "s solve"):
        assert phrase in text, phrase
    assert f"objective {data['objective']:.10g}" in text
    first_row = re.search(r"\b0 +\d+ +\+1\.0000 +([+-]\d\.\d{4})", text)  # class 0, its count, 1, then M_01
    assert first_row and float(first_row.group(1)) == pytest.approx(gram[0, 1], abs=1e-4)


def test_k_1000_step_through_the_cli_prints_the_oracle_values(tmp_path):
    # the grouped method at k = 1000 (issue 12), as JSON and as the group table; oracle values from
    # tests/solver/test_solver_accuracy.py (mpmath): majority -0.0020036130, minority 0.0019254675, across -0.0000393210
    exact = np.array([-0.0020036129652, 0.0019254674511, -0.0000393209782])
    result = runner.invoke(app, ["solve", "--counts", "500x500,5x500", "--tau", "1", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # above JSON_MATRIX_MAX_K classes the matrices are in arrays.npz only: solution.json stays small
    assert data["gram"] is None and data["arrays"] == "arrays.npz"
    assert (tmp_path / "solution.json").stat().st_size < 20_000
    assert json.loads((tmp_path / "solution.json").read_text()) == {k: v for k, v in data.items() if k != "run_folder"}
    gram = np.load(tmp_path / "arrays.npz")["gram"]
    assert gram.shape == (1000, 1000)
    assert data["method"] == "grouped" and data["groups"] == [500, 500]
    np.testing.assert_allclose([gram[0, 1], gram[-1, -2], gram[0, -1]], exact, atol=1e-9)
    table = runner.invoke(app, ["solve", "--counts", "500x500,5x500", "--tau", "1", "--out", str(tmp_path / "table")])
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    rows = re.findall(r"\d \((\d+), (\d+)\) ([+-]\d\.\d{8}) ([+-]\d\.\d{8})", text)
    assert [(int(a), int(b)) for a, b, _, _ in rows] == [(500, 500), (500, 5)]
    printed = np.array([[float(x), float(y)] for _, _, x, y in rows])
    np.testing.assert_allclose(printed, [[exact[0], exact[2]], [exact[2], exact[1]]], atol=1e-8)


def test_relu_prototypes_must_be_non_negative(tmp_path):
    ok = tmp_path / "g.csv"
    ok.write_text("1,0.5,0.5\n0.5,1,0.5\n0.5,0.5,1\n")  # completely positive: non-negative prototypes exist
    result = runner.invoke(app, ["solve", "--counts", "20,20,2", "--tau", "0.5", "--relu", "--n-w", "5",
                                 "--gram-file", str(ok), "--out", str(tmp_path / "a"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert min(min(row) for row in data["cross"]) >= -1e-8
    w = np.array(data["nonnegative_prototypes"])  # the prototypes that realize G_* with ReLU features
    assert w.min() >= 0 and np.abs(w @ w.T - np.loadtxt(ok, delimiter=",")).max() < 1e-6
    # doubly non-negative but not completely positive (5 x 5): no W >= 0 with W W^T = G_*
    g = np.array([[1, 1, 0, 0, 1], [1, 2, 1, 0, 0], [0, 1, 2, 1, 0], [0, 0, 1, 2, 1], [1, 0, 0, 1, 6]], float)
    d = 1 / np.sqrt(np.diag(g))
    bad = tmp_path / "bad.npy"
    np.save(bad, g * d[:, None] * d[None, :])
    result = runner.invoke(app, ["solve", "--counts", "20,20,2,2,2", "--tau", "0.5", "--relu", "--n-w", "5",
                                 "--gram-file", str(bad), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "no non-negative prototypes" in result.output
    result = runner.invoke(app, ["solve", "--counts", "20x2,2x2", "--relu", "--n-w", "5", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "negative cosines" in result.output  # the default ETF


def test_full_with_the_bm_solver_prints_the_within_class_cosine(tmp_path):
    # --full --solver BM is the certified Burer-Monteiro full solve (it used to be refused)
    result = runner.invoke(app, ["solve", "--counts", "4x2,2x2", "--tau", "0.5", "--full", "--solver", "BM",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "full (BM): optimal" in text and "smallest within-class cosine 1.000000" in text


def test_fractional_copies_with_prototype_anchors_are_refused_with_one_line(tmp_path):
    result = runner.invoke(app, ["solve", "--counts", "5,3,2", "--n-w", "0.5", "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "--n-w must be 0 or >= 1" in result.output and "Traceback" not in result.output
    assert "or --anchors batch for a weight below one copy" in result.output
    ok = runner.invoke(app, ["solve", "--counts", "5,3,2", "--n-w", "0.5", "--anchors", "batch",
                             "--out", str(tmp_path / "b"), "--json"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("args,phrase", [
    (["--k", "100000", "--profile", "balanced"], "a collapsed solve with k = 100000 classes needs about"),
    (["--counts", "100000x2", "--full"], "the full N x N interior-point solve (200000 samples) needs about"),
    (["--counts", "100000x2", "--full", "--solver", "BM"], "the full N x N Burer-Monteiro solve (200000 samples)"),
    (["--k", "200", "--profile", "long-tail", "--no-reduce", "--solver", "CLARABEL", "--max-memory-gb", "4"],
     "the interior-point solve (k = 200, 1 batch(es)) needs about"),
    (["--k", "400", "--profile", "long-tail", "--solver", "BM", "--n-w", "10", "--max-memory-gb", "0.5"],
     "the Burer-Monteiro solve (k = 400, 1 batch(es)) needs about"),
])
def test_solves_too_large_for_memory_are_refused_up_front_with_one_line(args, phrase, tmp_path):
    import time

    start = time.perf_counter()
    result = runner.invoke(app, ["solve", *args, "--out", str(tmp_path / "a")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert phrase in text and "--max-memory-gb" in text and "Traceback" not in text
    assert time.perf_counter() - start < 30  # refused before any solve


def test_solve_prints_json_and_writes_folder(tmp_path):
    out = tmp_path / "solve"
    result = runner.invoke(app, ["solve", "--counts", "6x2,2x2", "--tau", "0.5", "--n-w", "5", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "optimal" and data["counts"] == [6, 6, 2, 2]
    assert len(data["gram"]) == 4 and (out / "gram.png").is_file() and (out / "solution.json").is_file()
    result = runner.invoke(app, ["solve", "--k", "4", "--n-major", "6", "--ratio", "3", "--tau", "0.5", "--out", str(out), "--overwrite"])
    assert result.exit_code == 0 and "optimal class-mean Gram" in result.stdout
    result = runner.invoke(app, ["solve", "--counts", "5x3,1x2", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "never have two samples" in result.output
    result = runner.invoke(app, ["solve", "--counts", "5y3", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "cannot read --counts" in result.output


def test_solve_full_and_relu(tmp_path):
    result = runner.invoke(app, ["solve", "--counts", "4x2,2x2", "--tau", "0.5", "--full", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["min_within_class_cosine"] > 0.9999 and len(data["gram"]) == 4
    result = runner.invoke(app, ["solve", "--counts", "20x3,2x2", "--tau", "0.5", "--relu", "--out", str(tmp_path / "relu"), "--json"])
    assert result.exit_code == 0, result.output
    gram = json.loads(result.stdout)["gram"]
    assert max(abs(gram[a][b] - (a == b)) for a in range(5) for b in range(5)) < 1e-4
    # the symmetry reduction, either way, does nothing to the N x N problem: typed, it is refused
    for flag in ("--reduce", "--no-reduce"):
        result = runner.invoke(app, ["solve", "--counts", "4x2,2x2", "--full", flag, "--out", str(tmp_path / "r")])
        assert result.exit_code == 2 and f"{flag} has no effect with --full" in result.output, result.output
        assert not (tmp_path / "r").exists()


def test_an_answer_without_an_entry_bound_is_a_failure_not_a_printed_geometry(tmp_path):
    # SCS at many copies: its polish cannot start, so nothing bounds the entries (the case at n_w = 1e9 gave
    # entries off by 0.4-0.9 under the label optimal_inaccurate): exit 1, one line, the path that works, no folder
    out = tmp_path / "s"
    result = CliRunner().invoke(app, ["solve", "--counts", "2,2,1", "--tau", "0.5", "--n-w", "1e9", "--solver", "SCS",
                                      "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the grouped solve (SCS) cannot vouch"), result.output
    assert "no entry bound" in lines[0] and "--solver auto" in lines[0] and not out.exists()
    # the default path at the same setting is certified and printed
    result = CliRunner().invoke(app, ["solve", "--counts", "2,2,1", "--tau", "0.5", "--n-w", "1e9", "--json",
                                      "--out", str(out)])
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "optimal"


def test_unbounded_names_missing_and_loose_bounds():
    from dataclasses import replace

    from ufm.geometry import etf_gram
    from ufm.solver import solve
    from ufm.solver.result import PRINT_TOL

    result = solve(np.array([[3, 3, 1]]), 0.5, etf_gram(3).numpy(), 10.0)
    assert result.unbounded() is None
    assert "no entry bound" in replace(result, entry_accuracy=None).unbounded()
    assert "no entry bound" in replace(result, entry_accuracy=float("nan")).unbounded()
    assert "bounded only to 2.0e-03" in replace(result, entry_accuracy=2 * PRINT_TOL).unbounded()
