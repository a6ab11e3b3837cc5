"""The ``map`` kind: one cell of a distance map per point (:func:`ufm.maps.distance_cell`, a certified solve); its
run folder holds config.json and cell.json (its row, last).  A set of them draws map.png (:func:`ufm.maps.render_map`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ufm.engine import Kind, Point
from ufm.maps import MapCell, distance_cell, render_map

__all__ = ["KIND"]


def _run(cell: MapCell, folder: Path) -> None:
    """One map cell: config.json, then cell.json (its row) last."""
    from ufm.runio import write_json

    row = distance_cell(cell)
    write_json(folder / "config.json", cell.to_dict())
    write_json(folder / "cell.json", row)


def _rows(point: Point, folder: Path, data: dict) -> list[dict]:
    return [{**data, "point": point.name}]


def _check(points: Sequence[Point], finished: dict | None = None) -> None:
    for p in points:  # every cell's counts and sizes, before any cell runs
        p.config.check()


def _render(folder: Path, table: list[dict], grid: list[str] | None) -> None:
    render_map(folder, table)


def _work(cell: MapCell) -> float:
    from ufm.threads import solver_work

    return solver_work(cell.k)


KIND = Kind("map", MapCell, "cell.json", _run, _rows, _render, _check, noun="cells", work=_work)
