
from typer.testing import CliRunner

import ufm
from ufm.cli.main import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ufm {ufm.__version__}"


def test_figure_commands_write_into_a_folder_of_their_own(tmp_path):
    """A figure never lands in another command's run folder, and nothing is drawn twice."""
    from ufm.folders import mark

    run = tmp_path / "sim"
    run.mkdir()
    mark(run, "simulate")
    before = sorted(p.name for p in run.iterdir())
    for argv in (["figures", "--quick", "--name", "ufm-fig1-heatmaps"], ["figures", "--runs", str(run)],
                 ["deep-figures", str(run)], ["verify-prop1", "--epochs", "1"]):
        result = runner.invoke(app, [*argv, "--out", str(run)])
        assert result.exit_code == 2, (argv, result.output)
        assert "is a simulation run folder" in result.output and "figures go into a folder of their own" in result.output
    assert sorted(p.name for p in run.iterdir()) == before
    for argv, needle in ((["figures", "--quick", "--name", "ufm-fig1-heatmaps", "--name", "ufm-fig1-heatmaps"],
                          "--name ufm-fig1-heatmaps is given twice"),
                         (["deep-figures", str(run), str(tmp_path / "x" / ".." / "sim")], "is given twice"),
                         (["figures", "--runs", str(run), "--runs", str(run)], "--runs"),):
        result = runner.invoke(app, [*argv, "--out", str(tmp_path / "figs")])
        assert result.exit_code == 2 and needle in result.output, (argv, result.output)
    assert not (tmp_path / "figs").exists()


def test_the_cli_installs_as_ufm_cli_and_not_as_a_top_level_cli(tmp_path):
    import subprocess
    import sys

    code = "import importlib.util as u; print(u.find_spec('ufm.cli.main') is not None, u.find_spec('cli') is None)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_version_answers_without_importing_torch_cvxpy_or_matplotlib():
    """`ufm --version` (the console script) answers before anything heavy is imported."""
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['ufm', '--version']; from ufm.cli.main import run; run(); "
            "print(sorted(m for m in ('torch', 'cvxpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [f"ufm {__import__('ufm').__version__}", "[]"], out.stdout
