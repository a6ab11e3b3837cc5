"""Entry point of the ``ufm`` command."""

from __future__ import annotations

from typing import Optional

import typer

import ufm
from ._common import OnceCommand, OneLineGroup
from .check import check
from .collapse import collapse_map_command
from .maps import copies_command, design_prototypes_command, map_command
from .simulate import figures_command, simulate_command
from .prop1 import verify_prop1_command
from .solve import agree_command, solve_command
from .sweep import gather_command, solve_sweep_command, sweep_command
from .study import study_command, study_report_command
from .train import deep_figures_command, train_command

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
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    """ufm: simulate, solve and verify the geometry of SCL with fixed prototypes."""


# every command takes each single-value option once (OnceCommand): registered in one place so none can miss it
COMMANDS = {
    "simulate": simulate_command, "sweep": sweep_command, "solve": solve_command, "solve-sweep": solve_sweep_command,
    "gather": gather_command, "agree": agree_command, "verify-prop1": verify_prop1_command,
    "figures": figures_command, "train": train_command, "deep-figures": deep_figures_command, "check": check,
    "copies": copies_command, "design-prototypes": design_prototypes_command,
    "collapse-map": collapse_map_command, "map": map_command, "study": study_command,
    "study-report": study_report_command,
}
for _name, _command in COMMANDS.items():
    app.command(_name, cls=OnceCommand)(_command)


if __name__ == "__main__":  # python -m ufm.cli.main (e.g. under torchrun)
    app()
