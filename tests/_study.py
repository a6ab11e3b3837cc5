"""Shared by the tests of ufm.deep.study and of ``ufm study`` / ``ufm study-report``: a tiny study and its records."""

import json

from _idx import tiny_idx
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.deep.study import ARMS, study_runs

# --set options that make a study's runs tiny (one epoch of a few images)
TINY = ["--set", "epochs=1", "--set", "n_major=6", "--set", "ratio=2", "--set", "test_per_class=4",
        "--set", "batch_size=8", "--set", "width=4", "--set", "embed_dim=8", "--set", "eval_every=1",
        "--set", "checkpoint_every=1"]


def study_data(root):
    """IDX data of 4 classes (8 images each) under ``root/idx``; returns ``root``."""
    tiny_idx(root / "idx", k=4, per_class=8)
    return root


def run_study(root, *extra):
    """``ufm study`` of the fashion-mnist setting on ``root/idx``, records in ``root/rec``, runs in ``root/runs``."""
    return CliRunner().invoke(app, ["study", "--setting", "fashion-mnist", "--data-root", str(root / "idx"),
                                    "--summaries", str(root / "rec"), "--out", str(root / "runs"), *TINY, *extra])


def synthetic_records(values: dict) -> dict:
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


def write_record(rec, arm: str, seed: int, setting: str = "fashion-mnist", **summary):
    """A record as ufm study writes it (the arm's config), with the synthetic summary of :func:`synthetic_records`."""
    record = synthetic_records({arm: {seed: (0.5, 0.2)}})["s"][arm][seed]
    record["summary"].update(summary)
    cosines = (0.1, -0.3, 0.0) if ARMS[arm].designed else None
    record["config"] = study_runs(setting, [arm], [seed], cosines=cosines)[f"{arm}/seed={seed}"].to_dict()
    path = rec / setting / arm / f"seed={seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path
