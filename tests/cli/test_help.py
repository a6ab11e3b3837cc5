"""Every command's --help fits a standard 80-column terminal: each option name is shown whole."""

import re

import pytest
import typer.main
from typer.testing import CliRunner

from ufm.cli.main import COMMANDS, app


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_at_80_columns_shows_every_option_whole(name):
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    command = typer.main.get_command(app).commands[name]
    flags = [o for p in command.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))
             if o.startswith("--")]
    shown = set(re.findall(r"--[a-z0-9][a-z0-9-]*", result.output))
    assert [f for f in flags if f not in shown] == [], result.output
