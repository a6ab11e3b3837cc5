"""The ``collapse`` kind: one cell of a collapse map per point (:func:`ufm.collapse.collapse_cell`: the certified
collapsed optimum against the uncollapsed N x N problem); its run folder holds config.json and cell.json (its row,
last; an ill-posed cell's row has verdict "error").  A set of them also writes collapse_map.json (every row)."""

from __future__ import annotations

from pathlib import Path

from ufm.collapse import CollapseCell, _error_row, collapse_cell
from ufm.engine import Kind, Point
from ufm.runio import write_json

__all__ = ["KIND"]


def _run(cell: CollapseCell, folder: Path) -> None:
    try:
        row = collapse_cell(cell)
    except ValueError as err:  # e.g. n_w = 0 with a class of one sample: a verdict of its own, kept
        row = _error_row(cell, str(err))
    write_json(folder / "config.json", cell.to_dict())
    write_json(folder / "cell.json", row)


def _rows(point: Point, folder: Path, row: dict) -> list[dict]:
    return [{**row, "anchors": point.values["anchors"]}]


def _render(folder: Path, table: list[dict], grid: list[str] | None) -> None:
    write_json(folder / "collapse_map.json", table)


def _work(cell: CollapseCell) -> float:
    from ufm.threads import solver_work

    return solver_work(len(cell.counts), sum(cell.counts))  # its uncollapsed starts: every sample


KIND = Kind("collapse", CollapseCell, "cell.json", _run, _rows, _render, noun="cells", work=_work)
