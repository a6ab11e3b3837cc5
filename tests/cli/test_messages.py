"""Every refusal names flags, never the library's field names (``ratio must be >= 1``, ``workers applies to
executor='local' only``, ``use loss='scl' and relu=False``, ``increase n or lower R``): one line, exit code 2.

Library errors carry their fields (:class:`ufm.errors.FieldError`); ``ufm.cli._common.user_errors`` writes them as
flags in one place.  The cases cover every command that validates a config; the check is on the class (no config
field name with an underscore, no ``=False`` or ``='...'`` in any message), not on each wording."""

import dataclasses
import re

import pytest
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.collapse import CollapseCell
from ufm.deep.config import TrainConfig
from ufm.errors import FieldError
from ufm.executors import ExecutorConfig
from ufm.maps import MapCell
from ufm.prop1 import Prop1Config
from ufm.simulate import SimConfig
from ufm.spec import CheckConfig, DesignConfig, ProblemSpec
from ufm.spec import SolveConfig

# n_w is also the paper's symbol (n_w - 1 copies, a tau x n_w map): prose, not a field name
FIELDS = sorted({f.name for cls in (SimConfig, TrainConfig, MapCell, ProblemSpec, CheckConfig, DesignConfig,
                                     CollapseCell, ExecutorConfig, Prop1Config, SolveConfig)
                 for f in dataclasses.fields(cls) if "_" in f.name} - {"n_w"})

NO_OUT = ("agree", "copies", "design-prototypes", "check")
CASES = [
    ["simulate", "--ratio", "0.5"], ["simulate", "--k", "3", "--n-major", "2", "--ratio", "4"],
    ["simulate", "--minority-fraction", "2"], ["sweep", "--grid", "ratio=0.5,2"], ["sweep", "--workers", "2"],
    ["sweep", "--partition", "x"], ["solve", "--counts", "5,5", "--n-w", "0.5"],
    ["solve", "--k", "3", "--n-major", "2", "--ratio", "4"], ["solve-sweep", "--grid", "ratio=0.5,1"],
    ["agree", "--relu"], ["agree", "--loss", "ce"], ["copies", "--counts", "5,5,1", "--target-distance", "-1"],
    ["copies", "--counts", "5,5,1", "--max-n-w", "0.5"], ["copies", "--counts", "5,5,1", "--tol", "2"],
    ["design-prototypes", "--counts", "5,5,1,1", "--n-w", "0.5"],
    ["collapse-map", "--batching", "full", "--batch-size", "4", "--k", "3", "--n-major", "4"],
    ["collapse-map", "--rel-tol", "2"], ["collapse-map", "--profile", "balanced", "--ratio", "3"],
    ["collapse-map", "--n-w", "0.5", "--anchors", "prototype"], ["collapse-map", "--tau", "inf"],
    ["map", "--k", "3", "--n-major", "2", "--ratio", "4"], ["map", "--n-w", "0.5", "--anchors", "prototype"],
    ["map", "--profile", "balanced", "--ratio", "2"], ["train", "--ratio", "0.5"], ["train", "--n-w", "0.5"],
    ["train", "--workers", "2"], ["train", "--minority-fraction", "-1"], ["check", "--k", "3", "--d", "1"],
    ["verify-prop1", "--epochs", "-1"],
]


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c) for c in CASES])
def test_every_refusal_names_flags(argv, tmp_path):
    result = CliRunner().invoke(app, argv if argv[0] in NO_OUT else [*argv, "--out", str(tmp_path / "o")])
    text = result.output.strip()
    assert result.exit_code == 2 and len(text.splitlines()) == 1 and text.startswith("error: "), text
    leaked = [n for n in FIELDS if re.search(rf"(?<![\w/.$-]){n}(?!\w)", text)]
    assert not leaked and not re.search(r"=False|='", text), (leaked, text)
    assert not (tmp_path / "o").exists()


def test_field_errors_read_as_the_library_and_as_flags():
    from ufm.cli._common import user_message

    err = FieldError("{ratio} must be >= 1; use {prototype_anchors=False} or {batching=full} (not {solver=BM})")
    assert str(err) == "ratio must be >= 1; use prototype_anchors=False or batching='full' (not solver='BM')"
    assert err.fields == ("ratio", "prototype_anchors", "batching", "solver")
    assert user_message(err) == "--ratio must be >= 1; use --anchors batch or --batching full (not --solver BM)"
    assert user_message(err, {"batching=full": "one batch"}).split("; use ")[1].startswith("--anchors batch or one batch")
    # a value the user typed keeps its braces: it is never read as a field
    from ufm.errors import literal

    err = FieldError(f"--out {literal('runs/{n_w}')} holds another run; change {{n_w}}")
    assert str(err) == "--out runs/{n_w} holds another run; change n_w" and err.fields == ("n_w",)
    assert user_message(err) == "--out runs/{n_w} holds another run; change --n-w"
    assert user_message(ValueError("plain")) == "plain"


OLD_SPELLINGS = [("simulate", ["--no-prototype-anchors"], "--anchors batch"),
                 ("solve", ["--prototype-anchors"], "--anchors prototype"),
                 ("check", ["--batch-anchors-only"], "--anchors batch"),
                 ("train", ["--no-prototype-anchors"], "--anchors batch"),
                 ("collapse-map", ["--target", "orthogonal"], "--geometry"),
                 ("collapse-map", ["--target=etf"], "--geometry"),
                 ("map", ["--anchors", "both"], "--anchors prototype --anchors batch")]


