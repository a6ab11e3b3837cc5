"""``--threads``: every command that computes takes it (0 or unset: chosen), refuses it below 0 with one line, and a
run records the thread count it used and what chose it."""

import json

import pytest
import torch
from typer.testing import CliRunner

from tests._cli import refused
from ufm.cli._threads import DRAWS_ONLY
from ufm.cli.main import app, commands

COMPUTING = sorted(set(commands()) - set(DRAWS_ONLY))
REQUIRED = {"study": ["--setting", "fashion-mnist"]}  # options a command needs before it reads --threads


def test_the_computing_commands_are_the_expected_ones():
    assert {"simulate", "sweep", "agree", "solve", "solve-sweep", "map", "collapse-map", "verify-prop1", "train",
            "study", "check", "copies", "design-prototypes", "figures"} <= set(COMPUTING)


@pytest.mark.parametrize("command", COMPUTING)
def test_a_negative_thread_count_is_refused(command):
    refused([command, *REQUIRED.get(command, []), "--threads", "-1"], "--threads must be >= 0")


@pytest.mark.parametrize("command", sorted(DRAWS_ONLY))
def test_a_command_that_draws_only_has_no_threads_option(command):
    refused([command, "--threads", "1"], "No such option: --threads")


def _simulate(tmp_path, *extra):
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, ["simulate", "--epochs", "3", "--n-major", "20", "--out", str(tmp_path / "run"),
                                          "--json", *extra])
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / "run" / "summary.json").read_text()), torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_a_run_records_the_threads_it_was_given(tmp_path, monkeypatch):
    monkeypatch.delenv("UFM_THREADS", raising=False)
    summary, used = _simulate(tmp_path, "--threads", "1")
    assert summary["threads"] == used == 1 and summary["threads_source"] == "--threads"
    import os

    assert "UFM_THREADS" not in os.environ  # the request ends with the command


def test_a_run_records_the_threads_it_chose(tmp_path, monkeypatch):
    monkeypatch.delenv("UFM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    summary, used = _simulate(tmp_path)
    assert summary["threads"] == used == 1  # the default simulation is small: one thread
    assert summary["threads_source"] in ("problem size", "free cores")


def test_omp_num_threads_is_respected(tmp_path, monkeypatch):
    monkeypatch.delenv("UFM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    summary, _ = _simulate(tmp_path)
    assert summary["threads"] == 1 and summary["threads_source"] == "OMP_NUM_THREADS"
