"""`ufm check`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

import pytest
import torch
from _cli import refused
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.reference import _check_memory, naive_memory_bytes, naive_scl_loss, run_check
from ufm.spec import CheckConfig

runner = CliRunner()


def test_check_agrees_and_prints_json():
    result = runner.invoke(app, ["check", "--k", "4", "--n", "10", "--d", "6", "--n-w", "20", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"] is True
    assert data["rows_naive"] == 10 + 4 * 20 and data["rows_ufm"] == 14
    assert data["loss_abs_diff"] <= 1e-9 * abs(data["loss_naive"])


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path):
    result = runner.invoke(app, ["check", "--k", "6", "--d", "3"])
    assert result.exit_code == 2
    assert "rank 5 > embedding dimension d=3" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["check", "--gram-file", str(tmp_path / "none.npy")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["check", "--tau", "0"])
    assert result.exit_code == 2 and "tau" in result.output


def test_check_memory_limit_follows_max_memory_gb(monkeypatch):
    monkeypatch.delenv("UFM_MAX_MEMORY_GB", raising=False)
    labels = torch.zeros(700, dtype=torch.long)  # one class of 700 rows: 3 x 700^2 x 700 x 8 bytes = 7.7 GiB
    assert naive_memory_bytes(labels, 8) == 3 * 700**2 * 700 * 8
    _check_memory(labels, 8, max_memory_gb=10.0)  # above the old fixed 2 GiB, below the limit given: accepted
    with pytest.raises(ValueError, match="more than the limit 5 GiB set by max_memory_gb"):
        _check_memory(labels, 8, max_memory_gb=5.0)
    h = torch.nn.functional.normalize(torch.randn(6, 3, dtype=torch.float64), dim=-1)
    with pytest.raises(ValueError, match="the naive reference .* more than the limit 1e-06 GiB"):
        naive_scl_loss(h, torch.tensor([0, 0, 1, 1, 2, 2]), tau=0.5, max_memory_gb=1e-6)
    # run_check's own estimate and the naive loss's check read the same limit
    small = CheckConfig(k=3, n=6, d=4, n_w=2)
    assert run_check(small, max_memory_gb=1.0)["agree"]
    with pytest.raises(ValueError, match="the check .* more than the limit 1e-09 GiB set by max_memory_gb"):
        run_check(small, max_memory_gb=1e-9)
    refused(["check", "--k", "3", "--n", "6", "--max-memory-gb", "1e-9"], "the check", "lower --n, --n-w, --k or --d")
    refused(["check", "--k", "3", "--n", "6"], "the check", env={"UFM_MAX_MEMORY_GB": "1e-9"})


def test_check_flags_are_generated_and_work():
    result = runner.invoke(app, ["check", "--help"])
    for flag in ("--k", "--n", "--d", "--n-w", "--tau", "--geometry", "--gamma", "--gram-file",
                 "--anchors", "--seed", "--max-memory-gb", "--json"):
        assert flag in result.output, flag
    result = runner.invoke(app, ["check", "--k", "4", "--n", "9", "--d", "5", "--n-w", "3", "--geometry", "minority",
                                 "--gamma", "0.5", "--anchors", "batch", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"] and data["rows_naive"] == 9 + 4 * 3
    # the minority geometry with gamma 0.5 reached the loss: it differs from the ETF check's loss
    etf = json.loads(runner.invoke(app, ["check", "--k", "4", "--n", "9", "--d", "5", "--n-w", "3",
                                         "--anchors", "batch", "--json"]).output)
    assert abs(etf["loss_ufm"] - data["loss_ufm"]) > 1e-6
    refused(["check", "--gamma", "2"], "--gamma has no effect without the minority geometry")
    refused(["check", "--n-w", "0", "--geometry", "orthogonal"], "--geometry has no effect with --n-w = 0 (no prototypes")
    refused(["check", "--k", "0"], "--k must be >= 1")
