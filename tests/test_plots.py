"""ufm.plots: points a solver did not certify are drawn hollow and counted in the title."""

import pytest

from ufm.plots import lines_vs_x


def test_uncertified_points_are_hollow_and_counted():
    series = {"a": ([1, 10, 100], [0.3, 0.2, 0.1]), "b": ([1, 10], [0.5, 0.4])}
    fig = lines_vs_x(series, "n_w", "distance", "sweep", certified={"a": [True, True, False], "b": [True, True]})
    ax = fig.axes[0]
    hollow = [line for line in ax.lines if line.get_markerfacecolor() == "white" and len(line.get_xdata())]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [100]
    assert ax.get_title() == "sweep\n4 of 5 points certified (hollow: not certified)"
    assert "hollow: not certified" in [t.get_text() for t in ax.get_legend().get_texts()]
    plain = lines_vs_x(series, "n_w", "distance", "sweep", certified={"a": [True] * 3}).axes[0]
    assert plain.get_title() == "sweep" and all(line.get_markerfacecolor() != "white" for line in plain.lines)
    with pytest.raises(ValueError, match="3 points but 2 certified flags"):
        lines_vs_x(series, "n_w", "distance", certified={"a": [True, False]})


def test_the_batching_figure_marks_solver_optima_that_are_not_certified(tmp_path, monkeypatch):
    import ufm.figures as figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.append(fig))
    solver = [{"batching": "solver", "n_w": w, "mean": 0.1 / (1 + w), "std": 0.0, "seeds": [], "status": status}
              for w, status in ((0.0, "optimal"), (10.0, "optimal"), (1e6, "optimal_inaccurate"))]
    full = [{"batching": "full", "n_w": w, "mean": 0.2, "std": 0.01, "seeds": [0, 1]} for w in (0.0, 10.0)]
    figures.maps_batching_figure(tmp_path, rows=solver + full)
    ax = drawn[0].axes[0]
    hollow = [line for line in ax.lines if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [1e6]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "hollow: not certified" in labels and not any(label.startswith("certified") for label in labels)
