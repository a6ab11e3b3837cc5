"""Matplotlib drawings shared by the CLI and the figure registry (no science here: inputs are arrays)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from ufm.runio import atomic_path  # noqa: E402

__all__ = ["gram_heatmaps", "gram_grid", "lines_vs_x", "save_figure", "distance_heatmaps", "map_panels", "map_figure",
           "certified_row", "study_figure"]


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
    certified: dict[str, Sequence[bool]] | None = None,
) -> plt.Figure:
    """One line with markers per named (x, y) series.  ``certified``: per series name, one flag per point (a
    solver's certificate); points flagged False are drawn hollow, and the legend and title say how many."""
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    uncertified = 0
    for name, (x, y) in series.items():
        line = ax.plot(x, y, marker="o", label=name)[0]
        flags = None if certified is None else certified.get(name)
        if flags is None:
            continue
        if len(flags) != len(x):
            raise ValueError(f"series {name!r} has {len(x)} points but {len(flags)} certified flags")
        hollow = [i for i, ok in enumerate(flags) if not ok]
        uncertified += len(hollow)
        if hollow:  # white-filled markers over the line's own
            ax.plot([x[i] for i in hollow], [y[i] for i in hollow], linestyle="none", marker="o",
                    markerfacecolor="white", markeredgecolor=line.get_color(), zorder=line.get_zorder() + 1)
    if uncertified:
        total = sum(len(x) for x, _ in series.values())
        ax.plot([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="0.3",
                label="hollow: not certified")
        title = f"{title}\n" if title else ""
        title += f"{total - uncertified} of {total} points certified (hollow: not certified)"
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


# --- distance maps: rows of `ufm map` and the maps figures -----------------------------------------------------

def distance_heatmaps(panels: list[tuple[str, list[dict], str]], suptitle: str, columns: int | None = None):
    """One annotated heatmap per (title, rows, row key): rows of :func:`ufm.maps.distance_cell`, x = n_w;
    ``columns`` panels per row (default all in one row).  The title ends with how many cells the solver certified;
    a cell it did not is hatched, its number ends in "?", and a legend says why."""
    import matplotlib.pyplot as plt

    ncol = min(columns or len(panels), len(panels))
    nrow = -(-len(panels) // ncol)
    height = 3.9 * nrow + 0.5 * (nrow - 1)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol + 0.6, height), squeeze=False)
    if nrow > 1:
        fig.subplots_adjust(hspace=0.5, top=1 - 1.0 / height)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    vmax = max((r["distance"] for _, rows, _ in panels for r in rows if r["distance"] is not None), default=1.0) or 1.0
    image = None
    for ax, (title, rows, key) in zip(axes.flat, panels):
        ys, xs = sorted({r[key] for r in rows}), sorted({r["n_w"] for r in rows})
        grid = np.full((len(ys), len(xs)), np.nan)
        loose = np.zeros(grid.shape, dtype=bool)  # a distance the solver did not certify
        for r in rows:
            if r["distance"] is not None:
                grid[ys.index(r[key]), xs.index(r["n_w"])] = r["distance"]
                loose[ys.index(r[key]), xs.index(r["n_w"])] = not certified_row(r)
        image = ax.imshow(grid, vmin=0, vmax=vmax, cmap="viridis", aspect="auto", origin="lower")
        for i in range(len(ys)):
            for j in range(len(xs)):
                text = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.3f}" + ("?" if loose[i, j] else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                        color="white" if np.isnan(grid[i, j]) or grid[i, j] < 0.6 * vmax else "black")
                if loose[i, j]:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.75", alpha=0.75, hatch="////",
                                           edgecolor="0.35", linewidth=0))
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs], fontsize=7)
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys], fontsize=7)
        ax.set_xlabel("n_w (copies of each prototype)", fontsize=8)
        ax.set_ylabel(_AXIS_LABELS[key], fontsize=8)
        ax.set_title(title, fontsize=8.5)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="distance of optimal G_M to G_*")
    solved = [r for _, rows, _ in panels for r in rows if r["distance"] is not None]
    loose = sorted({str(r.get("status")) for r in solved if not certified_row(r)})
    good = sum(certified_row(r) for r in solved)
    suptitle += (f" (certified: all {good} cell{'s' if good != 1 else ''})" if good == len(solved) else
                 f" (certified in {good} of {len(solved)} cells; hatched: not certified)")
    if loose:
        fig.legend(handles=[Patch(facecolor="0.75", hatch="////", edgecolor="0.35",
                                  label=f"not certified (status {', '.join(loose)}): the distance may be off")],
                   loc="lower center", bbox_to_anchor=(0.5, -0.06 if nrow == 1 else 0.0), fontsize=8, frameon=False)
    fig.suptitle(suptitle, fontsize=9.5 if nrow == 1 else 12, y=1.04 if nrow == 1 else 1 - 0.3 / height)
    return fig


_AXIS_LABELS = {"ratio": "imbalance ratio R", "tau": "temperature tau"}
_PANEL_FIELDS = ("profile", "k", "n_major", "geometry", "ratio", "tau", "prototype_anchors")


