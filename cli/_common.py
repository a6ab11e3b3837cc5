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
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from typer.core import TyperCommand, TyperGroup

console = Console()
err_console = Console(stderr=True)


DEFAULT_ALIASES = {"max_memory_gb": "--max-memory-gb or $UFM_MAX_MEMORY_GB", "prototype_anchors": "--anchors",
                   "prototype_anchors=True": "--anchors prototype", "prototype_anchors=False": "--anchors batch"}
# old spellings: refused with one line naming the new one (CHANGELOG, 0.2)
RENAMED = {"--prototype-anchors": "--anchors prototype", "--no-prototype-anchors": "--anchors batch",
           "--batch-anchors-only": "--anchors batch", "--target": "--geometry"}
NO_LIMIT_OPTION = {"max_memory_gb": "$UFM_MAX_MEMORY_GB"}  # a command without --max-memory-gb: the variable alone


def flag(field: str, value: str | None = None, aliases: dict[str, str] | None = None) -> str:
    """The command-line form of a config field (and a value for it): ``--n-w``, ``--no-prototype-anchors``,
    ``--ratio 2``: the one place a field becomes command-line text.  ``aliases`` (``"field"`` or ``"field=value"``
    -> text) for a command whose options differ; an alias ending in ``=`` takes the value after it
    (``{"epochs": "--set epochs="}``: ``--set epochs=2``).  A command's alias of a field replaces the default
    aliases of that field's values."""
    own = aliases or {}
    table = {**{k: v for k, v in DEFAULT_ALIASES.items() if k.partition("=")[0] not in own}, **own}
    if value is not None and f"{field}={value}" in table:
        return table[f"{field}={value}"]
    name = table.get(field, "--" + field.replace("_", "-"))
    if name.endswith("="):
        return name + value.strip(chr(39)) if value is not None else name[:-1]
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
    """Turn the library's ValueError/FileNotFoundError into one red line and exit code 2 (1 for an
    :class:`ufm.errors.UncertifiedError`: the input was fine, the answer cannot be vouched for); field names in a
    :class:`ufm.errors.FieldError` are written as this command's flags (``aliases`` where they differ)."""

    def decorate(fn: Callable) -> Callable:
        import inspect

        # advice names only the options this command has: without --max-memory-gb, the limit is the variable's
        own = {} if "max_memory_gb" in inspect.signature(fn).parameters else NO_LIMIT_OPTION
        names = {**own, **(aliases or {})}

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                limit = kwargs.get("max_memory_gb")
                if limit is not None and not (math.isfinite(limit) and limit > 0):
                    raise ValueError(f"--max-memory-gb must be a finite number of GiB > 0, got {limit}")
                return fn(*args, **kwargs)
            except (ValueError, FileNotFoundError) as err:
                print_error(user_message(err, names))
                raise typer.Exit(getattr(err, "exit_code", 2)) from None

        return wrapper

    return decorate(fn) if fn is not None else decorate


OVERWRITE_HELP = ("replace an existing run folder of this command (without it, a folder that holds files is refused; "
                  "a folder of anything else is never replaced)")
MAX_MEMORY_HELP = ("refuse sizes estimated to need more than this many GiB (default: the memory available now; "
                   "also $UFM_MAX_MEMORY_GB)")


def overwrite_option() -> Any:
    return typer.Option(False, "--overwrite", help=OVERWRITE_HELP)


def max_memory_option() -> Any:
    return typer.Option(None, "--max-memory-gb", help=MAX_MEMORY_HELP)


def check_out(out: Path | str, overwrite: bool = False, run_folder: bool = True, kind: str | None = None) -> Path:
    """``--out`` checked before any compute (see ``ufm.runio.check_out_dir``)."""
    from ufm.folders import check_overwrite
    from ufm.runio import check_out_dir, refuse_files

    path = check_out_dir(out, "--out", overwrite=True, run_folder=run_folder)  # all but "holds files"
    if kind is not None:
        check_overwrite(path, kind)  # a folder of another kind, or of files no ufm command wrote: never replaced
    if run_folder and not overwrite:
        refuse_files(path)
    return path


