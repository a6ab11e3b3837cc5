"""`ufm deep-figures`: Figure 1 (G_M heatmaps, distance to G_* against epoch) from training run folders; a folder
that holds no training run is refused in one line."""

import pytest
from _images import tiny, write_image_folder
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.deep.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished two-epoch training run."""
    root = tmp_path_factory.mktemp("deep-figures")
    train(tiny(write_image_folder(root / "images")), root / "run")
    return root / "run"


def test_figure_1_from_a_training_run(run, tmp_path):
    result = CliRunner().invoke(app, ["deep-figures", str(run), "--out", str(tmp_path / "figs")],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for name in ("deep_fig1_heatmaps.png", "deep_fig1_distance.png"):
        assert (tmp_path / "figs" / name).stat().st_size > 1000, name
    assert str(tmp_path / "figs" / "deep_fig1_distance.png") in result.output


def test_a_folder_without_a_training_run_is_refused_in_one_line(run, tmp_path):
    (tmp_path / "empty").mkdir()
    for argv in ([str(tmp_path / "empty")], [str(tmp_path / "none")], [str(run), str(tmp_path / "empty")]):
        result = CliRunner().invoke(app, ["deep-figures", *argv, "--out", str(tmp_path / "figs")])
        text = result.output.strip()
        assert result.exit_code == 2 and text.startswith("error:") and len(text.splitlines()) == 1, (argv, text)
    assert not (tmp_path / "figs").exists()
