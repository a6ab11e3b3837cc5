"""Config dataclass helpers shared by the experiment configs."""

from __future__ import annotations

from dataclasses import field, fields


def option(default, help: str):
    """A config field with its command-line help (the CLI builds its options from these)."""
    return field(default=default, metadata={"help": help})


def check_choices(cfg, choices: dict[str, tuple[str, ...]]) -> None:
    """Each named field holds one of its allowed values."""
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"{name}={getattr(cfg, name)!r} is not one of {', '.join(allowed)}")


def check_at_least_one(cfg, names: tuple[str, ...]) -> None:
    """Each named integer field is >= 1."""
    for name in names:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")


def from_dict(cls, data: dict):
    """``cls(**data)``, refusing unknown fields (a config read back from a run folder)."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}")
    return cls(**data)
