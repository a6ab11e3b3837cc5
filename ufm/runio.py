"""Run folders: atomic writes of JSON, JSON lines and NPZ, so a killed run never leaves a torn file.

A run folder holds ``config.json``, ``summary.json``, arrays in ``arrays.npz``, metrics over time in
``metrics.jsonl`` and figures as PNG.  Every write goes to a temporary file in the same folder, is
flushed to disk, then renamed over the target with ``os.replace`` (atomic on POSIX).
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # numpy is imported where arrays are read or written (a command's refusals answer without it)
    import numpy as np

__all__ = ["atomic_path", "write_json", "read_json", "write_jsonl", "read_jsonl", "write_npz", "read_npz", "jsonable",
           "load_checkpoint", "check_out_dir", "refuse_files", "file_list", "staged_dir"]


def jsonable(x: Any) -> Any:
    """Plain JSON types: numpy/torch scalars and arrays become numbers and lists, NaN/inf become None."""
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        x = x.tolist()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x


def _umask() -> int:
    """The process umask, read without changing it (``/proc/self/status`` on Linux; else set and restore)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stale_temporaries(path: Path) -> list[Path]:
    """Temporaries of earlier writes of ``path`` that were killed before they could clean up."""
    return list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary is removed on any exception; temporaries of the same target left by a killed process
    (SIGKILL gives no chance to clean up) are removed by the next write.  The file gets the permissions a
    plain ``open`` would give (0o666 minus the umask), not the 0o600 of ``mkstemp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_temporaries(path):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(data), indent=2) + "\n")


def _text(path: Path, what: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        return path.read_text()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a text file ({err}); it is corrupt: delete it or write it again") from None


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``; a missing or malformed file is an error naming the file and the place."""
    try:
        return json.loads(_text(path, "JSON file"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                         "the file is corrupt: delete it or write it again") from None


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(jsonable(r)) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[dict]:
    """One JSON object per non-empty line; a malformed line is an error naming the file and the line."""
    rows = []
    for number, line in enumerate(_text(path, "JSON-lines file").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} line {number} is not valid JSON ({err.msg}); the file is corrupt: "
                             "delete it or write it again") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path} line {number} is not a JSON object; this is not a metrics file")
        rows.append(row)
    return rows


def csv_cell(value: Any) -> str:
    """One CSV cell: "" for None, JSON for lists and dicts (``[6, 6, 3]``), ``repr`` for floats (round-trips)."""
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def write_csv(path: str | Path, rows: list[dict], header: list[str] | None = None) -> None:
    """``rows`` as a CSV table (the csv module: cells holding commas or quotes are quoted, so every row reads back
    with ``csv.DictReader`` or pandas into exactly its cells).  Columns: ``header``, else every key of every row in
    order of first appearance; a row lacking a column gets an empty cell."""
    import csv
    import io

    if header is None:
        header = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_cell(row.get(h)) for h in header] for row in rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive; a missing, truncated or foreign file is an error naming it."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"array file {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("it holds one array, not an archive of named arrays")
        with data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"{path} is not a readable .npz archive ({err}); the file is corrupt: delete it or "
                         "write it again") from None


def load_checkpoint(path: str | Path, map_location: Any = None, required: tuple[str, ...] = (),
                    weights_only: bool = False) -> dict:
    """``torch.load`` of a checkpoint dict, with a clear error naming the file when it is missing, empty,
    truncated, not a torch file, or lacks one of the ``required`` keys.

    ``weights_only=False`` by default because training checkpoints hold optimizer and scheduler state
    (e.g. ``collections.Counter``); load only files you wrote.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    size = path.stat().st_size
    fix = "it was not written completely or is not a checkpoint; delete it and start the run again"
    if size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): {fix}")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
        raise ValueError(f"checkpoint {path} is not a torch checkpoint ({size} bytes, not a zip archive): {fix}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=weights_only)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"checkpoint {path} cannot be read ({first}): {fix}") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, not a dict of states: {fix}")
    missing = [key for key in required if key not in state]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {missing}: it was written by another program or version; "
                         "start the run again")
    return state


def check_out_dir(path: str | Path, what: str = "--out", overwrite: bool = False, run_folder: bool = True) -> Path:
    """Check, before any compute, that results can be written to the folder ``path``; returns it.

    Refused: the current folder or one that holds it (``.``, an empty path); a path that is, or lies under, a file; a folder that cannot be created or written; and, for a
    ``run_folder``, an existing folder that already holds files unless ``overwrite`` (a run folder is never
    silently overwritten).  Nothing is created: a failed check leaves no folder behind.  ``what`` names the
    option or argument in the message (:func:`ufm.folders.check_overwrite` adds the folder's kind).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder; choose another {what}")
    if run_folder and path.exists() and Path.cwd().resolve().is_relative_to(path.resolve()):
        # a run folder is written (and replaced) as a whole, by a rename: never the folder one works in
        raise ValueError(f"{what} {path} is the current folder{' or holds it' if path.resolve() != Path.cwd().resolve() else ''}"
                         f" (an empty {what} means it too); give a run folder of its own, e.g. {what} runs/name")
    ancestor = path
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ValueError(f"{what} {path} lies under {ancestor}, which is a file, not a folder; choose another {what}")
    try:  # os.access ignores read-only file systems and is always true for root: try a real write
        probe = tempfile.mkdtemp(dir=ancestor, prefix=".ufm-write-check-")
        os.rmdir(probe)
    except OSError as err:
        raise ValueError(f"{what} {path} cannot be written ({err.strerror} in {ancestor}); choose another {what}") from None
    if run_folder and not overwrite:
        refuse_files(path, what)
    return path


def file_list(folder: Path, most: int = 4, skip: tuple[str, ...] = ()) -> str:
    """``"a, b, c, d, ..."``: the first names in ``folder`` (sorted; not those in ``skip``), for a message."""
    names = sorted(p.name for p in folder.iterdir() if p.name not in skip)
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def refuse_files(path: Path, what: str = "--out") -> None:
    """Refuse (ValueError) a run folder ``path`` that already holds files: it is never silently overwritten."""
    if path.is_dir() and any(path.iterdir()):
        raise ValueError(f"{what} {path} already holds files ({file_list(path)}); choose another {what} or pass "
                         "--overwrite to replace them")


@contextmanager
def staged_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder next to ``path``; on success it becomes ``path`` in one rename.

    A run that fails (or is killed) while writing its results never leaves a half-written run folder: the
    staging folder is removed on an exception, and one left by a killed process is removed by the next
    staged write of the same target.  An existing ``path`` that holds files is replaced only with
    ``overwrite`` (see :func:`check_out_dir`); its old content is removed after the new folder is in place.
    """
    path = Path(path)
    check_out_dir(path, "out", overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.partial-"))
    try:
        yield stage
        os.chmod(stage, 0o777 & ~_umask())
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
            os.replace(path, old / "previous")
        os.replace(stage, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
