"""One place turns a config field into command-line text (``cli._common.flag``, through ``user_errors``): no other
module of the CLI writes flags by hand, and a value the user typed is printed as typed, braces included."""

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from tests._cli import refused
from ufm.cli import _common
from ufm.errors import FieldError, literal
from ufm.imbalance import parse_counts

CLI = Path(_common.__file__).resolve().parent

# ways of turning a field name into a flag (or rewriting one in a message) by hand
HAND_RENDERINGS = re.compile(r"""replace\(\s*["']_["']\s*,\s*["']-["']\s*\)|flag_names|re\.sub|f["']--\{|["']--["']\s*\+""")


def _outside_flag(path: Path) -> str:
    """The module's source without the body of ``_common.flag`` (the one renderer)."""
    text = path.read_text()
    if path.name != "_common.py":
        return text
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == "flag")
    lines = text.splitlines()
    return "\n".join(lines[:node.lineno - 1] + lines[node.end_lineno:])


def test_no_cli_module_renders_flags_by_hand():
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) > 10  # the command modules are all read
    offenders = {p.name: m.group(0) for p in modules for m in [HAND_RENDERINGS.search(_outside_flag(p))] if m}
    assert offenders == {}
    # and the one renderer is where the rule says it is
    assert HAND_RENDERINGS.search(inspect.getsource(_common.flag))


def test_no_library_module_writes_a_flag_from_a_field_name():
    import ufm

    library = Path(ufm.__file__).resolve().parent
    pattern = re.compile(r"""flag_names|f["']--\{|["']--["']\s*\+""")
    assert pattern.search('"--" + name') and pattern.search("f'--{name}'")
    modules = sorted(p for p in library.rglob("*.py") if "cli" not in p.relative_to(library).parts)
    assert len(modules) > 20
    assert {p.name for p in modules if pattern.search(p.read_text())} == set()


def test_the_one_renderer_writes_fields_values_and_aliases():
    flag = _common.flag
    assert flag("n_w") == "--n-w" and flag("ratio", "2") == "--ratio 2"
    assert flag("reduce", "False") == "--no-reduce" and flag("batching", "'full'") == "--batching full"
    assert flag("prototype_anchors", "False") == "--anchors batch"  # every config's anchor field is --anchors
    set_form = {"epochs": "--set epochs=", "prototype_anchors": "--set prototype_anchors="}
    assert flag("epochs", "2", set_form) == "--set epochs=2" and flag("epochs", None, set_form) == "--set epochs"
    # a command's own alias of a field replaces the default aliases of its values
    assert flag("prototype_anchors", "False", set_form) == "--set prototype_anchors=False"


def test_library_messages_name_fields_and_keep_typed_braces():
    with pytest.raises(FieldError) as info:
        parse_counts("{k}x5")
    assert str(info.value) == "cannot read counts '{k}x5': write class counts as e.g. 5000x5,500x5 or 50,50,5"
    err = FieldError(f"{{gram_file}} {literal('runs/{n_w}.npy')} and {{n_w}}")
    assert str(err) == "gram_file runs/{n_w}.npy and n_w" and err.fields == ("gram_file", "n_w")
    assert _common.user_message(err) == "--gram-file runs/{n_w}.npy and --n-w"


def test_values_with_braces_are_printed_as_typed(tmp_path):
    folder = tmp_path / "{n_w}"
    folder.mkdir()
    (folder / "x").write_text("not a run")
    refused(["simulate", "--out", folder], f"--out {folder} holds files")
    refused(["simulate", "--counts", "{k}x5", "--out", tmp_path / "a"], "cannot read --counts '{k}x5'")
    refused(["check", "--geometry", "{ratio}"], "--geometry '{ratio}' is not one of")
    gram = tmp_path / "{k}.npy"
    np.save(gram, np.eye(4))
    refused(["check", "--gram-file", gram], f"the Gram in --gram-file {gram} is 4 x 4", "(--k = 4 classes")
    refused(["study", "--setting", "fashion-mnist", "--set", "device={k}", "--summaries", tmp_path / "s",
             "--out", tmp_path / "o"], "--set device '{k}' is not a device")
    refused(["solve", "--n-w", "1", "--gram-file", tmp_path / "{k}x.npy", "--out", tmp_path / "b"],
            f"{tmp_path}/{{k}}x.npy")


def _reasons_configs():
    from ufm.deep.config import TrainConfig
    from ufm.sim_config import SimConfig
    from ufm.spec import CheckConfig, SolveConfig

    return [SimConfig(loss="ce"), SimConfig(profile="balanced", n_w=(0.0,)), SimConfig(profile="long-tail"),
            TrainConfig(loss="ce", head="relu"), TrainConfig(n_w=0.0, prototype_cosines=(0.1, 0.1, 0.1)),
            SolveConfig(counts="5,5", solver="BM"), SolveConfig(gram_file="g.npy"), CheckConfig(n_w=0)]


@pytest.mark.parametrize("config", _reasons_configs(), ids=lambda c: type(c).__name__)
def test_no_effect_reasons_are_fragments_naming_real_fields(config):
    import dataclasses

    names = {f.name for f in dataclasses.fields(config)}
    reasons = config.without_effect()
    assert reasons
    for name, reason in reasons.items():
        err = FieldError(f"{{{name}}} has no effect {reason}; drop it")
        assert set(err.fields) <= names, (name, reason)  # each placeholder is a field with a flag
        assert "{" not in str(err) and "{" not in _common.user_message(err), reason


def test_a_reason_names_fields_in_the_library_and_flags_on_the_command_line():
    from ufm.deep.config import TrainConfig

    reason = TrainConfig(n_w=0.0).without_effect()["prototype_anchors"]
    assert str(FieldError(reason)) == "with n_w = 0 (no prototype copies)"
    assert _common.user_message(FieldError(reason)) == "with --n-w = 0 (no prototype copies)"


def test_training_refusals_name_config_fields_as_flags(tmp_path):
    refused(["train", "--dataset", "folder", "--data-root", tmp_path / "d{k}", "--download", "--out", tmp_path / "t"],
            "--download fetches CIFAR-10/100 only; these runs train on --dataset folder: drop --download")
    assert not (tmp_path / "t").exists()
