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
