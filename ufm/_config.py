"""Config dataclass helpers shared by the experiment configs."""

from __future__ import annotations

from dataclasses import field


def option(default, help: str):
    """A config field with its command-line help (the CLI builds its options from these)."""
    return field(default=default, metadata={"help": help})
