"""`ufm verify-prop1`: the tests of the command itself (its flags, output, folder and refusals)."""

import re

from _cli import refused
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.prop1 import Prop1Case, Prop1Config

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


def test_verify_prop1_flags_and_one_computation_of_the_gaps(monkeypatch):
    import ufm.prop1 as prop1

    result = runner.invoke(app, ["verify-prop1", "--help"])
    assert "--epochs" in result.output and "--device" in result.output
    refused(["verify-prop1", "--epochs", "0"], "--epochs must be >= 1")
    refused(["verify-prop1", "--device", "tpu"], "--device 'tpu' is not a device")
    assert Prop1Config().epochs == 2000
    calls = []
    real = prop1.gaps
    monkeypatch.setattr(prop1, "gaps", lambda case, n_ws: calls.append(case) or real(case, n_ws))
    cases = [Prop1Case(tau=0.7, seed=3)]
    first = prop1.verify(cases, n_ws=(1.0, 10.0))
    first[0]["n_w"] = -1.0  # callers get copies
    second = prop1.verify(cases, n_ws=(1.0, 10.0))
    assert len(calls) == 1 and second[0]["n_w"] == 1.0 and len(second) == 4
