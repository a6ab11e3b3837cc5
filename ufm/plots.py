"""Matplotlib drawings shared by the CLI and the figure registry (no science here: inputs are arrays)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ufm.runio import atomic_path  # noqa: E402

__all__ = ["gram_heatmaps", "gram_grid", "lines_vs_x", "save_figure"]


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG atomically and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def gram_heatmaps(grams: Sequence[np.ndarray], titles: Sequence[str], suptitle: str | None = None) -> plt.Figure:
    """One heatmap per k x k Gram, on a shared [-1, 1] colour scale."""
    fig, axes = plt.subplots(1, len(grams), figsize=(3.2 * len(grams) + 0.8, 3.3), squeeze=False)
    image = None
    for ax, g, title in zip(axes[0], grams, titles):
        image = ax.imshow(np.asarray(g), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def gram_grid(rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], suptitle: str | None = None) -> plt.Figure:
    """A grid of k x k Gram heatmaps on a shared [-1, 1] scale: one row per ``(row label, [(title, gram), ...])``."""
    cols = max(len(cells) for _, cells in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.4 * cols + 1.0, 2.5 * len(rows)), squeeze=False)
    image = None
    for r, (label, cells) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.set_axis_off()
                continue
            title, g = cells[c]
            image = ax.imshow(np.asarray(g), vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_title(title, fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def lines_vs_x(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    xscale: str = "symlog",
    yscale: str = "linear",
) -> plt.Figure:
    """One line with markers per named (x, y) series."""
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o", label=name)
    if xscale == "symlog":
        ax.set_xscale("symlog", linthresh=1)
    else:
        ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
