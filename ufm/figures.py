"""The figure registry: name -> a function that regenerates one PNG from code, with fixed seeds.

``ufm figures`` renders every registered figure into ``figures/``; ``quick=True`` shrinks the
experiments (fewer epochs and runs) so tests can exercise every figure in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ufm.choices import FIGURES as FIGURE_NAMES
from ufm.choices import check_figure_names
from ufm.plots import distance_heatmaps as _distance_heatmaps, gram_heatmaps, lines_vs_x, save_figure
from ufm.simulate import SimConfig, simulate
from ufm.kinds.simulate import distance_series, sweep

__all__ = ["Figure", "FIGURES", "render", "deep_fig1"]

from ufm.deep.figures import deep_fig1  # noqa: E402  (training-run figures live with the trainer; kept importable here)


@dataclass(frozen=True)
class Figure:
    name: str
    description: str
    draw: Callable[[Path, bool], Path]


# The UFM version of the paper's Figure 1 setting: k = 10, STEP R = 10, half minority, ETF prototypes.
FIG1 = SimConfig(k=10, profile="step", n_major=50, ratio=10, d=32, tau=(0.1,), batch_size=32, epochs=4000,
                 log_every=100, device="cpu")


def _quick(cfg: SimConfig, quick: bool) -> SimConfig:
    return SimConfig(**{**cfg.to_dict(), "epochs": 20, "log_every": 10}) if quick else cfg


def ufm_fig1_heatmaps(out: Path, quick: bool = False) -> Path:
    """G_M of vanilla SCL, class-averaging with batch binding, and SCL with n_w = 100, next to G_*."""
    scl = simulate(_quick(SimConfig(**{**FIG1.to_dict(), "n_w": (0.0, 100.0)}), quick))
    bcl = simulate(_quick(SimConfig(**{**FIG1.to_dict(), "n_w": (0.0,), "loss": "class-averaging",
                                        "batching": "binding"}), quick))
    dist = [scl.history[-1]["distance"][0], bcl.history[-1]["distance"][0], scl.history[-1]["distance"][1]]
    grams = [scl.g_star, scl.g_m[0], bcl.g_m[0], scl.g_m[1]]
    titles = [
        "target G_* (ETF)",
        f"SCL, n_w = 0\ndistance {dist[0]:.3f}",
        f"class-averaging + binding\ndistance {dist[1]:.3f}",
        f"SCL, n_w = 100\ndistance {dist[2]:.3f}",
    ]
    fig = gram_heatmaps(grams, titles, "UFM, k = 10, STEP imbalance R = 10 (classes 5-9 minority), tau = 0.1, n = 32")
    return save_figure(fig, out / "ufm_fig1_heatmaps.png")


def ufm_distance_vs_nw(out: Path, quick: bool = False) -> Path:
    """Distance of G_M to the ETF against n_w, for imbalance ratios R = 1, 10, 100."""
    n_ws = (0.0, 1.0, 10.0, 100.0) if quick else (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
    cfg = _quick(SimConfig(**{**FIG1.to_dict(), "n_major": 200, "n_w": n_ws}), quick)
    rows = sweep(cfg, {"ratio": (1.0, 10.0, 100.0)})
    fig = lines_vs_x(
        distance_series(rows, "ratio"),
        xlabel="n_w (copies of each prototype per batch)",
        ylabel="|| G_M/||G_M|| - G_*/||G_*|| ||_F",
        title="UFM, k = 10, STEP (majority 200), tau = 0.1, n = 32, random reshuffling",
    )
    return save_figure(fig, out / "ufm_distance_vs_nw.png")


def solver_vs_simulator_figure(out: Path, quick: bool = False) -> Path:
    """Distance of G_M to G_* against n_w: the convex solver's certified optimum and the simulator (full batch)."""
    from ufm.agreement import solver_vs_simulator

    n_ws = (0.0, 10.0) if quick else (0.0, 1.0, 3.0, 10.0, 30.0, 100.0)
    cfg = SimConfig(**{**FIG1.to_dict(), "batching": "full", "n_w": n_ws, "epochs": 20 if quick else 3000,
                       "lr": 0.05, "log_every": 500, "dtype": "float64"})
    rows = solver_vs_simulator(cfg)
    x = [r["n_w"] for r in rows]
    solver = "convex solver (collapsed)"
    fig = lines_vs_x(
        {solver: (x, [r["distance_solver"] for r in rows]),
         "UFM simulator": (x, [r["distance_simulator"] for r in rows])},
        xlabel="n_w (copies of each prototype per batch)",
        ylabel="|| G_M/||G_M|| - G_*/||G_*|| ||_F",
        title="full batch, k = 10, STEP R = 10 (majority 50), tau = 0.1, ETF prototypes",
        certified={solver: [r["solver_status"] == "optimal" for r in rows]},
    )
    return save_figure(fig, out / "solver_vs_simulator.png")


