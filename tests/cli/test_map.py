"""ufm map: cells the solver cannot certify are said so in the table, hatched in map.png and counted in its title;
a cross-check always compares two different methods."""

import json

from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.copies import SolvePoint
from ufm.maps import _cross_check
from ufm.plots import map_figure

# k = 4 STEP, tau 0.1: n_w = 10 is certified, n_w = 1e6 is not (optimal_inaccurate: entries loose)
ARGS = ["map", "--k", "4", "--n-major", "20", "--ratio", "10", "--tau", "0.1", "--n-w", "10", "--n-w", "1e6",
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
