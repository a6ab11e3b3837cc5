"""Shared by the command tests: invoke ``ufm`` and assert a one-line refusal."""

from typer.testing import CliRunner

from ufm.cli.main import app


def refused(args, *needles, env=None) -> str:
    """Run ``ufm *args``; assert exit code 2 with one ``error:`` line holding every needle; return that line."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    text = result.output.strip()
    assert result.exit_code == 2, (args, text)
    assert text.startswith("error:") and len(text.splitlines()) == 1 and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    return text
