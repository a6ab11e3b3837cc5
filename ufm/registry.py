"""The one registry of kinds of experiment, and of the folders they write.

A *kind* (:class:`ufm.engine.Kind`) is one object that the engine (:mod:`ufm.engine`) runs: its config class, the
files of its run folder, its checks, how it runs, its table row and its figure.  It lives in the module named here
(``ufm.kinds.<name>``, each exporting ``KIND``), imported only when a kind is used, so that the engine imports no kind
and a fresh worker process (local executor, SLURM) finds every kind by name.

Every kind writes folders of at most two folder kinds, each recorded in the folder's marker (``kind.json``, written by
:func:`ufm.folders.mark` from the engine only): a *set* folder (a grid or list of points, one run folder each, with
the set's record and table) and, where the kind also runs alone, a *run* folder (one run, written by the command of
the kind).  This table says what each folder is, which command writes it and which commands read it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Folder", "Entry", "KINDS", "FOLDERS"]


@dataclass(frozen=True)
class Folder:
    """A kind of folder: its marker key, what it is, the command that writes it and the commands that read it."""

    key: str
    what: str
    written_by: str
    read_by: str


@dataclass(frozen=True)
class Entry:
    """A kind of experiment: the module exporting its ``KIND``, the folder kind of its sets and, if it runs alone, of
    its single run folder."""

    module: str
    set_folder: Folder
    run_folder: Folder | None = None


_GATHER = "ufm gather (and the same {} command, to continue)"

KINDS: dict[str, Entry] = {
    "simulate": Entry(
        "ufm.kinds.simulate",
        Folder("sweep:simulate", "a simulation sweep folder", "ufm sweep", _GATHER.format("ufm sweep")),
        Folder("simulate", "a simulation run folder", "ufm simulate", "its own files (summary.json, arrays.npz)")),
    "solve": Entry(
        "ufm.kinds.solve",
        Folder("sweep:solve", "a solve-sweep folder", "ufm solve-sweep", _GATHER.format("ufm solve-sweep")),
        Folder("solve", "a solve folder", "ufm solve", "its own files (solution.json, arrays.npz)")),
    "map": Entry(
        "ufm.kinds.map",
        Folder("sweep:map", "a distance-map folder", "ufm map", _GATHER.format("ufm map"))),
    "collapse": Entry(
        "ufm.kinds.collapse",
        Folder("collapse-map", "a collapse-map folder", "ufm collapse-map", _GATHER.format("ufm collapse-map"))),
    "train": Entry(
        "ufm.kinds.train",
        Folder("train-set", "a folder of training runs (a preset, grid or study)", "ufm train --preset/--grid",
               "the same ufm train command (to continue), ufm gather (its table), ufm deep-figures on its run folders"),
        Folder("train", "a training run folder", "ufm train",
               "ufm train --resume, ufm deep-figures, ufm figures --runs")),
}

# folder kind -> its description; the keys are what kind.json records
FOLDERS: dict[str, Folder] = {f.key: f for e in KINDS.values() for f in (e.set_folder, e.run_folder) if f is not None}
