"""The minority-angle study (ufm.deep.study, ufm study / study-report): arms, designed prototypes, records that
survive the run folder, resumption, refusals, and the report's statistics on records with known answers."""

import math

import numpy as np
import pytest

from _study import run_study, study_data, synthetic_records
from ufm.deep.config import TrainConfig
from ufm.deep.study import ARMS, SETTINGS, report, study_runs
from ufm.design import block_gram
from ufm.stats import mean_ci, paired_difference



@pytest.fixture
def tiny(tmp_path):
    return study_data(tmp_path)


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



def test_report_statistics_match_known_answers():
    etf = {0: (0.5, 0.2), 1: (0.6, 0.3), 2: (0.7, 0.4)}
    arm = {0: (0.6, 0.3), 1: (0.8, 0.3), 2: (0.8, 0.6), 3: (0.9, 0.9)}  # seed 3 has no ETF partner
    rows = {r["arm"]: r for r in report(synthetic_records({"etf": etf, "minority-g1": arm}))}
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




def test_report_leaves_out_measures_a_run_does_not_define():
    records = synthetic_records({"etf": {0: (0.5, 0.2), 1: (0.6, 0.3)}, "none": {0: (0.4, 0.1), 1: (0.5, 0.2)}})
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
    records = synthetic_records({"etf": {0: (0.5, 0.2), 1: (0.6, 0.3)}, "minority-g1": {0: (0.6, 0.3), 1: (0.7, 0.4)}})
    records["s"]["minority-g1"][1]["config"] = {"lr": 0.01}
    with pytest.raises(ValueError, match="trained with different settings: .*differ in lr"):
        report(records)
    records["s"]["minority-g1"][1]["config"] = {"n_w": 50.0}
    records["s"]["etf"][0]["config"] = {"n_w": 100.0}
    with pytest.raises(ValueError, match="use different n_w"):
        report(records)
    # through the command: a study continued with another --set is refused before anything trains, also for arms
    # not asked for now
    assert run_study(tiny, "--arms", "etf", "--seeds", "1").exit_code == 0
    result = run_study(tiny, "--arms", "minority-g1", "--seeds", "1", "--set", "lr=0.01")
    assert result.exit_code == 2 and "lr (saved 0.05, asked 0.01)" in result.output, result.output
    assert not (tiny / "rec" / "fashion-mnist" / "minority-g1").exists()

