"""Helpers shared by the commands: user-error handling and JSON output."""

from __future__ import annotations

import functools
import json
import math
from typing import Any, Callable

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def user_errors(fn: Callable) -> Callable:
    """Turn the library's ValueError/FileNotFoundError into one red line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError) as err:
            err_console.print(f"[bold red]error:[/bold red] {err}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (NaN/inf become null)."""
    typer.echo(json.dumps(_jsonable(data), indent=2))
