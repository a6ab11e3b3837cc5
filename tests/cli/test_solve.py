"""ufm solve: gram.png says when the solver could not certify G_M."""

from typer.testing import CliRunner

import ufm.plots as plots
from ufm.cli.main import app


def test_gram_figure_says_whether_g_m_is_certified(tmp_path, monkeypatch):
    drawn = []
    real = plots.gram_heatmaps
    monkeypatch.setattr(plots, "gram_heatmaps", lambda grams, titles, suptitle: drawn.append((titles, suptitle))
                        or real(grams, titles, suptitle))
    for n_w, out in (("10", "a"), ("1e6", "b")):  # STEP 20x2,2x2, tau 0.1: certified at 10, not at 1e6
        result = CliRunner().invoke(app, ["solve", "--counts", "20x2,2x2", "--tau", "0.1", "--n-w", n_w, "--out",
                                          str(tmp_path / out)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / out / "gram.png").is_file()
    (good, good_title), (loose, loose_title) = drawn
    assert good[0] == "optimal G_M (certified)" and "could not certify" not in good_title
    assert loose[0] == "G_M, NOT certified (optimal_inaccurate)" and "could not certify G_M's entries" in loose_title
