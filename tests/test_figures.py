import pytest

from ufm.figures import FIGURES, render
from ufm.simulate import SimConfig
from ufm.sweep import distance_series, sweep


def test_every_registered_figure_renders_quickly(tmp_path):
    paths = render(out=tmp_path, quick=True)
    assert len(paths) == len(FIGURES)
    for path in paths:
        assert path.suffix == ".png" and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="unknown figures"):
        render(["nope"], tmp_path)


def test_sweep_rows_and_series():
    cfg = SimConfig(k=3, n_major=6, d=4, batch_size=6, epochs=5, n_w=(0, 10), seeds=(0, 1), device="cpu")
    rows = sweep(cfg, {"ratio": (1.0, 3.0)})
    assert len(rows) == 2 * 2 * 2
    series = distance_series(rows, "ratio")
    assert list(series) == ["ratio = 1", "ratio = 3"]
    x, y = series["ratio = 3"]
    assert x == [0.0, 10.0]
    expected = sum(r["distance"] for r in rows if r["ratio"] == 3.0 and r["n_w"] == 10.0) / 2
    assert y[1] == pytest.approx(expected)
