"""The README quotes what the code prints: the certified solve and the copies search (deterministic to the digits
shown), and the commands it names exist."""

import json
import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from ufm.cli.main import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
runner = CliRunner()


def test_the_readme_stays_short():
    assert len(README.splitlines()) <= 200


def test_the_quoted_solve_is_what_ufm_solve_prints(tmp_path):
    result = runner.invoke(app, ["solve", "--counts", "50x2,5x2", "--tau", "0.1", "--n-w", "10", "--json",
                                 "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    gram = np.array(data.get("solution", data)["gram"])
    quoted = [[float(v) for v in re.findall(r"[+-]\d\.\d{4}", line)]
              for line in README.splitlines() if re.match(r"^\s+\d\s+(50|5)\s+[+-]\d\.\d{4}", line)]
    assert np.array(quoted).shape == (4, 4)
    assert np.abs(np.round(gram, 4) - np.array(quoted)).max() < 1e-12
    assert "grouped (CLARABEL): optimal, objective 568.4769687" in README


def test_the_quoted_copies_answer_is_what_ufm_copies_prints():
    result = runner.invoke(app, ["copies", "--counts", "50x5,5x5", "--tau", "0.1", "--target-distance", "0.05"])
    assert result.exit_code == 0, result.output
    last = [line for line in result.output.splitlines() if line.startswith("n_w = ")][-1]
    assert last in README


def test_every_command_the_readme_names_exists():
    from typer.main import get_command

    commands = set(get_command(app).commands)
    named = set(re.findall(r"`ufm ([a-z][a-z0-9-]+)", README))
    assert named <= commands, named - commands
