"""What kind of folder a path is, and which command wrote it and which commands read it.

Every run folder ``ufm`` writes holds ``kind.json`` (``{"kind": ..., "written_by": ...}``, see :func:`mark`, called by
the engine :mod:`ufm.engine` only; the folder kinds are those of the registry :mod:`ufm.registry`); folders
written before it existed are recognised by their files (:func:`identify`).  Commands that read a folder call
:func:`require` so that a folder of another kind is refused with one line naming what it is and what reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ufm.registry import FOLDERS

__all__ = ["KINDS", "MARKER", "mark", "identify", "describe", "require", "check_overwrite", "check_own_folder"]

MARKER = "kind.json"

# folder kind -> (what it is, the command that writes it, the commands that read it), from the one registry of kinds
KINDS: dict[str, tuple[str, str, str]] = {key: (f.what, f.written_by, f.read_by) for key, f in FOLDERS.items()}


def mark(folder: str | Path, kind: str) -> None:
    """Write ``folder/kind.json`` saying what the folder is (atomically)."""
    from ufm.runio import write_json

    if kind not in KINDS:
        raise ValueError(f"unknown folder kind {kind!r}; one of {', '.join(KINDS)}")
    write_json(Path(folder) / MARKER, {"kind": kind, "written_by": KINDS[kind][1]})


def _config(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def identify(folder: str | Path) -> str | None:
    """The kind of ``folder`` (a key of :data:`KINDS`), from its marker or, for older folders, its files; None
    for a folder that is none of them (or does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    try:
        kind = json.loads((folder / MARKER).read_text()).get("kind")
        if kind in KINDS:
            return kind
    except (OSError, ValueError, AttributeError):
        pass
    config = _config(folder)
    if config is not None and "kind" in config and "grid" in config:
        return f"sweep:{config['kind']}" if f"sweep:{config['kind']}" in KINDS else None
    if (folder / "collapse_map.json").is_file():
        return "collapse-map"
    if (folder / "solution.json").is_file():
        return "solve"
    if config is not None and "dataset" in config:
        return "train"
    if config is not None and (folder / "arrays.npz").is_file():
        return "simulate"
    if any((child / "config.json").is_file() and "dataset" in (_config(child) or {})
           for child in folder.iterdir() if child.is_dir()):
        return "train-set"
    return None


def describe(folder: str | Path) -> str:
    """``"a simulation run folder (written by `ufm simulate`; read by ...)"``, or what else the path is."""
    folder = Path(folder)
    if not folder.exists():
        return "a path that does not exist"
    if not folder.is_dir():
        return "a file, not a folder"
    kind = identify(folder)
    if kind is None:
        return "a folder that no ufm command wrote" if any(folder.iterdir()) else "an empty folder"
    what, writer, reader = KINDS[kind]
    return f"{what} (written by `{writer}`; read by {reader})"


def check_overwrite(path: str | Path, kind: str, what: str = "--out") -> None:
    """Only a folder of ``kind`` is ever replaced (with --overwrite): a folder of another kind is refused
    (ValueError naming it), so that no folder ends up holding two kinds of result, and so is a folder of files no
    ufm command wrote (--overwrite would delete them).  An empty or missing folder passes."""
    path = Path(path)
    if not path.is_dir() or not any(path.iterdir()):
        return
    found = identify(path)
    if found is None:
        from ufm.runio import file_list

        raise ValueError(f"{what} {path} holds files no ufm command wrote ({file_list(path)}); --overwrite replaces only "
                         f"{KINDS[kind][0]}, never other files: choose another {what} (or empty it yourself)")
    if found != kind:
        raise ValueError(f"{what} {path} is {describe(path)}; --overwrite replaces only {KINDS[kind][0]}: "
                         f"choose another {what}")


def check_own_folder(path: str | Path, what: str = "--out", holds: str = "figures", example: str = "figures/") -> Path:
    """A folder for files that are not a run (figures, a report): writable (:func:`ufm.runio.check_out_dir`) and
    never a folder a ufm command wrote (that run would end up holding another command's files); its own named
    files in it are replaced.  Returns it; ValueError naming what the folder is otherwise."""
    from ufm.runio import check_out_dir

    path = check_out_dir(path, what, run_folder=False)
    if identify(path) is not None:
        raise ValueError(f"{what} {path} is {describe(path)}; {holds} go into a folder of their own (e.g. {example}): "
                         f"choose another {what}")
    return path


def require(folder: str | Path, kinds: tuple[str, ...], reader: str) -> str:
    """The kind of ``folder`` when it is one of ``kinds``; else ValueError: one line naming the kind found, the
    command that wrote it and the commands that read it, and what ``reader`` (the command asking) reads."""
    kind = identify(folder)
    if kind in kinds:
        return kind
    wanted = " or ".join(KINDS[k][0] for k in kinds)
    raise ValueError(f"{folder} is {describe(folder)}; {reader} reads {wanted}")