def prop1_gaps(out: Path, quick: bool = False) -> Path:
    """Relative Riemannian-gradient gap between exact SCL with prototypes and each large-n_w limit, against
    n_w (median over the default cases), for both anchor conventions."""
    import numpy as np

    from ufm.prop1 import N_WS, verify

    n_ws = N_WS[::4] if quick else N_WS
    rows = verify(n_ws=n_ws)
    series = {}
    for anchors in (True, False):
        conv = "prototype anchors" if anchors else "batch anchors only"
        for name in ("published", "derived"):
            medians = [float(np.median([r[f"grad_gap_{name}"] for r in rows
                                        if r["prototype_anchors"] == anchors and r["n_w"] == n_w])) for n_w in n_ws]
            series[f"{name} limit, {conv}"] = (list(n_ws), medians)
    fig = lines_vs_x(series, xlabel="n_w", ylabel="relative gradient gap to exact SCL", xscale="log", yscale="log",
                     title="Proposition 1: exact SCL with prototypes vs its large-n_w limits (median over 16 cases)")
    return save_figure(fig, out / "prop1_gaps.png")


def scl_vs_ce_figure(out: Path, quick: bool = False, rows: list[dict] | None = None) -> Path:
    """Distance between the G_M of SCL with prototypes and the G_M of CE with the same fixed classifier,
    against n_w, per temperature and anchor convention (UFM, full batch)."""
    from ufm.prop1 import scl_vs_ce

    if rows is None:
        rows = scl_vs_ce(n_ws=(0.0, 100.0) if quick else (0.0, 10.0, 100.0, 1000.0), epochs=20 if quick else 2000)
    series = {}
    for tau in sorted({r["tau"] for r in rows}):
        for anchors in (True, False):
            sub = [r for r in rows if r["tau"] == tau and r["prototype_anchors"] == anchors]
            conv = "prototype anchors" if anchors else "batch anchors only"
            series[f"tau {tau:g}, {conv}"] = ([r["n_w"] for r in sub], [r["distance_scl_to_ce"] for r in sub])
    fig = lines_vs_x(series, xlabel="n_w", ylabel="distance between G_M(SCL) and G_M(CE, fixed W)",
                     title="UFM, full batch, k = 4, STEP (20, 20, 4, 4), minority-weighted target")
    return save_figure(fig, out / "scl_vs_ce.png")


_DRAW = {"ufm-fig1-heatmaps": ufm_fig1_heatmaps, "ufm-distance-vs-nw": ufm_distance_vs_nw, "prop1-gaps": prop1_gaps,
         "scl-vs-ce": scl_vs_ce_figure, "solver-vs-simulator": solver_vs_simulator_figure}


def render(names: list[str] | None = None, out: str | Path = "figures", quick: bool = False) -> list[Path]:
    """Render the named figures (all by default) into ``out``; returns the PNG paths."""
    names = list(FIGURES) if not names else names
    check_figure_names(names)
    from ufm.runio import check_out_dir

    out = check_out_dir(out, "out", run_folder=False)
    out.mkdir(parents=True, exist_ok=True)
    return [FIGURES[n].draw(out, quick) for n in names]


def maps_distance_figure(out: Path, quick: bool = False, rows: dict | None = None) -> Path:
    """Distance of the certified optimal G_M to the ETF over (R, n_w) (STEP, majority 200, tau 0.1) and over
    (tau, n_w) (STEP R = 10, majority 50), k = 10, full batch, both anchor conventions."""
    from ufm.maps import N_WS, RATIOS, TAUS, distance_map, map_cells

    anchors = (True,) if quick else (True, False)
    if rows is None:
        n_ws = (0.0, 10.0) if quick else N_WS
        rows = {
            "ratio": distance_map(map_cells(ratios=(1.0, 10.0) if quick else RATIOS, taus=(0.1,), n_ws=n_ws,
                                            anchors=anchors, n_major=200)),
            "tau": distance_map(map_cells(ratios=(10.0,), taus=(1.0,) if quick else TAUS, n_ws=n_ws,
                                          anchors=anchors, n_major=50)),
        }
    panels = []
    for key, label in (("ratio", "STEP majority 200, tau 0.1"), ("tau", "STEP 50x5,5x5 (R = 10)")):
        for a in anchors:
            sub = [r for r in rows[key] if r["prototype_anchors"] == a]
            if sub:
                panels.append((f"{label}\n{'prototype anchors' if a else 'batch anchors only'}", sub, key))
    fig = _distance_heatmaps(panels, "optimum (Burer-Monteiro), k = 10, full batch, ETF target")
    return save_figure(fig, out / "maps_distance.png")


