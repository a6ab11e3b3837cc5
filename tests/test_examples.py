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
    "ddp_prototype_supcon.py": ([], "1 rank(s): loss"),
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


def test_the_ddp_example_under_torchrun_equals_one_process(tmp_path):
    """2 ranks (gloo) under torchrun: the DDP gradient equals the single-process gradient of the global batch."""
    import re

    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(ROOT / "examples" / "ddp_prototype_supcon.py")], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    found = re.search(r"2 rank\(s\): loss ([0-9.]+) \(one process: ([0-9.]+)\); max \|DDP grad - single-process "
                      r"grad\| = ([0-9.e+-]+)", out.stdout)
    assert found, out.stdout + out.stderr
    assert found.group(1) == found.group(2) and float(found.group(3)) < 1e-12
