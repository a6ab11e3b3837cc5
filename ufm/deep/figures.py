"""Figures of training runs: the paper's Figure 1 (G_M heatmaps through training, distance to G_* against the
epoch) from ``ufm train`` run folders, each folder checked to be a finished training run first."""

from __future__ import annotations

from pathlib import Path

import numpy as np


__all__ = ["deep_fig1"]


def _last_distance(history: list[dict]) -> float:
    value = history[-1].get("distance")
    return float("nan") if value is None else float(value)


def _training_run(folder: Path) -> tuple[str, dict, list[dict]]:
    """(name, arrays, metrics) of a finished ``ufm train`` run folder, or a clear error naming what it is not."""
    from ufm.runio import read_json, read_jsonl, read_npz

    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a run folder; give the folder of a finished `ufm train` run")
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder {folder} does not exist; give the folder of a finished `ufm train` run")
    from ufm.folders import describe, identify

    if identify(folder) not in (None, "train"):
        raise ValueError(f"{folder} is {describe(folder)}, not a training run; give folders written by `ufm train`")
    summary = read_json(folder / "summary.json") if (folder / "summary.json").is_file() else None
    if isinstance(summary, dict) and "runs" in summary:
        raise ValueError(f"{folder} is a `ufm simulate` run folder, not a training run: its figure is its own "
                         "gram_heatmaps.png; give folders written by `ufm train`")
    if not (folder / "arrays.npz").is_file() or not (folder / "metrics.jsonl").is_file():
        raise FileNotFoundError(f"{folder} is not a finished training run (no arrays.npz or metrics.jsonl); "
                                "run `ufm train` (or let it finish) first")
    arrays = read_npz(folder / "arrays.npz")
    g_m, g_star = arrays.get("g_m"), arrays.get("g_star")
    if g_m is None or g_star is None or g_m.ndim != 2 or g_m.shape[0] != g_m.shape[1] or g_m.shape != g_star.shape:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise ValueError(f"{folder / 'arrays.npz'} does not hold a k x k g_m and g_star (it has {shapes}); "
                         "it was not written by `ufm train`")
    history = read_jsonl(folder / "metrics.jsonl")
    bad = [h.get("epoch") for h in history if not isinstance(h.get("epoch"), int)
           or not isinstance(h.get("distance", 0.0), (int, float, type(None)))]
    if bad or not history:
        raise ValueError(f"{folder / 'metrics.jsonl'} does not hold training metrics (one line per epoch with a number "
                         "'epoch' and 'distance'); it was not written by `ufm train`")
    return folder.name, arrays, history


def deep_fig1(run_dirs: list[str | Path], out: str | Path, snapshots: int = 4) -> Path:
    """The paper's Figure 1 from training run folders: one row per run with its G_M at ``snapshots`` evaluation
    epochs (evenly spaced, the last one included) and the target G_*, and the distance of G_M to G_* against
    the epoch."""

    from ufm.runio import check_out_dir, read_npz

    if not run_dirs:
        raise ValueError("deep_fig1 needs at least one training run folder")
    out = check_out_dir(out, "out", run_folder=False)
    runs = [_training_run(Path(folder)) for folder in run_dirs]
    sizes = {arrays["g_m"].shape[0] for _, arrays, _ in runs}
    if len(sizes) > 1:
        raise ValueError(f"the run folders have different numbers of classes {sorted(sizes)}; draw runs of one data set together")
    rows, series = [], {}
    for (name, arrays, history), folder in zip(runs, map(Path, run_dirs)):
        distances = {h["epoch"]: h["distance"] for h in history if h.get("distance") is not None}
        if (folder / "grams.npz").is_file():
            grams = read_npz(folder / "grams.npz")
            picks = sorted({int(round(i)) for i in np.linspace(0, len(grams["epoch"]) - 1, snapshots)})
            cells = [(f"epoch {int(grams['epoch'][i])}: {distances.get(int(grams['epoch'][i]), float('nan')):.3f}",
                      grams["g_m"][i]) for i in picks]
        else:  # run folders written before G_M was kept at every evaluation
            cells = [(f"final: {_last_distance(history):.3f}", arrays["g_m"])]
        rows.append((name, cells + [("target G_*", arrays["g_star"])]))
        series[name] = (list(distances), list(distances.values()))
    from ufm.plots import gram_grid, lines_vs_x, save_figure  # (matplotlib: once the run folders are read)

    out.mkdir(parents=True, exist_ok=True)
    save_figure(gram_grid(rows, "G_M of the training embeddings through training (title: distance to G_*)"),
                out / "deep_fig1_heatmaps.png")
    fig = lines_vs_x(series, "epoch", "distance of G_M to G_*", "distance to the target during training",
                     xscale="linear")
    return save_figure(fig, out / "deep_fig1_distance.png")
