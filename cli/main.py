"""Entry point of the ``ufm`` command.

:func:`run` is the console script: it builds the typer app (:func:`build`; ``ufm.cli.main.app`` builds it on first
use too) and runs it.  A Ctrl-C while the commands are still importing (seconds: torch) ends the process at once
with one line and exit code 130 (an import cut halfway can fail in other ways than KeyboardInterrupt, and nothing
has been written yet), like a Ctrl-C at any later moment (see :mod:`ufm.interrupt` and ``OneLineGroup.invoke``).
Nothing heavy is imported at the top of this module.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Optional

EARLY_INTERRUPT = "interrupted: nothing was done yet (ufm was still starting); re-run the same command"


def run() -> None:
    """The ``ufm`` console script (``ufm --version`` answers before anything heavy is imported)."""
    if sys.argv[1:] == ["--version"]:
        print(f"ufm {_package_version()}")
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:  # not where SIGINT is ignored (e.g. a background job)
        signal.signal(signal.SIGINT, _interrupted_while_starting)
    app = build()
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, previous)
    from ufm import interrupt

    interrupt.as_command()
    app()


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ufm")
    except PackageNotFoundError:  # a source tree without installation
        return "0.0.0+unknown"


def _interrupted_while_starting(signum: int, frame: Any) -> None:
    """SIGINT while importing: one line, exit code 130, now."""
    sys.stderr.write(EARLY_INTERRUPT + "\n")
    sys.stderr.flush()
    os._exit(130)


def build() -> Any:
    """The ``ufm`` typer app with every command (built once)."""
    if "app" not in _BUILT:
        _BUILT["app"] = _build()
    return _BUILT["app"]


_BUILT: dict[str, Any] = {}


def __getattr__(name: str) -> Any:  # `from ufm.cli.main import app` (or COMMANDS)
    if name == "app":
        return build()
    if name == "COMMANDS":
        return commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def commands() -> dict[str, Any]:
    """{command name: its function}: every command of ``ufm``."""
    from .check import check
    from .collapse import collapse_map_command
    from .maps import copies_command, design_prototypes_command, map_command
    from .simulate import figures_command, simulate_command
    from .prop1 import verify_prop1_command
    from .solve import agree_command, solve_command
    from .sweep import gather_command, solve_sweep_command, sweep_command
    from .study import study_command, study_report_command
    from .train import deep_figures_command, train_command

    return {
        "simulate": simulate_command, "sweep": sweep_command, "solve": solve_command, "solve-sweep": solve_sweep_command,
        "gather": gather_command, "agree": agree_command, "verify-prop1": verify_prop1_command,
        "figures": figures_command, "train": train_command, "deep-figures": deep_figures_command, "check": check,
        "copies": copies_command, "design-prototypes": design_prototypes_command,
        "collapse-map": collapse_map_command, "map": map_command, "study": study_command,
        "study-report": study_report_command,
    }


def _build() -> Any:
    import typer

    import ufm
    from ._common import OnceCommand, OneLineGroup
    from ._threads import DRAWS_ONLY, with_threads_option

    app = typer.Typer(
        cls=OneLineGroup,
        help="Neural-collapse geometry of supervised-contrastive loss with fixed prototypes.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"ufm {ufm.__version__}")
            raise typer.Exit()

    @app.callback()
    def main(
        version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                               help="print the version"),
    ) -> None:
        """ufm: simulate, solve and verify the geometry of SCL with fixed prototypes."""

    # every command takes each single-value option once (OnceCommand), and every command that computes takes
    # --threads: registered in one place so none can miss them
    for name, command in commands().items():
        app.command(name, cls=OnceCommand)(command if name in DRAWS_ONLY else with_threads_option(command))
    return app


if __name__ == "__main__":  # python -m ufm.cli.main (e.g. under torchrun)
    run()
