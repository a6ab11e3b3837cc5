"""ufm study-report reads the study's own records only: a record filed under a folder that is not an arm, a setting
that is not the study's, another arm or another seed is refused in one line naming it; notes are never an arm."""

import json
import shutil
from pathlib import Path

import pytest
from _study import study_data, write_record
from typer.testing import CliRunner

from ufm.cli.main import app

RECORDS = Path(__file__).resolve().parents[2] / "docs" / "results" / "data" / "study" / "cifar10"


@pytest.fixture
def rec(tmp_path):
    """Two arms of the committed CIFAR-10 records (seeds 0-2 each)."""
    for arm in ("etf", "minority-g1"):
        shutil.copytree(RECORDS / arm, tmp_path / "rec" / "cifar10" / arm)
    return tmp_path / "rec"


def _report(rec: Path, out: Path):
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(rec), "--out", str(out), "--json"])
    return result, " ".join(result.output.split())


@pytest.mark.parametrize("place, says", [
    ("cifar10/foo/seed=0.json", "cifar10/foo is not an arm of the study (none, etf, "),  # not an arm
    ("imagenet/etf/seed=0.json", "imagenet is not a setting of the study (fashion-mnist, cifar10)"),
    ("cifar10/minority-g2/seed=0.json", "is filed as cifar10 minority-g2/seed=0 but its config is not that run's: "
                                        "gamma (saved 1.0, asked 2.0)"),  # another arm
    ("cifar10/etf/seed=7.json", "is filed as cifar10 etf/seed=7 but its config is not that run's: seed (saved 0, "
                                "asked 7)"),  # a duplicate of seed 0 under another seed
    ("cifar10/none/seed=0.json", "n_w (saved 100.0, asked 0.0)"),
])
def test_a_record_filed_where_it_does_not_belong_is_refused(rec, tmp_path, place, says):
    target = rec / place
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(rec / "cifar10" / "minority-g1" / "seed=0.json" if "minority-g2" in place else
                rec / "cifar10" / "etf" / "seed=0.json", target)
    result, text = _report(rec, tmp_path / "r")
    assert result.exit_code == 2 and says in text, result.output
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) <= 3  # one (wrapped) line
    assert not (tmp_path / "r").exists()


@pytest.fixture
def tiny(tmp_path):
    return study_data(tmp_path)


def test_a_record_with_extra_keys_is_not_a_study_record(rec, tmp_path):
    path = rec / "cifar10" / "etf" / "seed=1.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "note": "copied by hand"}))
    result, text = _report(rec, tmp_path / "r")
    assert result.exit_code == 2 and "seed=1.json is not a study record" in text


def test_notes_are_never_an_arm(rec, tmp_path):
    (rec / "cifar10" / "notes").mkdir()
    (rec / "cifar10" / "notes" / "readme.md").write_text("what we tried")
    (rec / "cifar10" / "etf" / "notes.txt").write_text("seed 1 ran twice")
    result, _ = _report(rec, tmp_path / "r")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sorted(r["arm"] for r in rows) == ["etf", "minority-g1"] and all(r["seeds"] == [0, 1, 2] for r in rows)


def test_study_report_without_records(tmp_path):
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(tmp_path / "none")])
    assert result.exit_code == 2 and "is not a folder" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["study-report", "--summaries", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "holds no study records" in result.output


def test_report_refuses_stray_files_and_foreign_folders(tiny):
    rec = tiny / "rec"
    write_record(rec, "etf", 0)
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
