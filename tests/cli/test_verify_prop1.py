"""`ufm verify-prop1`: the tests of the command itself (its flags, output, folder and refusals)."""

import re

from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()


def test_verify_prop1_states_one_line_per_convention(tmp_path):
    result = runner.invoke(app, ["verify-prop1", "--out", str(tmp_path), "--epochs", "100"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    # the finding (docs/prop1.md): the published limit fails in both conventions, the derived one decays as 1/n_w
    assert "prototypes as anchors: the published limit does NOT hold" in text
    assert "batch samples as the only anchors: the published limit does NOT hold" in text
    slopes = [float(x) for x in re.findall(r"the derived limit's largest gap is \S+ \(exponent ([-+.\d]+)\)", text)]
    assert len(slopes) == 2 and all(-1.2 < s < -0.8 for s in slopes), text
    assert (tmp_path / "prop1_gaps.png").is_file()