def check_writable(out: Path | str | None) -> None:
    """``--out`` of a command whose engine checks the folder in full once the points are planned: the part that needs
    no planning (a file, under a file, cannot be written) before the computing modules are imported."""
    from ufm.runio import check_out_dir

    if out is not None:
        check_out_dir(out, "--out", overwrite=True, run_folder=False)


def print_error(message: str) -> None:
    """The one line a user sees for bad input, on stderr: ``error: <message>``."""
    from rich.text import Text

    err_console.print(Text("error: ", style="bold red") + Text(message), highlight=False, soft_wrap=True)


def check_figure_out(out: Path | str) -> Path:
    """``--out`` of a command that writes figures only: a folder of its own (named PNGs in it are replaced), never a
    folder another command wrote (its run would end up holding another command's files)."""
    from ufm.folders import check_own_folder

    return check_own_folder(out)


def refuse_repeats(values: Sequence[Any], what: str) -> None:
    """Refuse a list option that names one thing twice (its work would be done twice, or once silently)."""
    from ufm._config import first_repeat

    # ./run and run are one folder
    value = first_repeat(values, key=lambda v: v.resolve() if isinstance(v, Path) else v)
    if value is not None:
        raise ValueError(f"{what} {value} is given twice; give each once")


def repeated_option(command: Any, args: Sequence[str]) -> str | None:
    """What to change when ``args`` give an option of the click ``command`` twice (``--k 3 --k 4``, or ``--reduce``
    and ``--no-reduce``) that does not collect values (``multiple``); None when none is."""
    options = [p for p in command.params if getattr(p, "param_type_name", "") == "option"]
    owner = {o: p for p in options for o in (*p.opts, *p.secondary_opts)}
    seen: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i] != "--":
        flag = args[i].split("=", 1)[0] if args[i].startswith("--") else args[i]
        param = owner.get(flag)
        if param is not None:
            if not (param.multiple or param.count):
                if param.name in seen:
                    first = seen[param.name]
                    return (f"{flag} is given twice; give it once" if first == flag else
                            f"{first} and {flag} are both given; give one of them")
                seen[param.name] = flag
            if not param.is_flag and "=" not in args[i]:
                i += 1  # its value, whatever it looks like
        i += 1
    return None


def renamed_option(args: Sequence[str]) -> str | None:
    """What to type instead when ``args`` use an option's old spelling (:data:`RENAMED`); None otherwise."""
    for arg in map(str, args):
        if arg == "--":
            break
        old = arg.split("=", 1)[0]
        if old in RENAMED:
            return f"{old} is now spelled {RENAMED[old]} (one option names each idea; see the CHANGELOG)"
    return None


def _usage_error() -> type:
    """click's UsageError (typer may vendor its own click): the base of ``typer.BadParameter`` of that name."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _one_line(ctx: Any, err: Exception, name: str) -> None:
    """A malformed value, an unknown option or command: one ``error:`` line and exit code 2, not a usage box."""
    message = " ".join(err.format_message().split())
    if message:  # (none when no arguments were given: the help was shown, there is nothing wrong to report)
        print_error(f"{message} (see {name} --help)")
    ctx.exit(2)


class OnceCommand(TyperCommand):
    """A command whose single-value options may be given once: a repeated one is refused (exit code 2) rather than
    the last value silently winning over the first.  Every other usage error is one line too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        renamed = renamed_option(args)
        repeated = renamed or repeated_option(self, args)
        if repeated is not None:
            print_error(repeated)
            ctx.exit(2)
        try:
            return super().parse_args(ctx, args)
        except _usage_error() as err:
            _one_line(ctx, err, f"ufm {self.name}")

    def invoke(self, ctx: Any) -> Any:
        """Run the command with the time estimates of its long loops (``ufm.eta``) shown on stderr."""
        from ufm.eta import reporting

        with reporting(show_estimate):
            return super().invoke(ctx)


