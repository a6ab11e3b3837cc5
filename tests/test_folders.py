"""Every run folder says what kind it is; a command given a folder of another kind names the kind it found, the
command that wrote it and what reads it; --overwrite never turns a folder of one kind into a mix of two."""

import json

import pytest
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.folders import KINDS, describe, identify, mark, require

runner = CliRunner()
SIM = ["--k", "3", "--n-major", "4", "--ratio", "2", "--d", "4", "--batch-size", "4", "--epochs", "2"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    made = {"simulate": ["simulate", *SIM], "sweep:simulate": ["sweep", "--k", "3", "--n-major", "4", "--d", "4", "--batch-size", "4",
                                                "--epochs", "2", "--grid", "ratio=1,2"],
            "sweep:solve": ["solve-sweep", "--k", "3", "--n-major", "4", "--grid", "ratio=1,2"],
            "solve": ["solve", "--counts", "4,4,2", "--tau", "0.5"],
            "collapse-map": ["collapse-map", "--k", "3", "--n-major", "4", "--ratio", "2", "--tau", "0.5", "--n-w", "0"]}
    for kind, argv in made.items():
        result = runner.invoke(app, [*argv, "--out", str(root / kind.replace(":", "-"))])
        assert result.exit_code == 0, (kind, result.output)
    return {kind: root / kind.replace(":", "-") for kind in made}


def test_each_folder_says_its_kind(folders):
    for kind, folder in folders.items():
        assert json.loads((folder / "kind.json").read_text())["kind"] == kind
        assert identify(folder) == kind
        assert KINDS[kind][1] in describe(folder)


def test_older_folders_are_recognised_by_their_files(folders):
    for kind, folder in folders.items():
        (folder / "kind.json").rename(folder / "kind.bak")
        try:
            assert identify(folder) == kind
        finally:
            (folder / "kind.bak").rename(folder / "kind.json")


@pytest.mark.parametrize("kind, argv, needle", [
    ("simulate", ["gather", "{f}"], "is a simulation run folder (written by `ufm simulate`"),
    ("solve", ["gather", "{f}"], "is a solve folder (written by `ufm solve`"),
    ("sweep:solve", ["train", "--resume", "{f}"], "is a solve-sweep folder (written by `ufm solve-sweep`"),
    ("sweep:simulate", ["deep-figures", "{f}", "--out", "{f}-figs"], "is a simulation sweep folder"),
    ("sweep:solve", ["collapse-map", "--k", "3", "--n-major", "4", "--ratio", "2", "--tau", "0.5", "--n-w", "0",
                     "--overwrite", "--out", "{f}"], "--overwrite replaces only a collapse-map folder"),
    ("collapse-map", ["solve", "--counts", "4,4,2", "--overwrite", "--out", "{f}"],
     "--overwrite replaces only a solve folder"),
    ("solve", ["simulate", *SIM, "--overwrite", "--out", "{f}"], "--overwrite replaces only a simulation run folder"),
    ("simulate", ["sweep", "--k", "3", "--grid", "ratio=1,2", "--out", "{f}"], "is a simulation run folder"),
])
def test_a_folder_of_another_kind_is_named(folders, kind, argv, needle):
    folder = folders[kind]
    before = sorted(p.name for p in folder.iterdir())
    result = runner.invoke(app, [a.replace("{f}", str(folder)) for a in argv])
    assert result.exit_code == 2 and needle in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written into it


def test_require_and_mark(tmp_path):
    with pytest.raises(ValueError, match="is an empty folder; ufm gather reads"):
        require(tmp_path, ("sweep:map",), "ufm gather")
    mark(tmp_path, "sweep:map")
    assert require(tmp_path, ("sweep:map",), "ufm gather") == "sweep:map"
    with pytest.raises(ValueError, match="unknown folder kind"):
        mark(tmp_path, "nope")
