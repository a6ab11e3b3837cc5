"""`ufm study`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

import numpy as np
import pytest
import torch
from _study import TINY, run_study, study_data
from _tables import assert_table_reads_back
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.deep.study import load_records
from ufm.design import block_gram


@pytest.fixture
def tiny(tmp_path):
    return study_data(tmp_path)


def test_study_runs_records_resumes_and_reports(tiny):
    result = run_study(tiny, "--arms", "etf,designed-g1", "--seeds", "1")
    assert result.exit_code == 0, result.output
    assert "designed prototypes: cosines" in result.output and "0 of 2 runs recorded" in result.output
    design = json.loads((tiny / "rec" / "design.json").read_text())
    assert len(design) == 1 and design[0]["key"]["counts"] == [6, 6, 3, 3]
    assert design[0]["distance_best"] <= design[0]["distance_g_star"]
    record = json.loads((tiny / "rec" / "fashion-mnist" / "designed-g1" / "seed=0.json").read_text())
    assert record["config"]["prototype_cosines"] == design[0]["best_cosines"]
    # the run trained with prototypes whose Gram is the designed block Gram
    arrays = np.load(tiny / "runs" / "designed-g1" / "seed=0" / "arrays.npz")
    assert np.allclose(arrays["g_w"], block_gram([6, 6, 3, 3], *design[0]["best_cosines"]), atol=1e-6)
    assert not np.allclose(arrays["g_w"], arrays["g_star"], atol=1e-3)

    # another machine: the committed records without the run folders; a second seed trains only the new runs
    import shutil

    shutil.rmtree(tiny / "runs")
    result = run_study(tiny, "--arms", "etf,designed-g1", "--seeds", "2")
    assert result.exit_code == 0, result.output
    assert "2 of 4 runs recorded" in result.output and "2 to train" in result.output
    assert sorted(p.name for p in (tiny / "runs" / "etf").iterdir()) == ["seed=1"]
    assert len(json.loads((tiny / "rec" / "design.json").read_text())) == 1  # the design was reused

    # nothing left: the same command trains nothing and prints the table
    result = run_study(tiny, "--arms", "etf,designed-g1", "--seeds", "2")
    assert result.exit_code == 0 and "4 of 4 runs recorded" in result.output

    # the report from the records alone
    out = tiny / "report"
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(tiny / "rec"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "report.json").read_text())
    assert [r["arm"] for r in rows] == ["etf", "designed-g1"] and rows[1]["probe_accuracy_vs_etf"]["pairs"] == 2
    assert assert_table_reads_back(out)
    assert (out / "accuracy_vs_gamma.png").stat().st_size > 10_000
    assert "| fashion-mnist | designed-g1 | 2 |" in (out / "table.md").read_text()
    assert set(load_records(tiny / "rec")["fashion-mnist"]) == {"etf", "designed-g1"}


def test_study_finishes_a_run_killed_after_training_and_refuses_changed_records(tiny):
    assert run_study(tiny, "--arms", "etf", "--seeds", "1").exit_code == 0
    # a run finished in the run folder whose record was lost (killed between the two): recorded, not retrained
    (tiny / "rec" / "fashion-mnist" / "etf" / "seed=0.json").unlink()
    mtime = (tiny / "runs" / "etf" / "seed=0" / "summary.json").stat().st_mtime
    result = run_study(tiny, "--arms", "etf", "--seeds", "1")
    assert result.exit_code == 0 and "1 of 1 runs recorded" in result.output
    assert (tiny / "runs" / "etf" / "seed=0" / "summary.json").stat().st_mtime == mtime
    # a record of another configuration is refused, naming the field
    result = run_study(tiny, "--arms", "etf", "--seeds", "1", "--set", "lr=0.01")
    assert result.exit_code == 2 and "lr (saved 0.05, asked 0.01)" in result.output
    # the data root is where it ran, not what it computed: another path counts
    (tiny / "idx").rename(tiny / "idx2")
    result = CliRunner().invoke(app, ["study", "--setting", "fashion-mnist", "--data-root", str(tiny / "idx2"),
                                      "--summaries", str(tiny / "rec"), "--out", str(tiny / "runs"), *TINY,
                                      "--arms", "etf", "--seeds", "1"])
    assert result.exit_code == 0 and "1 of 1 runs recorded" in result.output
    # ... also for a run folder trained from the old path whose record is gone: it is the same run, recorded again
    (tiny / "rec" / "fashion-mnist" / "etf" / "seed=0.json").unlink()
    result = CliRunner().invoke(app, ["study", "--setting", "fashion-mnist", "--data-root", str(tiny / "idx2"),
                                      "--summaries", str(tiny / "rec"), "--out", str(tiny / "runs"), *TINY,
                                      "--arms", "etf", "--seeds", "1"])
    assert result.exit_code == 0 and "1 of 1 runs recorded" in result.output, result.output
    assert (tiny / "runs" / "etf" / "seed=0" / "summary.json").stat().st_mtime == mtime


def test_study_refuses_unwritable_places_and_missing_devices_before_training(tiny):
    (tiny / "afile").write_text("x")
    for flag, message in (("--summaries", "--summaries"), ("--out", "--out")):
        argv = {"--summaries": str(tiny / "rec"), "--out": str(tiny / "runs"), flag: str(tiny / "afile")}
        result = CliRunner().invoke(app, ["study", "--setting", "fashion-mnist", "--data-root", str(tiny / "idx"),
                                          *[x for kv in argv.items() for x in kv], *TINY, "--arms", "etf"])
        assert result.exit_code == 2 and f"{message} {tiny / 'afile'} is a file" in result.output, result.output
    if not torch.cuda.is_available():
        result = run_study(tiny, "--arms", "etf", "--set", "device=cuda")
        assert result.exit_code == 2 and "--set device=cuda was asked for but CUDA is not available" in result.output
    assert not (tiny / "rec").exists() and not (tiny / "runs" / "etf").exists()


@pytest.mark.parametrize("args, message", [
    (["--setting", "mnist"], "--setting must be one of"),
    (["--arms", "etf,cosine"], "--arms takes a comma list"),
    (["--arms", "etf,none,etf"], "--arms names etf twice"),
    (["--set", "epochs=0"], "--set epochs must be >= 1"),
    (["--set", "lr_schedule=linear"], "--set lr_schedule 'linear' is not one of"),
    (["--seeds", "0"], "--seeds must be between 1 and 1000"),
    (["--set", "gamma=2"], "--set gamma is set by the study"),
    (["--set", "loss=ce"], "--set loss is set by the study"),
    (["--set", "prototype_cosines=0.1,0.2,0.3"], "--set prototype_cosines is set by the study"),
    (["--set", "n_w=0"], "--set n_w must be > 0"),
    (["--arms", "none", "--set", "n_w=50"], "--set n_w has no effect on the arm none"),
    (["--set", "epochs=2", "--set", "epochs=3"], "--set epochs is given twice"),
    (["--set", "binding_examples=first"], "--set binding_examples has no effect"),
    (["--set", "width=abc"], "--set value"),
    (["--set", "epochs=1,2"], "--set takes FIELD=VALUE"),
    (["--set", "colour=red"], "unknown --set field 'colour'"),
])
def test_study_refuses_bad_input_in_one_line(tmp_path, args, message):
    base = {"--setting": "fashion-mnist", "--summaries": str(tmp_path / "rec"), "--data-root": str(tmp_path)}
    for flag in args[::2]:
        base.pop(flag, None)
    argv = ["study", *[x for kv in base.items() for x in kv], *args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output