_DRAW["maps-distance"] = maps_distance_figure


# --- Is collapse optimal? (ufm.collapse): verdict maps over (R, n_w) --------------------------------------------

_VERDICT_CODE = {"collapse optimal": 0, "undecided": 1, "not optimal": 2, "error": np.nan}


def collapse_map_figure(out: Path, quick: bool = False, rows: list[dict] | None = None) -> Path:
    """Verdict of :func:`ufm.collapse.collapse_cell` over (R, n_w), full batch, k = 10, majority 20, tau 0.1,
    ETF target: STEP and long-tail, prototype anchors and batch anchors only; each cell annotated with the
    smallest within-class cosine of the uncollapsed optimum (quick: k = 3, majority 4, two cells)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from ufm.collapse import collapse_map, map_cells

    if rows is None:
        if quick:
            cells = map_cells(profiles=("step",), ratios=(2.0,), taus=(0.5,), n_ws=(0.0, 1.0), anchors=(True,),
                              k=3, n_major=4)
        else:
            cells = map_cells(ratios=(2.0, 10.0, 20.0), taus=(0.1,), n_ws=(0.0, 1.0, 2.0, 10.0, 100.0))
        rows = collapse_map(cells)
    panels = [(p, a) for p in dict.fromkeys(r["profile"] for r in rows) for a in (True, False)
              if any(r["profile"] == p and r["prototype_anchors"] == a and r["n_w"] > 0 for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.9 * len(panels) + 0.4, 3.4), squeeze=False)
    cmap = ListedColormap(["#4c9a5a", "#d9c45a", "#c0504d"])
    for ax, (profile, anchors) in zip(axes[0], panels):
        sub = [r for r in rows if r["profile"] == profile and (r["prototype_anchors"] == anchors or r["n_w"] == 0)]
        ys, xs = sorted({r["ratio"] for r in sub}), sorted({r["n_w"] for r in sub})
        grid = np.full((len(ys), len(xs)), np.nan)
        for r in sub:
            i, j = ys.index(r["ratio"]), xs.index(r["n_w"])
            grid[i, j] = _VERDICT_CODE[r["verdict"]]
            text = ("ill-posed" if r["verdict"] == "error" else f"{r['min_cos']:.4f}" if r["min_cos"] < 0.99995
                    else "1" if r["min_cos"] > 1 - 1e-6 else ">0.99995")
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5)
        ax.imshow(grid, vmin=0, vmax=2, cmap=cmap, aspect="auto", origin="lower")
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs], fontsize=7)
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys], fontsize=7)
        ax.set_xlabel("n_w (copies of each prototype)", fontsize=8)
        ax.set_ylabel("imbalance ratio R", fontsize=8)
        ax.set_title(f"{profile}, {'prototype anchors' if anchors else 'batch anchors only'}", fontsize=8.5)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(c)) for c in range(3)]
    fig.legend(handles, ["collapse optimal (certified)", "undecided", "not optimal (certified)"], loc="lower center",
               ncol=3, fontsize=7.5, bbox_to_anchor=(0.5, -0.08))
    taus = sorted({r["tau"] for r in rows})
    fig.suptitle(f"is collapse optimal? full batch, tau {', '.join(f'{t:g}' for t in taus)}, ETF target "
                 "(cell text: smallest within-class cosine of the N x N optimum)", fontsize=9, y=1.03)
    return save_figure(fig, out / "collapse_map.png")


_DRAW["collapse-map"] = collapse_map_figure

# ------------------------------------------------------------------------------- more maps (issue 13)

# Panels of `maps-targets`: (k, profile, solver, cross-check).  STEP reduces by symmetry at any k (the grouped
# interior point, ~0.1 s a cell); long-tail k = 10 has 10 distinct counts (interior point per class); long-tail
# k = 100 has ~90 distinct counts: only Burer-Monteiro (~1 s a cell), no cross-check (the interior point would
# take hours); its R = 1 row is left out (balanced counts, the same problem as the STEP row's R = 1).
TARGET_MAPS = ((10, "step", "auto", True), (10, "long-tail", "auto", True), (100, "step", "auto", False),
               (100, "long-tail", "BM", False))


def maps_targets_rows(quick: bool = False, map_fn=map) -> list[dict]:
    """Rows of the `maps-targets` figure (k = 10, 100; STEP, long-tail; ETF, orthogonal; both anchors; tau 0.1)."""
    from ufm.maps import distance_map, map_cells

    ratios, n_ws = ((1.0, 10.0), (0.0, 10.0)) if quick else ((1.0, 10.0, 100.0), (0.0, 1.0, 10.0, 100.0, 1000.0))
    maps = TARGET_MAPS[:1] if quick else TARGET_MAPS
    geometries = ("etf",) if quick else ("etf", "orthogonal")
    anchors = (True,) if quick else (True, False)
    cells = [c for k, profile, solver, check in maps for g in geometries
             for c in map_cells(ratios if solver != "BM" else [r for r in ratios if r > 1], (0.1,), n_ws, anchors, k,
                                200, g, profile, solver, check)]
    # n_w = 0 has no prototypes: both anchor conventions are the same problem, solved once
    unique = [c for c in cells if c.n_w > 0 or c.prototype_anchors]
    rows = {c: row for c, row in zip(unique, distance_map(unique, map_fn))}
    return [rows[c] if c in rows else {**rows[replace(c, prototype_anchors=True)], "prototype_anchors": False}
            for c in cells]


def maps_targets_figure(out: Path, quick: bool = False, rows: list[dict] | None = None) -> Path:
    """Distance of the certified optimal G_M to G_* over (R, n_w), tau 0.1, majority 200, full batch: rows k = 10
    and 100, STEP and long-tail; columns ETF and orthogonal targets, each with both anchor conventions."""
    rows = maps_targets_rows(quick) if rows is None else rows
    panels = []
    for k, profile, _, _ in TARGET_MAPS:
        for geometry in ("etf", "orthogonal"):
            for anchors in (True, False):
                sub = [r for r in rows if (r["k"], r["profile"], r["geometry"], r["prototype_anchors"])
                       == (k, profile, geometry, anchors)]
                if sub:
                    method = "BM" if sub[0]["solver"] == "BM" else "reduced IP" if profile == "step" else "IP"
                    panels.append((f"k {k}, {profile}, {'ETF' if geometry == 'etf' else 'orthogonal'} target ({method})"
                                   f"\n{'prototype anchors' if anchors else 'batch anchors only'}", sub, "ratio"))
    fig = _distance_heatmaps(panels, "optimum, full batch, tau 0.1, majority classes of 200", columns=4)
    return save_figure(fig, out / "maps_targets.png")


def maps_batching_figure(out: Path, quick: bool = False, rows: list[dict] | None = None) -> Path:
    """Distance to the ETF against n_w for counts 50x5,5x5, tau 0.1, prototype anchors: the certified full-batch
    optimum, the simulator in full batch (overlaid), and the simulator with reshuffled batches and with batch
    binding (batch size 32), mean +- std over seeds."""
    import matplotlib.pyplot as plt

    from ufm.batching_curves import batching_curves

    if rows is None:
        base = SimConfig(**{**FIG1.to_dict(), "epochs": 20 if quick else 2000, "log_every": 20 if quick else 500,
                            "lr": 0.05, "dtype": "float64"})
        rows = batching_curves(base, n_ws=(0.0, 10.0) if quick else (0.0, 1.0, 10.0, 100.0),
                               seeds=(0, 1) if quick else (0, 1, 2))
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    styles = {"solver": ("solver's optimum (full batch)", "k", "-", "s"),
              "full": ("simulator, full batch", "tab:blue", "none", "o"),
              "shuffle": ("simulator, reshuffled batches of 32", "tab:orange", "--", "^"),
              "binding": ("simulator, batch binding (32 + k)", "tab:green", ":", "v")}
    for scheme, (label, color, line, marker) in styles.items():
        sub = [r for r in rows if r["batching"] == scheme]
        if not sub:
            continue
        seeds = len(sub[0]["seeds"])
        ax.errorbar([r["n_w"] for r in sub], [r["mean"] for r in sub], yerr=[r["std"] for r in sub], color=color,
                    linestyle=line, marker=marker, capsize=3, markersize=6 if scheme != "full" else 8,
                    markerfacecolor="none" if scheme == "full" else color,
                    label=label + (f" (mean +- std, {seeds} seeds)" if seeds > 1 else ""))
        loose = [r for r in sub if r.get("status", "optimal") != "optimal"]  # a solver optimum not certified
        if loose:
            ax.plot([r["n_w"] for r in loose], [r["mean"] for r in loose], linestyle="none", marker=marker,
                    markersize=6, markerfacecolor="white", markeredgecolor=color, label="hollow: not certified")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("n_w (copies of each prototype per batch)")
    ax.set_ylabel("distance of G_M to G_* (ETF)")
    ax.set_title("k = 10, STEP 50x5,5x5, tau 0.1, prototype anchors, Adam lr 0.05", fontsize=9.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5)
    return save_figure(fig, out / "maps_batching.png")


_DRAW["maps-targets"] = maps_targets_figure
_DRAW["maps-batching"] = maps_batching_figure


# the registered figures: names and descriptions from ufm.choices.FIGURES (``ufm figures`` lists them torch-free)
FIGURES = {name: Figure(name, description, _DRAW[name]) for name, description in FIGURE_NAMES.items()}
