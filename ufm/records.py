"""The record of a set folder (its ``config.json``): what it holds, and what differs from the set asked for.

A product grid records its kind, base config and grid; a list of points records every point's values and config;
both list the point names.  :func:`claim` refuses a folder holding another kind or another set, naming the fields
that differ (as :class:`ufm.errors.FieldError` placeholders: the command line shows its flags).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Sequence

from ufm._config import differences
from ufm.errors import FieldError, literal
from ufm.folders import check_overwrite, describe, identify
from ufm.grid import Point, _fmt
from ufm.registry import FOLDERS
from ufm.runio import file_list, read_json

__all__ = ["record", "differences_of", "claim", "merged"]


def record(name: str, planned: Sequence[Point], record: dict | None = None) -> dict:
    """What config.json of a set folder holds: the kind, the point names and either the base config and grid (a
    product) or every point's values and config (a list)."""
    if record is None:
        record = {"values": [p.values for p in planned], "configs": [p.config.to_dict() for p in planned]}
    return json.loads(json.dumps({"kind": name, **record, "points": [p.name for p in planned]}))


def differences_of(old: dict, new: dict, k: Any) -> list[str]:
    """What differs between a set folder's record and the set asked for, as FieldError fragments."""
    if old.get("kind") != new.get("kind"):
        return [f"kind of points (saved {literal(old.get('kind'))}, asked {new['kind']})"]
    if "base" in old and "base" in new:
        try:
            out = differences(old["base"], k.config.from_dict(new["base"]), template=True)
        except (ValueError, TypeError) as err:
            out = [literal(err)]
        grids = (old.get("grid") or {}, new.get("grid") or {})
        for f in dict.fromkeys([*grids[0], *grids[1]]):
            if grids[0].get(f) != grids[1].get(f):
                out.append(f"values of {{{f}}} (saved {literal(grids[0].get(f, '-'))}, asked "
                           f"{literal(grids[1].get(f, '-'))})")
        return out
    saved = dict(zip(old.get("points", []), old.get("configs", [])))
    asked = dict(zip(new.get("points", []), new.get("configs", [])))
    labels = {**dict(zip(old.get("points", []), old.get("values", []))), **dict(zip(new["points"], new["values"]))}

    def some(names: list[str], how: str) -> list[str]:
        if not names:
            return []
        first = ", ".join(f"{f}={_fmt(v)}" for f, v in labels.get(names[0], {}).items() if v != "") or names[0]
        return [f"{len(names)} point(s) {how} (first: {literal(first)})"]

    out = some([n for n in saved if n not in asked], "there that this run does not ask for")
    out += some([n for n in asked if n not in saved], "asked that it does not hold")
    return out + [f"point {literal(n)}: {'; '.join(differences(saved[n], k.config.from_dict(c), template=True))}"
                  for n, c in asked.items() if n in saved and saved[n] != c]


def claim(folder: Path, k: Any, record: dict, overwrite: bool | None, extend: bool = False) -> None:
    """Refuse a folder holding another kind, or another set (naming what differs) unless ``overwrite``; ``extend``:
    a list set may add points to the folder's (a study given more seeds)."""
    holds = folder.is_dir() and any(folder.iterdir())
    if not holds:
        return
    found, what = identify(folder), FOLDERS[k.set_folder].what
    if found != k.set_folder:
        if overwrite:
            check_overwrite(folder, k.set_folder)  # names what --overwrite never replaces
        if found is None:
            raise ValueError(f"--out {folder} holds files no ufm command wrote ({file_list(folder)}); it is not {what}: "
                             "choose another --out")
        raise ValueError(f"{folder} is {describe(folder)}, not {what}; use another --out")
    if extend:
        return
    old = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    differ = differences_of(old, record, k)
    if not differ:
        return
    if not overwrite:
        advice = " (or pass --overwrite to replace it)" if overwrite is False else ""
        raise FieldError(f"{literal(folder)} holds {FOLDERS[k.set_folder].what} with other settings: "
                         f"{'; '.join(differ)}; re-run it with the same options, or use another --out{advice}")
    for child in folder.iterdir():  # the same kind of folder, replaced as asked
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def merged(folder: Path, points_dir: str, record: dict) -> dict:
    """A list record extended by the points the folder's record already lists whose folders are still there."""
    try:
        old = read_json(folder / "config.json")
        listed = list(zip(old["points"], old["values"], old["configs"], strict=True))
    except (OSError, KeyError, TypeError, ValueError):
        return record
    keep = [(n, v, c) for n, v, c in listed if n not in record["points"] and (folder / points_dir / n).is_dir()]
    return {**record, "points": [*(n for n, _, _ in keep), *record["points"]],
            "values": [*(v for _, v, _ in keep), *record["values"]],
            "configs": [*(c for _, _, c in keep), *record["configs"]]}
