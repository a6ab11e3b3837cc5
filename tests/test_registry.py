"""ufm.registry: every kind names a module that exports its KIND, and every folder kind is described once."""

import importlib

from ufm.registry import FOLDERS, KINDS


def test_every_kind_lives_in_the_module_it_names():
    for name, entry in KINDS.items():
        assert entry.module == f"ufm.kinds.{name}"
        assert hasattr(importlib.import_module(entry.module), "KIND"), entry.module


def test_every_folder_kind_is_described_once_and_written_by_a_command():
    folders = [f for e in KINDS.values() for f in (e.set_folder, e.run_folder) if f is not None]
    assert len({f.key for f in folders}) == len(folders) == len(FOLDERS)
    for key, folder in FOLDERS.items():
        assert folder.key == key and folder.written_by.startswith("ufm ") and folder.what.startswith("a ")
    assert FOLDERS["sweep:simulate"].written_by == "ufm sweep" and "ufm gather" in FOLDERS["sweep:simulate"].read_by
    assert KINDS["map"].run_folder is None and KINDS["train"].run_folder.key == "train"
