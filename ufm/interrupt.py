"""Ctrl-C that always lands: SIGINT becomes a flag that long loops check at safe points.

Python raises KeyboardInterrupt wherever the main thread happens to be: raised inside a weakref callback or a
``__del__`` it is printed as "Exception ignored" and lost (the run goes on), and raised halfway through a write it
leaves the write half done.  Inside :func:`safe_points` the SIGINT handler only sets a flag, and :func:`check`,
called by the long loops where stopping leaves everything consistent (a training step, an evaluation batch, an
epoch of the simulator, an executor's wait), raises :class:`Interrupted` there.  A Ctrl-C that comes after the
block's last check ends the block with :class:`Interrupted` all the same.  Outside such a block Ctrl-C raises
KeyboardInterrupt as Python does (code that never checks stays interruptible).  A second Ctrl-C while the first
waits for its safe point does nothing more, unless the first has waited :data:`FORCE_AFTER_S` seconds: then it
raises KeyboardInterrupt at once, as Python's default would.

:class:`Interrupted` (a KeyboardInterrupt) carries what was kept and how to continue, filled in by the layers it
passes through (:func:`noting`); the command line prints its :meth:`Interrupted.line` and exits with code 130.

Worker processes (local executor, data-parallel ranks) are started inside :func:`ignoring` so that they ignore
SIGINT from birth: a terminal's Ctrl-C, sent to the whole process group, reaches only the parent, which stops
them.  A worker calls :func:`as_worker` first: then SIGTERM sets its flag, and its own safe points end its task.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["Interrupted", "FORCE_AFTER_S", "requested", "check", "sleep", "safe_points", "noting", "as_interrupted",
           "ignoring", "as_worker", "as_command", "ending"]

FORCE_AFTER_S = 5.0

_flag = threading.Event()
_state = {"depth": 0, "first": 0.0, "worker": False, "command": False}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, landed at a safe point: ``kept`` says what was kept, ``how`` how to continue, ``notes`` what else
    was done on the way out (e.g. jobs cancelled)."""

    def __init__(self, kept: str = "", how: str = "", notes: tuple[str, ...] = ()):
        super().__init__(kept)
        self.kept, self.how, self.notes = kept, how, tuple(notes)

    def note(self, kept: str | None = None, how: str | None = None, also: str | None = None) -> "Interrupted":
        """Fill in what a layer knows: ``kept`` only where none is known yet (the innermost layer knows best what it
        kept), ``how`` replacing the one known (the outermost layer knows best how its command continues), ``also``
        added to the notes.  Returns self."""
        if kept and not self.kept:
            self.kept = kept
        if how:
            self.how = how
        if also and also not in self.notes:
            self.notes += (also,)
        return self

    def line(self) -> str:
        """The one line a user sees, e.g. ``interrupted: runs/x keeps its checkpoint of epoch 7; continue with ...``."""
        parts = [self.kept or "nothing was kept", *self.notes, self.how or "re-run the same command to start again"]
        return "interrupted: " + "; ".join(parts)


def as_interrupted(err: BaseException) -> Interrupted:
    """``err`` (any KeyboardInterrupt) as an :class:`Interrupted`."""
    return err if isinstance(err, Interrupted) else Interrupted()


def requested() -> bool:
    """Whether Ctrl-C (or, in a worker, SIGTERM) has come and not yet ended a :func:`safe_points` block."""
    return _flag.is_set()


def check() -> None:
    """Raise :class:`Interrupted` if Ctrl-C has come: call it where stopping leaves everything consistent."""
    if _flag.is_set():
        raise Interrupted()


def sleep(seconds: float, step: float = 0.05) -> None:
    """``time.sleep`` in short slices, with :func:`check` between them."""
    end = time.monotonic() + seconds
    while True:
        check()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(step, left))


def _on_signal(signum: int, frame: object) -> None:
    """SIGINT (SIGTERM in a worker): set the flag, raise nothing, unless outside every block (Python's behaviour)
    or the first Ctrl-C has waited FORCE_AFTER_S for its safe point."""
    if _state["depth"] == 0 and not _state["worker"]:
        raise KeyboardInterrupt
    if not _flag.is_set():
        _state["first"] = time.monotonic()
        _flag.set()
    elif signum == signal.SIGINT and time.monotonic() - _state["first"] > FORCE_AFTER_S:
        raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def safe_points() -> Iterator[None]:
    """A block whose code calls :func:`check` often: Ctrl-C inside it sets the flag, and the block ends with
    :class:`Interrupted` at the next check (or at its end).  Nests; the SIGINT handler is installed (and the previous
    one restored) in the main thread only, and not over a handler of someone else's (e.g. SIGINT ignored)."""
    if not _main_thread():
        yield
        check()
        return
    previous = signal.getsignal(signal.SIGINT)
    install = previous is signal.default_int_handler or previous == signal.SIG_DFL
    if install:
        signal.signal(signal.SIGINT, _on_signal)
    _state["depth"] += 1
    landed = False
    try:
        yield
        check()
    except KeyboardInterrupt:
        landed = _state["depth"] == 1 and not _state["worker"]
        if landed:
            _flag.clear()  # it has landed: a library user who catches it may go on
        raise
    finally:
        _state["depth"] -= 1
        if install:  # a command ends once it has landed: a second Ctrl-C cannot cut its exit short
            signal.signal(signal.SIGINT, signal.SIG_IGN if landed and _state["command"] else previous)


@contextmanager
def noting(kept: str | None = None, how: str | None = None, also: str | None = None) -> Iterator[None]:
    """Any KeyboardInterrupt out of the block leaves as an :class:`Interrupted` with these notes
    (see :meth:`Interrupted.note`)."""
    try:
        yield
    except KeyboardInterrupt as err:
        raise as_interrupted(err).note(kept, how, also) from None


@contextmanager
def ignoring() -> Iterator[None]:
    """SIGINT ignored for the block (in the main thread; elsewhere nothing changes): processes started in it ignore
    it from birth, so a terminal's Ctrl-C reaches only this process.  A Ctrl-C during the block is lost; keep it to
    the starting of processes."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def as_command() -> None:
    """In a process that ends when an interrupt lands (the ``ufm`` command, not a notebook): from the moment one has
    landed, further Ctrl-Cs are ignored, so that the way out (what was kept, the one line) is not cut short."""
    _state["command"] = True


def ending() -> None:
    """An interrupt has landed and the process ends: in a command (:func:`as_command`), ignore further Ctrl-Cs."""
    if _state["command"] and _main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def as_worker() -> None:
    """In a worker process (the main thread), first thing: SIGINT ignored (the parent stops its workers), SIGTERM
    sets the flag, so that the task ends at its next safe point with :class:`Interrupted`; on Linux SIGTERM also
    comes when the parent dies (killed, it cannot stop its workers)."""
    _state["worker"] = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_signal)
    _term_when_parent_dies()


def _term_when_parent_dies() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGTERM) where there is one (Linux); nothing elsewhere."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass
