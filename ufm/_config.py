"""Config dataclass helpers shared by the experiment configs.

Validation happens where a config is built (``__post_init__``), before any compute:

- :func:`check_values` walks the fields by their type hints: every ``float`` (or tuple of floats) must be
  finite, every ``int`` a true integer that fits in int64, and the explicit ``ranges`` hold;
- :func:`check_choices` / :func:`check_at_least_one` for names and counts;
- a config's ``without_effect()`` lists the fields that do nothing in it, each with its reason (a FieldError
  fragment: ``"with {n_w} = 0 (no prototypes)"``); the CLI refuses them when typed.

Every message is a :class:`ufm.errors.FieldError` naming its fields as placeholders (``str(err)`` shows the field,
the CLI its flag ``--field-name``, rendered in one place) and says what to change; a value the user gave goes
through :func:`ufm.errors.literal`.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Iterable

from ufm.errors import FieldError, literal

__all__ = ["option", "Range", "check_values", "check_choices", "check_at_least_one", "check_device_name",
           "from_dict", "differences", "first_repeat"]

INT64_MAX = 2**63 - 1


def option(default, help: str):
    """A config field with its command-line help (the CLI builds its options from these)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Range:
    """An interval for a numeric field: ``low`` / ``high`` (None: unbounded), each end open or closed."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE = Range(0, None, low_open=True)
NON_NEGATIVE = Range(0)
UNIT = Range(0, 1)


def _kind(tp: Any) -> tuple[type | None, bool]:
    """(scalar type, is_tuple) of a field's type hint: ``float``, ``tuple[float, ...]``, ``float | None``..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or (origin is not None and type(None) in args):
        inner = [a for a in args if a is not type(None)]
        return _kind(inner[0]) if len(inner) == 1 else (None, False)
    if origin is tuple:
        return (args[0] if args else None), True
    return (tp if tp in (int, float, bool, str) else None), False


def check_values(cfg: Any, ranges: dict[str, Range] | None = None) -> None:
    """Every float field finite, every int field an integer in int64, each ``ranges[name]`` satisfied.

    Driven by the dataclass's type hints, so a new float field is checked for finiteness without being
    listed; tuple fields are checked element by element; ``None`` (an unset optional) is skipped.
    """
    hints = typing.get_type_hints(type(cfg))
    ranges = ranges or {}
    for f in fields(cfg):
        kind, is_tuple = _kind(hints[f.name])
        value = getattr(cfg, f.name)
        if value is None:
            continue
        values = value if is_tuple and isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if kind is float:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise FieldError(f"{{{f.name}}} must be a number, got {literal(repr(v))}")
                if not math.isfinite(v):
                    raise FieldError(f"{{{f.name}}} must be a finite number, got {v}")
            elif kind is int:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise FieldError(f"{{{f.name}}} must be an integer, got {literal(repr(v))}")
                if abs(v) > INT64_MAX:
                    raise FieldError(f"{{{f.name}}} = {v} is out of range; use a value below 2^63")
            elif kind is bool and not isinstance(v, bool):
                raise FieldError(f"{{{f.name}}} must be true or false, got {literal(repr(v))}")
            elif kind is str and not isinstance(v, str):
                raise FieldError(f"{{{f.name}}} must be a string, got {literal(repr(v))}")
            if f.name in ranges and not ranges[f.name].holds(v):
                raise FieldError(f"{{{f.name}}} must be {ranges[f.name]}, got {v:g}")
    unknown = set(ranges) - {f.name for f in fields(cfg)}
    if unknown:  # a typo in a config's own range table is a bug, not a user error
        raise AssertionError(f"ranges for unknown fields {sorted(unknown)}")


def check_choices(cfg, choices: dict[str, tuple[str, ...]]) -> None:
    """Each named field holds one of its allowed values."""
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise FieldError(f"{{{name}}} {literal(repr(getattr(cfg, name)))} is not one of {', '.join(allowed)}")


def check_at_least_one(cfg, names: tuple[str, ...]) -> None:
    """Each named integer field is >= 1."""
    for name in names:
        if getattr(cfg, name) < 1:
            raise FieldError(f"{{{name}}} must be >= 1, got {getattr(cfg, name)}")


def check_device_name(name: str, field_name: str = "device") -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether CUDA is present is checked when the device is resolved)."""
    if name in ("auto", "cpu", "cuda"):
        return
    head, _, index = name.partition(":")
    if head == "cuda" and index.isdigit():
        return
    raise FieldError(f"{{{field_name}}} {literal(repr(name))} is not a device ufm runs on; use auto, cpu, cuda or cuda:N")


def first_repeat(values: Iterable[Any], key: Any = None) -> Any:
    """The first value of ``values`` that an earlier one equals (compared by ``key(value)``, default the value
    itself), else None: the one check behind every "repeats a value" / "is given twice" refusal."""
    seen = set()
    for value in values:
        k = value if key is None else key(value)
        if k in seen:
            return value
        seen.add(k)
    return None


def from_dict(cls, data: dict):
    """``cls(**data)``, refusing unknown fields (a config read back from a run folder)."""
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__} must be a JSON object of fields, got {type(data).__name__}")
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}")
    return cls(**data)


def differences(saved: dict, config: Any, ignore: Iterable[str] = (), template: bool = False) -> list[str]:
    """The fields where a saved config (a folder's or a record's JSON) differs from ``config``, each as
    ``name (saved X, asked Y)``; empty when they agree.  ``saved`` is read through ``config``'s class (so a config
    saved before a field with a default was added still agrees); fields in ``ignore`` (where it ran) are skipped.
    ``template``: each as a :class:`ufm.errors.FieldError` fragment, ``{name} (saved X, asked Y)`` (the command line
    shows the field as its flag).  Raises ValueError when ``saved`` is not such a config."""
    import json

    try:
        old = type(config).from_dict(saved).to_dict()
    except TypeError as err:
        raise ValueError(f"not a {type(config).__name__}: {err}") from None
    old, new = (json.loads(json.dumps(d)) for d in (old, config.to_dict()))  # tuples and lists compare alike
    skip = set(ignore)
    name = (lambda k: "{" + k + "}") if template else (lambda k: k)
    value = literal if template else str
    return [f"{name(k)} (saved {value(repr(old[k]))}, asked {value(repr(v))})" for k, v in new.items()
            if k not in skip and old[k] != v]


def check_gram_source(gram_file, geometry: str, default_geometry: str = "etf") -> None:
    """G_* comes from ``gram_file`` or from ``geometry``, not both (a non-default geometry with a file is a conflict)."""
    if gram_file is None:
        return
    if not str(gram_file).strip():
        raise FieldError("{gram_file} is empty; give the path of a k x k Gram file or leave it unset")
    if geometry != default_geometry:
        raise FieldError(f"{{geometry={literal(repr(geometry))}}} and {{gram_file}} both give G_*; drop one of them")
