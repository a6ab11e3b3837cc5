"""Package discovery only; all metadata lives in pyproject.toml.

Every package under ``ufm/`` is found automatically, and the top-level ``cli/`` folder (with any subpackage it
grows) installs as ``ufm.cli``, so no subpackage can be left out of a wheel.  ``tests/test_packaging.py`` builds
the wheel and checks that every ``.py`` file of both folders is in it.
"""

from setuptools import find_packages, setup

cli = ["ufm.cli"] + [f"ufm.cli.{name}" for name in find_packages("cli")]
setup(packages=find_packages(include=["ufm", "ufm.*"]) + cli, package_dir={"ufm.cli": "cli"})
