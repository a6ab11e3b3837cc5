"""Entry point of the ``ufm`` command."""

from __future__ import annotations

from typing import Optional

import typer

import ufm
from ._common import OnceCommand
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


app.command("simulate", cls=OnceCommand)(simulate_command)
app.command("sweep", cls=OnceCommand)(sweep_command)
app.command("solve", cls=OnceCommand)(solve_command)
app.command("solve-sweep", cls=OnceCommand)(solve_sweep_command)
app.command("gather", cls=OnceCommand)(gather_command)
app.command("agree", cls=OnceCommand)(agree_command)
app.command("verify-prop1", cls=OnceCommand)(verify_prop1_command)
app.command("figures", cls=OnceCommand)(figures_command)
app.command("train", cls=OnceCommand)(train_command)
app.command("deep-figures", cls=OnceCommand)(deep_figures_command)
app.command(cls=OnceCommand)(check)
app.command("copies", cls=OnceCommand)(copies_command)
app.command("design-prototypes", cls=OnceCommand)(design_prototypes_command)
app.command("collapse-map", cls=OnceCommand)(collapse_map_command)
app.command("map", cls=OnceCommand)(map_command)
app.command("study", cls=OnceCommand)(study_command)
app.command("study-report", cls=OnceCommand)(study_report_command)


if __name__ == "__main__":  # python -m ufm.cli.main (e.g. under torchrun)
    app()