@pytest.mark.parametrize("command,args,new", OLD_SPELLINGS)
def test_an_old_spelling_is_refused_naming_the_new_one(command, args, new, tmp_path):
    """One name per idea: the anchor convention is --anchors (several values in grid commands), the target G_* is
    --geometry; an old spelling is one line naming the new one, exit 2, nothing written."""
    result = CliRunner().invoke(app, [command, *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and new in lines[0], result.output
    assert not (tmp_path / "x").exists()


def test_the_anchor_convention_is_one_option_everywhere():
    """Every command with an anchor convention names it --anchors; none offers the old flags."""
    from ufm.cli.main import COMMANDS

    import typer.main

    for name in COMMANDS:
        command = typer.main.get_command(app).commands[name]
        flags = {o for p in command.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
        assert not flags & {"--prototype-anchors", "--no-prototype-anchors", "--batch-anchors-only", "--target"}, name


def _commands():
    import typer.main

    return typer.main.get_command(app).commands


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_refuses_an_option_given_twice(name, tmp_path):
    """The last of two values never silently wins: every single-value option, of every command, given twice is
    refused in one line before anything runs (a list option collects its values instead)."""
    command = _commands()[name]
    options = [p for p in command.params if getattr(p, "param_type_name", "") == "option" and p.opts[0] != "--help"]
    single = [p for p in options if not (p.multiple or p.count)]
    assert single, name
    for param in single:
        flag = param.opts[0]
        argv = [name, flag, flag] if param.is_flag else [name, f"{flag}=1", flag, "2"]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert result.output.strip() == f"error: {flag} is given twice; give it once", (argv, result.output)
    pairs = [p for p in single if p.is_flag and p.secondary_opts]
    for param in pairs:
        result = CliRunner().invoke(app, [name, param.opts[0], param.secondary_opts[0]])
        assert result.exit_code == 2 and "are both given; give one of them" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_list_options_still_collect_their_values():
    from ufm.cli._common import repeated_option

    command = _commands()["simulate"]
    assert repeated_option(command, ["--n-w", "0", "--n-w", "10", "--tau", "0.1", "--tau", "1"]) is None
    assert repeated_option(command, ["--out", "--k", "--k", "3"]) is None  # "--k" as the value of --out
    assert repeated_option(command, ["--k", "3", "--", "--k"]) is None  # after "--": arguments, not options


def _numeric(param) -> bool:
    """An int or float option (click's ParamType, or typer's own type descriptor where it vendors click)."""
    if getattr(param, "type", None) is not None:
        return getattr(param.type, "name", "") in ("integer", "float")
    return getattr(getattr(param, "type_descriptor", None), "annotation", None) in (int, float)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_usage_error_is_one_line(name):
    """An unknown option, a malformed number or a missing value: one ``error:`` line naming the option, exit 2 (not
    click's usage box), for every command and for ``ufm`` itself."""
    command = _commands()[name]
    options = [p for p in command.params if getattr(p, "param_type_name", "") == "option" and not p.is_flag]
    numeric = [p for p in options if _numeric(p)]
    cases = [[name, "--no-such-option"]] + ([[name, options[0].opts[0]]] if options else [])  # a value missing
    cases += [[name, numeric[0].opts[0], "abc"]] if numeric else []
    for argv in cases:
        result = CliRunner().invoke(app, argv)
        text = result.output.strip()
        assert result.exit_code == 2 and len(text.splitlines()) == 1 and text.startswith("error: "), (argv, text)
        assert argv[1] in text and f"ufm {name} --help" in text, (argv, text)


def test_ufm_itself_refuses_an_unknown_command_in_one_line():
    for argv in (["no-such-command"], ["--no-such-option"]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2 and result.output.strip().splitlines() == [result.output.strip()], result.output
        assert argv[0] in result.output and "ufm --help" in result.output


EXECUTOR_COMMANDS = sorted(n for n, c in _commands().items() if any(p.opts[0] == "--executor" for p in c.params
                                                                     if getattr(p, "param_type_name", "") == "option"))


@pytest.mark.parametrize("name", EXECUTOR_COMMANDS)
def test_executor_options_without_effect_are_refused_even_at_their_defaults(name, tmp_path):
    """--time-min 60 is the default, yet typed with the inline executor it is an option silently ignored: refused,
    like --workers with any executor but local; the executor's own errors name flags."""
    assert set(EXECUTOR_COMMANDS) >= {"sweep", "solve-sweep", "map", "collapse-map", "train"}
    out = ["--out", str(tmp_path / "o")]
    for argv, needle in ((["--time-min", "60"], "--time-min has no effect with the inline executor"),
                         (["--executor", "local", "--mem-gb", "0"], "--mem-gb has no effect with the local executor"),
                         (["--workers", "0"], "--workers has no effect with the inline executor"),
                         (["--executor", "local", "--no-wait"], "--no-wait applies to --executor slurm only"),
                         (["--executor", "slurm", "--mem-gb", "-1"], "--mem-gb must be a finite number >= 0"),
                         (["--executor", "slurm", "--slurm-extra", "qos"], "--slurm-extra items are KEY=VALUE"),
                         (["--executor", "cloud"], "--executor 'cloud' is not one of inline, local, slurm")):
        result = CliRunner().invoke(app, [name, *argv, *out])
        assert result.exit_code == 2 and result.output.startswith("error: "), result.output
        assert needle in result.output and len(result.output.strip().splitlines()) == 1, (argv, result.output)
    assert not (tmp_path / "o").exists()