def map_panels(rows: list[dict]) -> tuple[str, list[tuple[str, list[dict], str]]]:
    """Split map rows (:func:`ufm.maps.distance_cell`) into heatmap panels: x = n_w, y = the ratio when it
    takes several values (else tau), one panel per setting of the other fields that vary.  Returns (what
    all panels share, as a title line; [(panel title, rows, y key)])."""
    varies = {f for f in _PANEL_FIELDS if len({r[f] for r in rows}) > 1}
    y = "ratio" if "ratio" in varies or "tau" not in varies else "tau"
    split = [f for f in _PANEL_FIELDS if f in varies and f != y]
    shared = [f for f in _PANEL_FIELDS if f not in varies and f != y]

    def say(field: str, value) -> str:
        if field == "prototype_anchors":
            return "prototype anchors" if value else "batch anchors only"
        if field == "geometry":
            return f"{value.upper() if value == 'etf' else value} target"
        return f"{field} {value:g}" if isinstance(value, float) else f"{field} {value}"

    panels = []
    for key in sorted({tuple(r[f] for f in split) for r in rows}, key=lambda t: [(not v) if isinstance(v, bool) else v for v in t]):
        sub = [r for r in rows if tuple(r[f] for f in split) == key]
        parts = [say(f, v) for f, v in zip(split, key)]
        panels.append((", ".join(parts[:-1]) + ("\n" if len(parts) > 1 else "") + (parts[-1] if parts else ""), sub, y))
    return ", ".join(say(f, rows[0][f]) for f in shared), panels


def certified_row(row: dict) -> bool:
    """Whether a solver row's numbers are certified: status "optimal" (:class:`ufm.solver.SolveResult`)."""
    return row.get("status") == "optimal"


def map_figure(rows: list[dict], title: str | None = None, columns: int = 4):
    """Annotated heatmaps of a distance map's rows (:func:`map_panels`), full batch (certification marked as in
    :func:`distance_heatmaps`)."""
    shared, panels = map_panels(rows)
    solvers = sorted({r.get("solver_method", r.get("solver", "?")) for r in rows if r.get("distance") is not None})
    return distance_heatmaps(panels, title or f"optimum ({', '.join(solvers)}), full batch, {shared}", columns)


# --- the minority-angle study: rows of ufm.deep.study.report ----------------------------------------------------

def study_figure(rows: list[dict], measures: Sequence[tuple[str, str]] = (
        ("probe_accuracy", "balanced test accuracy (linear probe)"),
        ("minority_probe_accuracy", "minority-class test accuracy (probe)")), level: float = 0.95) -> plt.Figure:
    """Accuracy against gamma, one panel per measure and one colour per setting: the ETF arm at gamma = 0 joined to
    the minority arms, with interval bars; the designed arm as a star; the no-prototype arm as a dashed line with its
    interval shaded.  Rows: ``{"setting", "arm", "gamma", measure: {"mean", "low", "high"}}``."""
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig, axes = plt.subplots(1, len(measures), figsize=(5.4 * len(measures), 3.9), squeeze=False)
    for ax, (measure, label) in zip(axes[0], measures):
        for i, setting in enumerate(settings):
            color = f"C{i}"
            mine = [r for r in rows if r["setting"] == setting]
            line = sorted((r for r in mine if r["gamma"] is not None and not r["arm"].startswith("designed")),
                          key=lambda r: r["gamma"])

            def bars(rs, shift=0.0, **kw):
                x = [r["gamma"] + shift for r in rs]
                y = np.array([100 * r[measure]["mean"] for r in rs])
                err = np.array([[100 * (r[measure]["mean"] - r[measure]["low"]),
                                 100 * (r[measure]["high"] - r[measure]["mean"])] for r in rs]).T
                # no bar where one seed gives no interval (NaN bounds): masked, not drawn as a zero-width bar
                ax.errorbar(x, y, yerr=np.ma.masked_invalid(err), color=color, capsize=3, **kw)

            if line:
                has_etf = any(r["arm"] == "etf" for r in line)
                bars(line, marker="o", label=f"{setting}: " + ("ETF (gamma 0) and minority G_*" if has_etf
                                                                else "minority G_*"))
            designed = [r for r in mine if r["arm"].startswith("designed")]
            if designed:
                bars(designed, shift=0.04, marker="*", markersize=11, linestyle="none",
                     label=f"{setting}: designed G_w (beside gamma 1)")
            for r in (r for r in mine if r["arm"] == "etf"):  # the ETF baseline across the axis, its interval
                m = r[measure]
                ax.axhline(100 * m["mean"], color=color, linestyle=":", linewidth=1)
                if m["low"] == m["low"]:
                    ax.axhspan(100 * m["low"], 100 * m["high"], color=color, alpha=0.06, hatch="..")
            for r in (r for r in mine if r["gamma"] is None):
                m = r[measure]
                ax.axhline(100 * m["mean"], color=color, linestyle="--", linewidth=1,
                           label=f"{setting}: {r['arm']} (no prototypes)" if r["arm"] == "none" else r["arm"])
                if m["low"] == m["low"]:
                    ax.axhspan(100 * m["low"], 100 * m["high"], color=color, alpha=0.12)
        low, high = ax.get_ylim()  # accuracies: intervals beyond [0, 100] are cut at the axis
        ax.set_ylim(max(low, -2), min(high, 102))
        ax.set_xlabel("gamma (minority weighting of G_*; 0 = ETF)")
        ax.set_ylabel(f"{label}, %")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Larger minority angles: mean and {100 * level:g}% interval over seeds (no bar: one seed)",
                 fontsize=10)
    fig.tight_layout()
    return fig
