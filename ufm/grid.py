"""Grids of configs: parsing ``FIELD=V1,V2,...``, the points of a grid and their folder names.

Shared by every grid the tool runs (``ufm sweep``/``solve-sweep``/``map`` through :mod:`ufm.sweep`, and the training
grids of ``ufm train --grid``); it knows no kind of config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Sequence

from ufm._config import first_repeat

__all__ = ["parse_grid", "Point", "point_label", "config_hash", "without_effect_everywhere", "refuse_without_effect"]


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_value(name: str, text: str, tp: Any, what: str = "grid") -> Any:
    """One grid value of field ``name`` (type ``tp``) from text; a tuple field gets a one-element tuple."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        return (_parse_value(name, text, args[0], what),)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if text.lower() in ("none", "null", ""):
            return None
        return _parse_value(name, text, next(a for a in args if a is not type(None)), what)
    try:
        if tp is bool:
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a finite number"}[tp]
        raise ValueError(f"{what} value {text!r} for {name} is not {kind}") from None
    if not text:
        raise ValueError(f"{what} field {name} has an empty value")
    return text


def parse_grid(specs: Sequence[str], cls: type, what: str = "grid") -> dict[str, tuple]:
    """``["ratio=1,10", "k=5,10"]`` -> ``{"ratio": (1.0, 10.0), "k": (5, 10)}``, values parsed by the type of
    the config field (a tuple field such as n_w gets one-element tuples: one value per point).  ``what``: what
    errors call a spec's field (``ufm study`` passes ``--set``)."""
    hints = _field_types(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    grid: dict[str, tuple] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ValueError(f"a grid is FIELD=V1,V2,... (e.g. ratio=1,10,100), got {spec!r}")
        if name not in fields:
            raise ValueError(f"unknown {what} field {name!r}; {cls.__name__} has {', '.join(fields)}")
        if name in grid:
            raise ValueError(f"{what} field {name} is given twice; put all its values in one FIELD=V1,V2,...")
        parsed = tuple(_parse_value(name, v.strip(), hints[name], what) for v in values.split(","))
        if first_repeat(parsed) is not None:
            raise ValueError(f"{what} field {name} repeats a value: {values}")
        grid[name] = parsed
    return grid


@dataclass(frozen=True)
class Point:
    """One grid point: its folder ``name``, its grid ``values`` and its full ``config``."""

    name: str
    values: dict
    config: Any


def _plain(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) and len(value) == 1 else value


def point_label(values: dict) -> str:
    """A folder-safe name for a grid point's values: ``ratio=10,tau=0.1``."""
    return ",".join(f"{name}={_fmt(value)}" for name, value in values.items())


def _fmt(value: Any) -> str:
    value = _plain(value)
    text = format(value, "g") if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)


def config_hash(kind: str, config: Any) -> str:
    """First 8 hex digits of the SHA-256 of the kind and the config (canonical JSON)."""
    text = json.dumps({"kind": kind, "config": config.to_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def without_effect_everywhere(configs: Sequence[Any], names: Sequence[str]) -> dict[str, str]:
    """The fields among ``names`` that have no effect in any of ``configs`` (each config's ``without_effect()``),
    with the reason in the first: setting them, or gridding over them, changes no run."""
    out = {}
    for name in names:
        reasons = [c.without_effect().get(name) for c in configs]
        if configs and all(reasons):
            out[name] = reasons[0]
    return out


def refuse_without_effect(configs: Sequence[Any], grid: dict[str, Sequence], given: Sequence[str] = (),
                          what: str = "points") -> None:
    """Refuse (FieldError) a grid field without effect in every config (its values would run identical ``what``)
    and a field in ``given`` (set by the user) without effect in every config (silently ignored): the one place
    every grid (sweeps, maps, training grids) checks "no effect at every point"."""
    from ufm.errors import FieldError

    for name, reason in without_effect_everywhere(configs, list(grid)).items():
        raise FieldError(f"grid field {name} has no effect {reason}: its {len(grid[name])} values would run "
                         f"identical {what}; drop it from the grid (or set what gives it an effect)")
    for name, reason in without_effect_everywhere(configs, [n for n in given if n not in grid]).items():
        raise FieldError(f"{{{name}}} has no effect {reason} at any point of the grid; drop it")
