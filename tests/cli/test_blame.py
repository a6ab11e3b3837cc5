"""Every refusal blames the option the user typed, as a flag, advises only options the command has and states the
valid range truthfully; "unknown X" names its flag; a file is not reported as a missing folder."""

import pytest
from typer.testing import CliRunner

from _idx import tiny_idx
from ufm.cli._common import user_message
from ufm.cli.main import app
from ufm.deep.config import TrainConfig, resumed_config
from ufm.spec import DesignConfig


def _error(argv, env=None) -> str:
    result = CliRunner().invoke(app, argv, env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "idx"
    tiny_idx(root, k=4, per_class=8)
    return root


def _train(idx, *extra):
    return ["train", "--dataset", "idx", "--data-root", str(idx), "--n-major", "8", "--ratio", "2", "--width", "4",
            "--embed-dim", "8", "--epochs", "1", "--device", "cpu", *extra]


def test_the_option_that_asks_too_much_is_blamed(idx, tmp_path):
    text = _error(_train(idx, "--test-per-class", "9", "--out", str(tmp_path / "a")))
    assert "in the test split than asked ([9, 9, 9, 9]); lower --test-per-class" in text and "--n-major" not in text
    text = _error(_train(idx, "--batch-size", "100", "--out", str(tmp_path / "b")))
    assert "exceeds the number of samples N=24; use --batch-size <= 24" in text


def test_a_resumed_run_names_flags_not_fields():
    with pytest.raises(ValueError) as caught:
        resumed_config(TrainConfig(lr=0.05), {"lr": 0.5})
    text = user_message(caught.value)
    assert "cannot change --lr (run has 0.05, asked 0.5)" in text
    assert "Only --checkpoint-every, --compile, --data-root, --device, --epochs, --eval-every may change" in text
    assert "checkpoint_every" not in text and "data_root" not in text


def test_advice_names_only_options_the_command_has():
    tiny = {"UFM_MAX_MEMORY_GB": "1e-6"}
    agree = _error(["agree", "--k", "3", "--n-major", "4", "--ratio", "2", "--n-w", "1"], env=tiny)  # no --max-memory-gb, no batches
    assert "raise the limit ($UFM_MAX_MEMORY_GB)" in agree and "--max-memory-gb" not in agree
    assert "--batch-size" not in agree and "stacked runs" not in agree and "lower --n-major, --k or --d" in agree
    simulate = _error(["simulate", "--k", "3", "--n-major", "4", "--ratio", "2", "--n-w", "1", "--n-w", "2"], env=tiny)
    assert "(--max-memory-gb or $UFM_MAX_MEMORY_GB)" in simulate
    assert "lower --n-major, --k, --d, --batch-size or the stacked runs (--n-w x --tau x --seeds values)" in simulate
    copies = _error(["copies", "--k", "3", "--n-major", "4", "--ratio", "2"], env=tiny)  # a solve too big: no option
    assert "$UFM_MAX_MEMORY_GB" in copies and "--max-memory-gb" not in copies
    assert "use --d >= 9 or a lower-rank geometry" in _error(["agree", "--d", "1"])


def test_a_range_is_stated_once_and_truthfully():
    for value in ("-1", "0", "0.5"):  # the first refusal states the whole range: no value it allows is refused next
        assert f"--n-w must be >= 1, got {value}" in _error(["design-prototypes", "--counts", "5,5,2,2", "--n-w", value])
    for value in (-1.0, 0.0):  # batch anchors only: any n_w > 0
        with pytest.raises(ValueError, match=f"n_w must be > 0, got {value:g}"):
            DesignConfig(n_w=value, prototype_anchors=False)
    assert DesignConfig(n_w=0.5, prototype_anchors=False).n_w == 0.5


def test_unknown_and_repeated_values_name_their_flag(tmp_path):
    assert "--ratio repeats the value 2: give each value once" in _error(["collapse-map", "--ratio", "2", "--ratio",
                                                                          "2", "--out", str(tmp_path / "c")])
    assert "unknown imbalance --profile 'foo'" in _error(["collapse-map", "--profile", "foo", "--out",
                                                         str(tmp_path / "c")])
    assert "unknown --preset 'foo'; choose one of" in _error(["train", "--preset", "foo", "--out", str(tmp_path / "t")])
    assert "unknown figures ['foo'] (--name); registered:" in _error(["figures", "--name", "foo", "--out",
                                                                      str(tmp_path / "f")])


def test_a_file_is_not_reported_as_a_missing_folder(idx, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert f"{afile} is a file, not a run folder" in _error(["deep-figures", str(afile), "--out", str(tmp_path / "f")])
    text = _error(["train", "--dataset", "idx", "--data-root", str(afile / "sub"), "--out", str(tmp_path / "t")])
    assert f"{afile} is a file, not a folder, so the IDX file cannot be at" in text and "check --data-root" in text


def test_bare_ufm_prints_its_help_and_no_empty_error_line():
    result = CliRunner().invoke(app, [], prog_name="ufm")
    assert "Usage: ufm [OPTIONS] COMMAND" in result.output and "error:" not in result.output
    assert "No such command 'foo'" in _error(["foo"])  # a usage error is still its one line


@pytest.mark.parametrize("argv, says", [
    (["collapse-map", "--k", "1"], "--k must be >= 2, got 1"),  # was blamed on --minority-fraction
    (["simulate", "--k", "1"], "--k must be >= 2, got 1"),
    (["solve", "--counts", "5"], "--counts needs at least 2 classes, got '5'"),
    (["solve", "--counts", "abc"], "cannot read --counts 'abc'"),
    (["solve", "--counts", "5,0"], "--counts '5,0': class counts and repeats must be >= 1"),
    (["design-prototypes", "--counts", "5,5,5,1"], "give other --counts, or --profile step with --k >= 4"),
    (["check", "--k", "1"], "a simplex ETF needs k >= 2 classes, got k=1: use --k >= 2 or --geometry orthogonal"),
])
def test_counts_and_classes_name_their_flag(tmp_path, argv, says):
    assert says in _error([*argv, *([] if argv[0] in ("design-prototypes", "check") else ["--out", str(tmp_path / "o")])])
