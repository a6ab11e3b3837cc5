"""The ``solve`` kind: one certified convex solve per point (:func:`ufm.optimum.solve_config`, collapsed features);
its run folder holds config.json, arrays.npz (the matrices), gram.png and solution.json (last).  A set of them draws
distance_vs_nw.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ufm.engine import Kind, Point
from ufm.kinds.simulate import render_distance
from ufm.spec import SolveConfig

__all__ = ["KIND", "METRICS", "run", "rows"]

METRICS = ("objective", "status", "distance", "max_angle_error", "angle_majority", "angle_minority", "angle_across",
           "solve_s")


def run(cfg: SolveConfig, folder: Path, full: bool = False, max_memory_gb: float | None = None) -> tuple[dict, Any]:
    """Solve ``cfg`` and write its run folder (solution.json last); returns ``(summary, result)``."""
    from ufm.optimum import solve_config
    from ufm.plots import gram_heatmaps, save_figure
    from ufm.runio import write_json, write_npz
    from ufm.solver.result import ARRAYS_FILE

    from ufm.provenance import thread_record

    summary, arrays, result = solve_config(cfg, full, max_memory_gb)
    summary = {**summary, **thread_record()}  # the CPU threads of its torch parts, and what chose them
    folder = Path(folder)
    write_json(folder / "config.json", cfg.to_dict())
    write_npz(folder / ARRAYS_FILE, **arrays)
    n = summary["counts"]
    certified = result.status == "optimal"
    titles = ["optimal G_M (certified)" if certified else f"G_M, NOT certified ({result.status})",
              "prototype Gram G_*" if cfg.n_w > 0 else "target G_* (no prototypes)"]
    save_figure(gram_heatmaps([result.gram, arrays["g_star"]], titles,
                              f"counts {n if len(n) <= 12 else f'k = {len(n)}'}, tau {cfg.tau:g}, n_w {cfg.n_w:g}"
                              + ("" if certified else ": the solver could not certify G_M's entries, they may be off")),
                folder / "gram.png")
    write_json(folder / "solution.json", summary)  # written last: the run is finished when it exists
    return summary, result


def rows(point: Point, folder: Path, data: dict) -> list[dict]:
    cfg = point.config
    return [{**point.values, "n_w": cfg.n_w, "tau": cfg.tau, **{k: data.get(k) for k in METRICS}, "point": point.name}]


def _check(points: Sequence[Point], finished: dict | None = None) -> None:
    for p in points:  # the counts exist (torch-free: a refusal answers before the solver is imported)
        p.config.check_counts()
    from ufm.solver import check_solve_size

    for p in points:  # counts, compositions, the size and G_* of every point before any runs
        n = p.config.class_counts()
        comp = p.config.compositions(n)
        check_solve_size(len(n), len(comp), p.config.n_w > 0, "dense")
        p.config.g_star(n)


def _run(cfg: SolveConfig, folder: Path) -> None:
    run(cfg, folder)


def _render(folder: Path, table: list[dict], grid: list[str] | None) -> None:
    render_distance(folder, table, grid, "solve")


def _work(cfg: SolveConfig) -> float:
    from ufm.threads import solver_work

    return solver_work(len(cfg.class_counts()))


KIND = Kind("solve", SolveConfig, "solution.json", _run, rows, _render, _check, work=_work)
