"""ufm map: cells the solver cannot certify are said so in the table, hatched in map.png and counted in its title;
a cross-check always compares two different methods."""

import json

from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.copies import SolvePoint
from ufm.maps import _cross_check
from ufm.plots import map_figure

runner = CliRunner()

# k = 4 STEP, tau 0.07: n_w = 10 is certified, n_w = 1e6 is not (optimal_inaccurate: entries bounded to 2e-6 only)
ARGS = ["map", "--k", "4", "--n-major", "20", "--ratio", "10", "--tau", "0.07", "--n-w", "10", "--n-w", "1e6",
        "--anchors", "prototype"]


def test_uncertified_cells_are_marked_and_cross_checked_by_another_method(tmp_path):
    result = CliRunner().invoke(app, [*ARGS, "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "1 of 2 cells certified; the other 1 (status optimal_inaccurate) are not" in " ".join(result.output.split())
    rows = {r["n_w"]: r for r in json.loads((tmp_path / "m" / "table.json").read_text())}
    assert rows[10.0]["status"] == "optimal" and rows[10.0]["certified"]
    assert rows[1e6]["status"] == "optimal_inaccurate" and not rows[1e6]["certified"]
    for row in rows.values():  # the check is the other method, never Burer-Monteiro against itself
        assert row["solver_method"] == "BM" and row["solver_check"] == "CLARABEL", row
        assert row["distance_spread"] == abs(row["distance"] - row["distance_check"])
    fig = map_figure(list(rows.values()))
    assert fig._suptitle.get_text().endswith("(certified in 1 of 2 cells; hatched: not certified)")
    hatched = [p for ax in fig.axes for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.endswith("?") for t in texts) and sum(t.endswith("?") for t in texts) == 1
    assert "not certified (status optimal_inaccurate)" in fig.legends[0].get_texts()[0].get_text()
    certified = map_figure([rows[10.0]])
    assert certified._suptitle.get_text().endswith("(certified: all 1 cell)") and not certified.legends


def test_a_check_by_the_same_method_is_not_reported_as_a_cross_check():
    point = SolvePoint(1.0, 0.1, "optimal", "BM", 1.0, 0.0, 0.0, None)
    same = _cross_check(point, SolvePoint(1.0, 0.1, "optimal", "BM", 1.0, 0.0, 0.0, None))
    assert same["distance_spread"] is None and "no independent check" in same["cross_check_note"]
    other = _cross_check(point, SolvePoint(1.0, 0.3, "optimal", "CLARABEL", 1.0, 0.0, 0.0, None))
    assert abs(other["distance_spread"] - 0.2) < 1e-12 and "cross_check_note" not in other
    assert _cross_check(point, None) == {}


def test_map_command(tmp_path):
    args = ["map", "--k", "4", "--n-major", "6", "--tau", "0.5", "--ratio", "1", "--ratio", "3", "--n-w", "0",
            "--n-w", "10", "--anchors", "prototype", "--out", str(tmp_path / "m")]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["finished"] == 4 and data["ran"] == 4 and (tmp_path / "m" / "map.png").is_file()
    by = {(r["ratio"], r["n_w"]): r["distance"] for r in data["rows"]}
    assert by[(1.0, 0.0)] < 1e-4 and by[(3.0, 10.0)] < by[(3.0, 0.0)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "0 cells solved, 4 already finished" in result.output, result.output
    for bad in (["--anchors", "neither"], ["--tau", "0"], ["--n-w", "1", "--n-w", "1"], ["--geometry", "minority"]):
        result = runner.invoke(app, ["map", "--k", "4", "--n-major", "6", "--out", str(tmp_path / "bad"), *bad])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, (bad, result.output)
    # balanced counts: a tau x n_w map, with or without --ratio 1; another ratio is refused, and the advice
    # (drop it), followed, runs
    small = ["map", "--profile", "balanced", "--k", "3", "--n-major", "4", "--tau", "0.5", "--tau", "1", "--n-w", "0",
             "--n-w", "10", "--anchors", "prototype"]
    result = runner.invoke(app, [*small, "--ratio", "2", "--out", str(tmp_path / "bal")])
    assert result.exit_code == 2 and "--ratio has no effect" in result.output and "drop it" in result.output
    assert not (tmp_path / "bal").exists(), result.output
    for extra, name in (([], "bal"), (["--ratio", "1"], "bal1")):
        result = runner.invoke(app, [*small, *extra, "--out", str(tmp_path / name), "--json"])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.output)["rows"]
        assert {(r["ratio"], r["tau"], r["n_w"]) for r in rows} == {(1.0, t, n) for t in (0.5, 1.0) for n in (0.0, 10.0)}
        assert max(r["distance"] for r in rows) < 1e-4  # balanced: the ETF with or without prototypes
    result = runner.invoke(app, ["map", "--k", "100", "--profile", "long-tail", "--out", str(tmp_path / "lt")])
    assert result.exit_code == 2 and "--no-cross-check" in result.output, result.output
    # no prototypes at all (n_w 0 only): no anchor panels; a typed --anchors is refused by its own name
    zero = ["map", "--k", "4", "--n-major", "6", "--tau", "0.5", "--ratio", "3", "--n-w", "0"]
    result = runner.invoke(app, [*zero, "--out", str(tmp_path / "zero"), "--json"])
    assert result.exit_code == 0, result.output
    assert [r["n_w"] for r in json.loads(result.output)["rows"]] == [0.0]
    result = runner.invoke(app, [*zero, "--anchors", "batch", "--out", str(tmp_path / "zero-b")])
    assert result.exit_code == 2 and result.output.strip() == ("error: --anchors has no effect with --n-w 0 only (no "
                                                              "prototypes): drop it"), result.output