def print_interrupted(err: KeyboardInterrupt) -> None:
    """The one line a user sees for Ctrl-C, on stderr: what was kept and how to continue
    (:meth:`ufm.interrupt.Interrupted.line`, filled in by the layers the interrupt passed).  A torchrun rank other
    than 0 stays quiet (rank 0 speaks for the run)."""
    from rich.text import Text

    from ufm.interrupt import as_interrupted

    if int(os.environ.get("RANK", "0") or 0) > 0:
        return
    err_console.print(Text(as_interrupted(err).line()), highlight=False, soft_wrap=True)


class OneLineGroup(TyperGroup):
    """The ``ufm`` group: an unknown command or a malformed option of its own is one ``error:`` line (exit 2); Ctrl-C
    at any moment of any command is one ``interrupted:`` line (:func:`print_interrupted`) and exit code 130."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as err:
            from ufm import interrupt

            interrupt.ending()  # in the ufm process: a second Ctrl-C cannot cut the line short
            print_interrupted(err)
            ctx.exit(130)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except _usage_error() as err:
            _one_line(ctx, err, "ufm")

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except _usage_error() as err:
            _one_line(ctx, err, "ufm")


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


def show_estimate(estimate: Any) -> None:
    """A long loop's time estimate (``ufm.eta.Estimate``): one line on stderr (a plain line in a log or a pipe)."""
    from rich.text import Text

    err_console.print(Text(estimate.line()), highlight=False, soft_wrap=True)


class TimeLeftColumn(ProgressColumn):
    """Time left: the announced estimate (``ufm.eta``) counting down, else rich's projection from the bar's pace."""

    def __init__(self) -> None:
        super().__init__()
        self.fallback = TimeRemainingColumn()

    def render(self, task: Any) -> Any:
        from rich.text import Text

        from ufm.eta import format_duration

        ends = task.fields.get("ends_at")
        if ends is None:
            return self.fallback.render(task)
        left = int(max(0.0, ends - time.time()))
        clock = f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}" if left < 100 * 3600 else format_duration(left)
        return Text(f"~{clock}", style="progress.remaining")


class EstimateProgress(Progress):
    """A rich Progress that, while open, takes the time estimates of the loops run inside it (``ufm.eta``): each is
    printed (:func:`show_estimate`), and that of the whole work (not of a loop inside another) counts down in the
    time-left column of its unfinished tasks and of those added later."""

    def __enter__(self) -> "EstimateProgress":
        from ufm.eta import reporting

        super().__enter__()
        self._reporting = reporting(self.announce)
        self._reporting.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._reporting.__exit__(*exc)
        super().__exit__(*exc)

    ends_at: float | None = None  # the whole work's estimated end, once announced

    def announce(self, estimate: Any) -> None:
        show_estimate(estimate)
        if not estimate.inner:
            self.ends_at = estimate.ends_at
            for task in self.tasks:
                if not task.finished:
                    self.update(task.id, ends_at=estimate.ends_at)

    def add_task(self, *args: Any, **fields: Any) -> Any:
        if self.ends_at is not None:  # e.g. the next run of a preset: the set's estimate goes on
            fields.setdefault("ends_at", self.ends_at)
        return super().add_task(*args, **fields)


def progress_bar(quiet: bool) -> Any:
    """The rich progress bar of every long command (description, bar, m of n, status, elapsed, time left) on stderr
    when it is a terminal; ``quiet`` (e.g. ``--json``) hides it, and so does a stderr that is a file or a pipe (a log
    would get a stray blank line from the bar, e.g. before an error line).  The time estimates of the loops run
    inside it (``ufm.eta``) are printed as one line each, in a terminal and in a log alike."""
    return EstimateProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeLeftColumn(),
                            console=err_console, disable=quiet or not err_console.is_terminal, transient=True)


def points_done(bar: Any, label: str, total: int | None = None) -> Callable[[str, bool], None]:
    """A progress row counting the points of a set as they end: the engine's ``done(name, ok)`` callback."""
    task = bar.add_task(label, total=total, status="")
    finished = {"n": 0}

    def done(name: str, ok: bool) -> None:
        finished["n"] += 1
        bar.update(task, completed=finished["n"], status=f"{name} {'done' if ok else 'FAILED'}")

    return done
