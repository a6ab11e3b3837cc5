"""table.csv of every grid kind reads back into its rows: point names with several fields (``ratio=2,n_w=0``),
class counts (``[6, 6, 3]``) and empty cells included."""

import pytest
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.runio import csv_cell, write_csv

from _tables import assert_table_reads_back

runner = CliRunner()


def test_write_csv_quotes_what_needs_quoting(tmp_path):
    rows = [{"point": "ratio=2,n_w=0-ab12", "counts": [6, 6, 3], "x": 0.1, "note": 'say "hi"'},
            {"point": "p", "counts": [1, 2], "x": None, "extra": 3}]
    write_csv(tmp_path / "t.csv", rows)
    (tmp_path / "table.json").write_text(__import__("json").dumps(rows))
    (tmp_path / "t.csv").rename(tmp_path / "table.csv")
    back = assert_table_reads_back(tmp_path)
    assert back[0]["point"] == "ratio=2,n_w=0-ab12" and back[1]["x"] == "" and back[1]["note"] == ""
    assert back[1]["extra"] == "3" and back[0]["extra"] == ""
    assert csv_cell(True) == "True" and csv_cell(1e-20) == "1e-20"


@pytest.mark.parametrize("argv", [
    ["solve-sweep", "--k", "3", "--n-major", "6", "--grid", "ratio=2,3", "--grid", "n_w=0,1"],
    ["sweep", "--k", "3", "--n-major", "4", "--d", "4", "--batch-size", "4", "--epochs", "3", "--grid", "ratio=1,2",
     "--grid", "tau=0.5,1"],
    ["map", "--k", "3", "--n-major", "4", "--tau", "0.5", "--ratio", "1", "--ratio", "2", "--n-w", "0", "--n-w", "10"],
], ids=["solve-sweep", "sweep", "map"])
def test_every_grid_table_reads_back(tmp_path, argv):
    result = runner.invoke(app, [*argv, "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    rows = assert_table_reads_back(tmp_path / "t")
    assert len(rows) >= 4
    again = runner.invoke(app, ["gather", str(tmp_path / "t")])  # gather writes the same table
    assert again.exit_code == 0, again.output
    assert assert_table_reads_back(tmp_path / "t") == rows
