"""Long work says up front what it will take: every loop family of the CLI prints a time estimate line on stderr
(a log here: stderr is not a terminal).  $UFM_ESTIMATE_AFTER_S=0 makes tiny runs announce after their first steps."""

from __future__ import annotations

import json
import re
import time

import pytest
from typer.testing import CliRunner

from ufm.cli.main import app

runner = CliRunner()
SIM = ["--k", "4", "--n-major", "8", "--ratio", "4", "--d", "6", "--batch-size", "8", "--tau", "0.5"]


@pytest.fixture(autouse=True)
def _announce_at_once(monkeypatch):
    monkeypatch.setenv("UFM_ESTIMATE_AFTER_S", "0")


def _ok(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def test_simulate_and_agree_estimate_their_epochs(tmp_path):
    result = _ok(["simulate", *SIM, "--epochs", "10", "--out", str(tmp_path / "sim"), "--json"])
    assert "estimate (simulation): about " in result.stderr and " for 10 epochs at " in result.stderr
    assert json.loads(result.stdout)["epochs_run"] == 10  # stdout stays JSON
    result = _ok(["agree", "--k", "4", "--n-major", "8", "--ratio", "4", "--d", "6", "--epochs", "10", "--json"])
    assert "estimate (simulation): about " in result.stderr and " for 10 epochs at " in result.stderr


def test_a_grid_estimates_its_points_once_the_first_has_ended(tmp_path):
    """Inline: the first point's simulation says what it takes, then the grid's estimate; later points are quiet."""
    result = _ok(["sweep", *SIM[:-2], "--epochs", "10", "--grid", "tau=0.5,1,2", "--out", str(tmp_path / "s")])
    assert result.stderr.count("estimate (simulation): ") == 1
    assert len(re.findall(r"estimate \([^)]+\): about .* for 3 points at ", result.stderr)) == 1


def test_local_workers_write_their_estimates_in_their_logs(tmp_path):
    result = _ok(["sweep", *SIM[:-2], "--epochs", "10", "--grid", "tau=0.5,1", "--executor", "local",
                  "--workers", "1", "--out", str(tmp_path / "s")])
    assert re.search(r"estimate \([^)]+\): about .* for 2 points at ", result.stderr)
    logs = list((tmp_path / "s" / "logs").glob("*.log"))
    assert len(logs) == 2 and all("estimate (simulation): about " in log.read_text() for log in logs)


def test_training_estimates_a_set_of_runs_and_each_run_and_records_it(tmp_path):
    from _idx import tiny_idx

    tiny_idx(tmp_path / "data", per_class=4)
    flags = ["--dataset", "idx", "--data-root", str(tmp_path / "data"), "--n-major", "4", "--ratio", "2", "--width",
             "4", "--embed-dim", "8", "--epochs", "3", "--batch-size", "6", "--eval-every", "3", "--device", "cpu"]
    result = _ok(["train", *flags, "--grid", "seed=0,1", "--out", str(tmp_path / "set"), "--json"])
    assert result.stderr.count("estimate (training seed=0): about ") == 1  # the first run's; then the set's
    assert " for 3 epochs at " in result.stderr and "estimate (training seed=1)" not in result.stderr
    assert "estimate (train): about " in result.stderr and " for 2 runs at " in result.stderr
    starts = json.loads((tmp_path / "set" / "seed=0" / "provenance.json").read_text())
    assert starts[-1]["estimate"]["line"].startswith("estimate (training seed=0): about ")


@pytest.mark.parametrize("args, phrase", [
    (["solve", "--counts", "4x2,2x2", "--tau", "0.5", "--full", "--solver", "BM"],
     "estimate (Burer-Monteiro solve): at most about "),
    (["copies", "--counts", "20x2,2x2", "--tau", "0.5", "--tol", "0.1"], "estimate (copies): at most about "),
    (["design-prototypes", "--counts", "6,6,2,2", "--tau", "0.5", "--n-w", "2", "--max-evals", "6"],
     "estimate (design-prototypes): at most about "),
])
def test_solves_and_searches_estimate_their_bound(args, phrase, tmp_path):
    if args[0] == "solve":
        args = [*args, "--out", str(tmp_path / "out")]
    result = _ok([*args, "--json"])
    assert phrase in result.stderr, result.stderr
    json.loads(result.stdout)


def test_the_progress_bar_counts_down_the_whole_works_estimate():
    from ufm.cli._common import TimeLeftColumn, progress_bar
    from ufm.eta import Estimate, Timer

    with progress_bar(quiet=True) as bar:
        task = bar.add_task("simulate", total=10, status="")
        assert Timer(10, "epochs").callback == bar.announce  # the loops inside it report to the bar
        bar.announce(Estimate("simulation", "epochs", 1, 10, 1.0, 9.0, 1.0, time.time() + 3600, inner=True))
        assert "ends_at" not in bar.tasks[task].fields  # a loop inside another: not the whole work
        bar.announce(Estimate("simulation", "epochs", 1, 10, 1.0, 9.0, 1.0, time.time() + 3600))
        assert str(TimeLeftColumn().render(bar.tasks[task])) in ("~0:59:59", "~0:59:58")
        later = bar.add_task("the next run", total=10, status="")
        assert str(TimeLeftColumn().render(bar.tasks[later])) in ("~0:59:59", "~0:59:58")
