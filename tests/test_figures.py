import numpy as np
import pytest

from ufm.figures import FIGURES, render
from ufm.simulate import SimConfig
from ufm.kinds.simulate import distance_series, sweep


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


@pytest.fixture
def captured(monkeypatch):
    """The figures handed to save_figure (instead of written), by file name, to check the data they draw."""
    figs = {}

    def keep(fig, path):
        figs[path.name] = fig
        return path

    for module in ("ufm.figures", "ufm.plots"):  # ufm.deep.figures imports it from ufm.plots when it draws
        monkeypatch.setattr(f"{module}.save_figure", keep)
    return figs


def _lines(fig) -> dict[str, np.ndarray]:
    return {line.get_label(): line.get_xydata() for ax in fig.axes for line in ax.get_lines()}


def test_scl_vs_ce_figure_draws_its_rows(tmp_path, captured):
    from ufm.figures import scl_vs_ce_figure

    rows = [{"tau": tau, "prototype_anchors": a, "n_w": n_w, "distance_scl_to_ce": 0.1 * tau + n_w / 1000 + a}
            for tau in (0.1, 1.0) for a in (True, False) for n_w in (0.0, 10.0, 100.0)]
    scl_vs_ce_figure(tmp_path, rows=rows)
    lines = _lines(captured["scl_vs_ce.png"])
    assert len(lines) == 4
    xy = lines["tau 1, batch anchors only"]
    assert xy[:, 0].tolist() == [0.0, 10.0, 100.0]
    assert xy[:, 1] == pytest.approx([0.1, 0.11, 0.2])


def test_deep_fig1_draws_the_runs_grams_and_distances(tmp_path, captured):
    from ufm.deep.figures import deep_fig1
    from ufm.runio import write_jsonl, write_npz

    rng = np.random.default_rng(0)
    folders = []
    for name, scale in (("a", 0.3), ("b", 0.6)):
        run = tmp_path / name
        run.mkdir()
        grams = [np.eye(3) + scale * e * (1 - np.eye(3)) / 10 for e in (1, 2, 3, 4, 5)]
        write_npz(run / "grams.npz", epoch=np.array([2, 4, 6, 8, 10]), g_m=np.stack(grams))
        write_npz(run / "arrays.npz", g_m=grams[-1], g_star=np.eye(3), counts=np.array([4, 4, 2]))
        history = [{"epoch": e, "loss": 1.0} for e in range(1, 11)]
        for h in history:
            if h["epoch"] % 2 == 0:
                h["distance"] = float(rng.uniform())
        write_jsonl(run / "metrics.jsonl", history)
        folders.append((run, grams, history))
    deep_fig1([f for f, _, _ in folders], tmp_path / "figs", snapshots=3)
    lines = _lines(captured["deep_fig1_distance.png"])
    for run, grams, history in folders:
        xy = lines[run.name]
        assert xy[:, 0].tolist() == [2, 4, 6, 8, 10]
        assert xy[:, 1].tolist() == [h["distance"] for h in history if "distance" in h]
    heat = captured["deep_fig1_heatmaps.png"]
    images = [ax.get_images()[0].get_array() for ax in heat.axes if ax.get_images()]
    # per run: epochs 2, 6, 10 (three evenly spaced snapshots, the last included), then the target
    expected = [g for _, grams, _ in folders for g in (grams[0], grams[2], grams[4], np.eye(3))]
    assert len(images) == len(expected)
    for image, gram in zip(images, expected):
        assert np.allclose(np.asarray(image), gram)


def test_study_figure_draws_the_means_and_intervals():
    from ufm.plots import study_figure

    def cell(mean, half):
        return {"mean": mean, "low": mean - half, "high": mean + half, "n": 3}

    rows = [{"setting": "s", "arm": arm, "gamma": g, "probe_accuracy": cell(m, 0.01),
             "minority_probe_accuracy": cell(m - 0.2, 0.02)}
            for arm, g, m in (("none", None, 0.5), ("etf", 0.0, 0.6), ("minority-g0.5", 0.5, 0.62),
                              ("minority-g1", 1.0, 0.64), ("designed-g1", 1.0, 0.65))]
    fig = study_figure(rows)
    first = fig.axes[0]
    lines = {line.get_label(): line.get_xydata() for line in first.get_lines()}
    lines.update({c.get_label(): c.lines[0].get_xydata() for c in first.containers})  # error-bar series
    main = lines["s: ETF (gamma 0) and minority G_*"]
    assert main[:, 0].tolist() == [0.0, 0.5, 1.0] and main[:, 1] == pytest.approx([60, 62, 64])
    star = lines["s: designed G_w (beside gamma 1)"]
    assert star[0, 1] == pytest.approx(65)
    assert lines["s: none (no prototypes)"][0, 1] == pytest.approx(50)
    assert fig.axes[1].containers[0].lines[0].get_xydata()[:, 1] == pytest.approx([40, 42, 44])
    bars = first.containers[0].lines[2][0].get_segments()  # the interval bars: mean -+ 1 percentage point
    assert [tuple(seg[:, 1]) for seg in bars] == [pytest.approx((59, 61)), pytest.approx((61, 63)),
                                                  pytest.approx((63, 65))]
