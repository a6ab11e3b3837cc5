"""The wheel holds every module of the source tree: ufm/ and its subpackages, and cli/ installed as ufm.cli."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sources() -> set[str]:
    """Paths the wheel must hold for every .py file of ufm/ and cli/."""
    found = {str(p.relative_to(ROOT)) for p in (ROOT / "ufm").rglob("*.py") if "__pycache__" not in p.parts}
    found |= {"ufm/cli/" + str(p.relative_to(ROOT / "cli")) for p in (ROOT / "cli").rglob("*.py")
              if "__pycache__" not in p.parts}
    return found


def test_the_wheel_holds_every_module(tmp_path):
    pytest.importorskip("setuptools", minversion="77")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "ufm", src / "ufm", ignore=ignore)
    shutil.copytree(ROOT / "cli", src / "cli", ignore=ignore)
    # a subpackage nobody listed anywhere is found too
    (src / "ufm" / "brand_new").mkdir()
    (src / "ufm" / "brand_new" / "__init__.py").write_text('"""A new subpackage."""\n')
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("ufm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = (_sources() | {"ufm/brand_new/__init__.py"}) - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert not any(n.startswith(("cli/", "tests/", "benchmarks/")) for n in names)  # no stray top-level packages
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ufm = ufm.cli.main:run" in zipfile.ZipFile(wheel).read(entry).decode()


def test_the_docs_link_no_repository_that_does_not_exist():
    """The project has no public repository yet: the docs site links none (a repo_url pointed at an organisation
    that does not exist); add one here only where the project really lives."""
    config = (Path(__file__).resolve().parents[1] / "mkdocs.yml").read_text()
    assert "repo_url" not in config and "ufm-project" not in config
