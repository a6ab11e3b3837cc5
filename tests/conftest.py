"""Shared test setup: the tests live in subfolders mirroring the package (solver/, deep/, cli/),
so put tests/ itself on sys.path for the helpers (`from _idx import ...`, `from _tables import ...`)
and for the cross-file imports (`from test_slurm import ...`)."""
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
