"""`ufm gather`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.maps import MapCell, run_map

SMALL = MapCell(k=4, n_major=6, tau=0.5)

runner = CliRunner()


def test_gather_rebuilds_a_map_folder(tmp_path):
    grid = {"prototype_anchors": (True,), "ratio": (1.0, 3.0), "n_w": (10.0,)}
    report = run_map(tmp_path / "m", SMALL, grid)
    (tmp_path / "m" / "map.png").unlink()
    result = runner.invoke(app, ["gather", str(tmp_path / "m")])
    assert result.exit_code == 0 and "2 of 2 points finished" in result.output, result.output
    assert (tmp_path / "m" / "map.png").is_file()
    result = runner.invoke(app, ["gather", str(tmp_path / "m"), "--json"])
    assert json.loads(result.output)["rows"] == report["rows"]
