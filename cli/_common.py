"""Helpers shared by the commands: user-error handling, output-folder options and checks, JSON output.

Conventions for every command that writes (see the README's section on errors):
- ``--out`` is checked before any compute (:func:`check_out`): not under a file, writable, and a run folder that
  already holds files is refused unless ``--overwrite`` is given (figure folders just get their PNGs replaced);
- a run folder is written into a staging folder and renamed into place (``ufm.runio.staged_dir``), so a failed
  run leaves no half-written folder;
- sizes that come from the user are checked against the memory available before allocating; ``--max-memory-gb``
  (or ``$UFM_MAX_MEMORY_GB``) overrides the limit.
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


DEFAULT_ALIASES = {"max_memory_gb": "--max-memory-gb or $UFM_MAX_MEMORY_GB"}


def flag(field: str, value: str | None = None, aliases: dict[str, str] | None = None) -> str:
    """The command-line form of a config field (and a value for it): ``--n-w``, ``--no-prototype-anchors``,
    ``--ratio 2``; ``aliases`` (``"field"`` or ``"field=value"`` -> text) for a command whose options differ."""
    aliases = {**DEFAULT_ALIASES, **(aliases or {})}
    if value is not None and f"{field}={value}" in aliases:
        return aliases[f"{field}={value}"]
    name = aliases.get(field, "--" + field.replace("_", "-"))
    if value is None:
        return name
    if value == "False":
        return "--no-" + name[2:] if name.startswith("--") else name
    return name if value == "True" else f"{name} {value.strip(chr(39))}"


def user_message(err: Exception, aliases: dict[str, str] | None = None) -> str:
    """The one line a user sees for a library error: a :class:`ufm.errors.FieldError` with its fields as flags."""
    from ufm.errors import FieldError

    if isinstance(err, FieldError):
        return err.render(lambda field, value: flag(field, value, aliases))
    return str(err)


def user_errors(fn: Callable | None = None, *, aliases: dict[str, str] | None = None) -> Callable:
    """Turn the library's ValueError/FileNotFoundError into one red line and exit code 2; field names in a
    :class:`ufm.errors.FieldError` are written as this command's flags (``aliases`` where they differ)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                limit = kwargs.get("max_memory_gb")
                if limit is not None and not (math.isfinite(limit) and limit > 0):
                    raise ValueError(f"--max-memory-gb must be a finite number of GiB > 0, got {limit}")
                return fn(*args, **kwargs)
            except (ValueError, FileNotFoundError) as err:
                from rich.text import Text

                err_console.print(Text("error: ", style="bold red") + Text(user_message(err, aliases)),
                                  highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None

        return wrapper

    return decorate(fn) if fn is not None else decorate


OVERWRITE_HELP = "replace the files of an existing run folder (without it, a folder that holds files is refused)"
MAX_MEMORY_HELP = ("refuse sizes estimated to need more than this many GiB (default: the memory available now; "
                   "also $UFM_MAX_MEMORY_GB)")


def overwrite_option() -> Any:
    return typer.Option(False, "--overwrite", help=OVERWRITE_HELP)


def max_memory_option() -> Any:
    return typer.Option(None, "--max-memory-gb", help=MAX_MEMORY_HELP)


def check_out(out: Path | str, overwrite: bool = False, run_folder: bool = True, kind: str | None = None) -> Path:
    """``--out`` checked before any compute (see ``ufm.runio.check_out_dir``)."""
    from ufm.folders import check_overwrite
    from ufm.runio import check_out_dir

    path = check_out_dir(out, "--out", overwrite=overwrite, run_folder=run_folder)
    if overwrite and kind is not None:
        check_overwrite(path, kind)
    return path


def default_out(prefix: str) -> Path:
    """``runs/<prefix>-<time>``, with a numbered suffix if that folder exists already (two runs in one second)."""
    base = Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, number = base, 1
    while path.exists():
        number += 1
        path = base.with_name(f"{base.name}-{number}")
    return path


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


def progress_bar(quiet: bool) -> Any:
    """The rich progress bar of every long command (description, bar, m of n, status, elapsed) on stderr;
    ``quiet`` (e.g. ``--json``) hides it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err_console, disable=quiet,
                    transient=True)
