"""The minority-angle study (ufm.deep.study, ufm study / study-report): arms, designed prototypes, records that
survive the run folder, resumption, refusals, and the report's statistics on records with known answers."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _idx import tiny_idx
from _tables import assert_table_reads_back
from ufm.cli.main import app
from ufm.deep.config import TrainConfig
from ufm.deep.study import ARMS, SETTINGS, load_records, report, study_runs
from ufm.design import block_gram
from ufm.stats import mean_ci, paired_difference

TINY = ["--set", "epochs=1", "--set", "n_major=6", "--set", "ratio=2", "--set", "test_per_class=4",
        "--set", "batch_size=8", "--set", "width=4", "--set", "embed_dim=8", "--set", "eval_every=1",
        "--set", "checkpoint_every=1"]


def test_arms_differ_only_in_their_own_fields():
    runs = study_runs("fashion-mnist", list(ARMS), [0, 1], cosines=(0.1, -0.3, 0.0))
    assert len(runs) == 2 * len(ARMS)
    base = runs["etf/seed=0"].to_dict()
    assert base == {**TrainConfig(**SETTINGS["fashion-mnist"]).to_dict(), "seed": 0}
    for name, cfg in runs.items():
        arm, seed = name.split("/seed=")
        own = {"seed", *ARMS[arm].overrides, *(["prototype_cosines"] if ARMS[arm].designed else [])}
        differ = {k for k, v in cfg.to_dict().items() if v != base[k]}
        assert differ <= own, (name, differ)
        assert cfg.seed == int(seed)
    assert runs["none/seed=1"].n_w == 0 and runs["minority-g2/seed=0"].gamma == 2.0
    assert runs["designed-g1/seed=0"].prototype_cosines == (0.1, -0.3, 0.0)
    assert {runs[f"{a}/seed=0"].n_w for a in ARMS if a != "none"} == {100.0}  # the same n_w for every prototype arm
    with pytest.raises(ValueError, match="needs its designed prototype cosines"):
        study_runs("fashion-mnist", ["designed-g1"], [0])


def test_prototype_cosines_give_the_block_gram_or_are_refused():
    counts = np.array([6, 6, 3, 3])
    cfg = TrainConfig(prototype_cosines=[0.2, -0.5, -0.3])  # a list (as read from JSON) becomes a tuple
    assert cfg.prototype_cosines == (0.2, -0.5, -0.3)
    assert np.allclose(cfg.g_prototypes(counts).numpy(), block_gram(counts, 0.2, -0.5, -0.3))
    assert np.allclose(TrainConfig().g_prototypes(counts).numpy(), TrainConfig().g_star(counts).numpy())
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="three cosines"):
        TrainConfig(prototype_cosines=(0.1, 0.2))
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        TrainConfig(prototype_cosines=(0.1, 0.2, 1.5))
    with pytest.raises(ValueError, match="give no prototypes.*positive semidefinite"):
        TrainConfig(prototype_cosines=(-0.9, -0.9, 0.5)).g_prototypes(counts)  # sums 0.1 and 0.1 apart, 0.5 across
    assert "prototype_cosines" in TrainConfig(n_w=0, prototype_cosines=(0, 0, 0)).without_effect()
    assert "prototype_cosines" not in TrainConfig(loss="ce", prototype_cosines=(0, 0, 0)).without_effect()


def _records(values: dict) -> dict:
    """Synthetic records: arm -> seed -> (probe accuracy, minority probe accuracy) with k = 4, counts 6,6,3,3."""
    out = {}
    for arm, seeds in values.items():
        for seed, (probe, minority) in seeds.items():
            summary = {"linear_probe_accuracy": probe, "counts": [6, 6, 3, 3],
                       "per_class_accuracy": {"probe": [1.0, 0.5, minority - 0.1, minority + 0.1],
                                              "ncc": [1.0, 1.0, 0.5, 0.5]},
                       "final": {"ncc_accuracy": 0.75, "distance": 0.1 * seed, "angle_majority": 90.0,
                                 "angle_minority": 100.0 + seed}}
            out.setdefault(arm, {})[seed] = {"config": {}, "summary": summary}
    return {"s": out}


def test_report_statistics_match_known_answers():
    etf = {0: (0.5, 0.2), 1: (0.6, 0.3), 2: (0.7, 0.4)}
    arm = {0: (0.6, 0.3), 1: (0.8, 0.3), 2: (0.8, 0.6), 3: (0.9, 0.9)}  # seed 3 has no ETF partner
    rows = {r["arm"]: r for r in report(_records({"etf": etf, "minority-g1": arm}))}
    assert rows["etf"]["probe_accuracy"]["mean"] == pytest.approx(0.6)
    # s = 0.1 over three seeds: half-width t_{0.975,2} 0.1 / sqrt(3)
    assert rows["etf"]["probe_accuracy"]["high"] - 0.6 == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert rows["etf"]["minority_probe_accuracy"]["mean"] == pytest.approx(0.3)  # mean over the two minority classes
    assert rows["etf"]["minority_ncc_accuracy"]["mean"] == pytest.approx(0.5)
    assert rows["etf"]["angle_minority"]["mean"] == pytest.approx(101.0)
    assert rows["minority-g1"]["seeds"] == [0, 1, 2, 3] and rows["minority-g1"]["probe_accuracy"]["n"] == 4
    d = rows["minority-g1"]["probe_accuracy_vs_etf"]
    assert d["pairs"] == 3  # paired on seeds 0-2: differences 0.1, 0.2, 0.1
    assert d["mean"] == pytest.approx(0.4 / 3)
    expected = paired_difference({0: 0.1, 1: 0.2, 2: 0.1}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert (d["low"], d["high"], d["p_value"]) == pytest.approx((expected.low, expected.high, expected.p_value))
    assert d["detectable"] > 0 and d["seeds_for_effect"] >= 2 and d["effect"] == 0.01
    assert "probe_accuracy_vs_etf" not in rows["etf"]
    assert rows["minority-g1"]["minority_probe_accuracy"]["mean"] == pytest.approx(mean_ci([0.3, 0.3, 0.6, 0.9]).mean)


@pytest.fixture
def tiny(tmp_path):
    tiny_idx(tmp_path / "idx", k=4, per_class=8)
    return tmp_path


def _study(tmp_path, *extra):
    return CliRunner().invoke(app, ["study", "--setting", "fashion-mnist", "--data-root", str(tmp_path / "idx"),
                                    "--summaries", str(tmp_path / "rec"), "--out", str(tmp_path / "runs"), *TINY,
                                    *extra])


def test_study_runs_records_resumes_and_reports(tiny):
    result = _study(tiny, "--arms", "etf,designed-g1", "--seeds", "1")
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
    result = _study(tiny, "--arms", "etf,designed-g1", "--seeds", "2")
    assert result.exit_code == 0, result.output
    assert "2 of 4 runs recorded" in result.output and "2 to train" in result.output
    assert sorted(p.name for p in (tiny / "runs" / "etf").iterdir()) == ["seed=1"]
    assert len(json.loads((tiny / "rec" / "design.json").read_text())) == 1  # the design was reused

    # nothing left: the same command trains nothing and prints the table
    result = _study(tiny, "--arms", "etf,designed-g1", "--seeds", "2")
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
    assert _study(tiny, "--arms", "etf", "--seeds", "1").exit_code == 0
    # a run finished in the run folder whose record was lost (killed between the two): recorded, not retrained
    (tiny / "rec" / "fashion-mnist" / "etf" / "seed=0.json").unlink()
    mtime = (tiny / "runs" / "etf" / "seed=0" / "summary.json").stat().st_mtime
    result = _study(tiny, "--arms", "etf", "--seeds", "1")
    assert result.exit_code == 0 and "1 of 1 runs recorded" in result.output
    assert (tiny / "runs" / "etf" / "seed=0" / "summary.json").stat().st_mtime == mtime
    # a record of another configuration is refused, naming the field
    result = _study(tiny, "--arms", "etf", "--seeds", "1", "--set", "lr=0.01")
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
        result = _study(tiny, "--arms", "etf", "--set", "device=cuda")
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


def test_study_report_without_records(tmp_path):
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(tmp_path / "none")])
    assert result.exit_code == 2 and "is not a folder" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "holds no study records" in result.output


def test_report_leaves_out_measures_a_run_does_not_define():
    records = _records({"etf": {0: (0.5, 0.2), 1: (0.6, 0.3)}, "none": {0: (0.4, 0.1), 1: (0.5, 0.2)}})
    for arm in records["s"].values():  # one majority class: no majority angle; seed 1 of none lost its distance
        for r in arm.values():
            r["summary"]["final"]["angle_majority"] = None
    del records["s"]["none"][1]["summary"]["final"]["distance"]
    rows = {r["arm"]: r for r in report(records)}
    assert rows["etf"]["angle_majority"]["n"] == 0 and math.isnan(rows["etf"]["angle_majority"]["mean"])
    assert rows["none"]["distance"]["n"] == 1 and rows["none"]["distance"]["mean"] == 0.0
    assert rows["none"]["probe_accuracy_vs_etf"]["mean"] == pytest.approx(-0.1)
    from ufm.deep.study import markdown_table

    assert "| s | none | 2 |" in markdown_table(list(rows.values()))


def test_records_of_different_settings_are_not_paired(tiny):
    records = _records({"etf": {0: (0.5, 0.2), 1: (0.6, 0.3)}, "minority-g1": {0: (0.6, 0.3), 1: (0.7, 0.4)}})
    records["s"]["minority-g1"][1]["config"] = {"lr": 0.01}
    with pytest.raises(ValueError, match="trained with different settings: .*differ in lr"):
        report(records)
    records["s"]["minority-g1"][1]["config"] = {"n_w": 50.0}
    records["s"]["etf"][0]["config"] = {"n_w": 100.0}
    with pytest.raises(ValueError, match="use different n_w"):
        report(records)
    # through the command: a study continued with another --set is refused before anything trains, also for arms
    # not asked for now
    assert _study(tiny, "--arms", "etf", "--seeds", "1").exit_code == 0
    result = _study(tiny, "--arms", "minority-g1", "--seeds", "1", "--set", "lr=0.01")
    assert result.exit_code == 2 and "lr (saved 0.05, asked 0.01)" in result.output, result.output
    assert not (tiny / "rec" / "fashion-mnist" / "minority-g1").exists()


def _record_file(rec, arm: str, seed: int, setting: str = "fashion-mnist", **summary):
    """A record as ufm study writes it (the arm's config), with the synthetic summary of :func:`_records`."""
    record = _records({arm: {seed: (0.5, 0.2)}})["s"][arm][seed]
    record["summary"].update(summary)
    cosines = (0.1, -0.3, 0.0) if ARMS[arm].designed else None
    record["config"] = study_runs(setting, [arm], [seed], cosines=cosines)[f"{arm}/seed={seed}"].to_dict()
    path = rec / setting / arm / f"seed={seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_report_refuses_stray_files_and_foreign_folders(tiny):
    rec = tiny / "rec"
    _record_file(rec, "etf", 0)
    (rec / "fashion-mnist" / "etf" / "seed=notes.json").write_text("{}")
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(rec), "--out", str(tiny / "r")])
    assert result.exit_code == 2 and "is not a study record name" in result.output
    (rec / "fashion-mnist" / "etf" / "seed=notes.json").unlink()
    (rec / "fashion-mnist" / "etf" / "seed=1.json").write_text(json.dumps({"config": {}, "summary": {"epochs": 3}}))
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(rec), "--out", str(tiny / "r")])
    assert result.exit_code == 2 and "is not a study record (a config and the summary" in result.output
    (rec / "fashion-mnist" / "etf" / "seed=1.json").unlink()
    (tiny / "afile").write_text("x")
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(rec), "--out", str(tiny / "afile")])
    assert result.exit_code == 2 and "is a file" in result.output
    from ufm.folders import mark

    (tiny / "sweep").mkdir()
    mark(tiny / "sweep", "sweep:simulate")
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(rec), "--out", str(tiny / "sweep")])
    assert result.exit_code == 2 and "a simulation sweep folder" in result.output
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(rec), "--out", str(tiny / "r")])
    assert result.exit_code == 0, result.output
    table = (tiny / "r" / "table.md").read_text()
    assert "| fashion-mnist | etf | 1 | 50.0 |" in table and "[95%]" in table
