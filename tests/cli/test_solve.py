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


def test_agree_says_which_solver_optima_are_not_certified(monkeypatch):
    import ufm.cli.solve as solve_cli

    row = {"n_w": 1.0, "tau": 0.1, "seed": 0, "simulator_loss": 2.0, "solver_objective": 1.9, "relative_gap": 0.05,
           "gram_max_difference": 0.1, "distance_simulator": 0.2, "distance_solver": 0.1, "solver_status": "optimal"}
    rows = [row, {**row, "n_w": 1e6, "solver_status": "optimal_inaccurate"}]
    monkeypatch.setattr(solve_cli, "solver_vs_simulator", lambda cfg: rows)
    result = CliRunner().invoke(app, ["agree", "--k", "3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 of 2 solver optima are not certified (status optimal_inaccurate)" in text
    assert "their gap and distance may be off (marked ?)" in text and "0.1000?" in text
