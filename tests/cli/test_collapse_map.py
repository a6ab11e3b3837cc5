"""`ufm collapse-map`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

from typer.testing import CliRunner

from ufm.cli.main import app


def test_the_cli(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["collapse-map", "--profile", "step", "--ratio", "2", "--k", "3", "--n-major", "4",
                                 "--tau", "0.5", "--n-w", "0", "--json", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and rows[0]["verdict"] == "collapse optimal" and rows[0]["counts"] == [4, 4, 2]
    assert json.loads((tmp_path / "m" / "collapse_map.json").read_text())[0]["verdict"] == "collapse optimal"
    bad = runner.invoke(app, ["collapse-map", "--anchors", "some"])
    assert bad.exit_code == 2 and "--anchors" in bad.output
    bad = runner.invoke(app, ["collapse-map", "--batching", "shuffle", "--k", "3", "--n-major", "4", "--ratio", "2"])
    assert bad.exit_code == 2 and "--batch-size" in bad.output
    bad = runner.invoke(app, ["collapse-map", "--profile", "long-tail", "--minority-fraction", "0.3"])
    assert bad.exit_code == 2 and "--minority-fraction applies to the step profile" in bad.output


def test_the_cli_continues_a_map_and_gather_prints_it(tmp_path):
    runner = CliRunner()
    args = ["collapse-map", "--profile", "step", "--ratio", "2", "--k", "3", "--n-major", "4", "--tau", "0.5",
            "--n-w", "0", "--n-w", "1", "--anchors", "prototype", "--out", str(tmp_path / "m")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "2 of 2 cells already finished" in again.output
    other = runner.invoke(app, [*args[:-2], "--tau", "0.3", "--out", str(tmp_path / "m")])
    assert other.exit_code == 2 and "--overwrite" in other.output
    gathered = runner.invoke(app, ["gather", str(tmp_path / "m"), "--json"])
    assert gathered.exit_code == 0, gathered.output
    rows = json.loads(gathered.stdout)["rows"]
    assert [r["verdict"] for r in rows] == ["collapse optimal"] * 2
