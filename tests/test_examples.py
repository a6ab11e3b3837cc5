"""The runnable examples in examples/, each at a small size, as a user runs them (a fresh process)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "supcon_with_prototypes.py": (["--steps", "60"], "distance of G_M to G_*"),
    "ufm_in_ten_lines.py": (["--epochs", "300"], "n_w =   100: distance of G_M to the ETF"),
    "optimal_geometry.py": (["--counts", "6,6,2", "--tau", "0.5", "--n-w", "5"], "n_w = 5: optimal"),
}


def test_every_example_is_tested():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, tmp_path):
    args, needle = CASES[name]
    if name == "optimal_geometry.py":
        args = [*args, "--out", str(tmp_path / "g.png")]
    out = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert needle in out.stdout, out.stdout
    if name == "optimal_geometry.py":
        assert (tmp_path / "g.png").stat().st_size > 1000
