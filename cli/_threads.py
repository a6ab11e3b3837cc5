"""``--threads``: the option of every command that computes (added where the app is built, ``cli/main.py``), and
:func:`computing`, the threads of a command's own work outside the engine's runs.  The rule is
:mod:`ufm.threads`'s; nothing heavy is imported here."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

import typer

from ._common import print_error, user_message

THREADS_HELP = ("CPU threads of torch (default or 0: chosen for the problem size and the cores other processes leave "
                "free, or $OMP_NUM_THREADS, or SLURM's CPUs per task; also $UFM_THREADS)")
DRAWS_ONLY = ("gather", "deep-figures", "study-report")  # commands that compute nothing: no --threads


def with_threads_option(fn: Callable) -> Callable:
    """Decorator: the command takes ``--threads N`` (0 or unset: chosen, see :mod:`ufm.threads`), refused below 0
    with one line (exit code 2); within the command N is this process's explicit request (``$UFM_THREADS``, which
    worker processes and SLURM jobs inherit)."""
    sig = inspect.signature(fn)
    own = "threads" in sig.parameters  # a command that judges the option itself (e.g. where it has no effect)
    option = typer.Option(None, "--threads", help=THREADS_HELP, show_default=False)
    param = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[int])

    @functools.wraps(fn)
    def wrapper(*args: Any, threads: Optional[int] = None, **kwargs: Any) -> Any:
        from ufm.threads import check_request, requested

        try:
            check_request(threads)
        except ValueError as err:
            print_error(user_message(err))
            raise typer.Exit(2) from None
        with requested(threads):
            return fn(*args, **kwargs, **({"threads": threads} if own else {}))

    if not own:
        wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), param])
    return wrapper


def computing(work: float | None = None) -> None:
    """Before a command computes outside the runs of :mod:`ufm.engine` (which choose per run): torch's threads for
    ``work`` multiply-adds per step (None: unknown), see :func:`ufm.threads.configure`."""
    from ufm.threads import configure

    configure(work)
