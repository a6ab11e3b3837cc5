"""Time estimates for long loops: time the first steps of a loop of known length and say what the whole will take.

A loop makes a :class:`Timer` (its number of steps and their unit) and calls ``timer.step(done)`` after each
step.  Once the first steps are timed (at least ``min_steps`` of them and :func:`after_seconds` of work,
``$UFM_ESTIMATE_AFTER_S``, default 2 s), the timer projects the total (:func:`project`) and hands one
:class:`Estimate` to its callback; it hands a new one when the projection moves a lot (:func:`changed_a_lot`).
Work projected to end within :data:`QUIET_FACTOR` times that delay (10 s by default) is not announced.

The callback is the one given to the timer, else the one installed by :func:`reporting` (the CLI installs one that
prints :meth:`Estimate.line` on stderr and shows the time left in its progress bar; a task run by
:mod:`ufm.executors` installs :func:`to_stderr`, so a local worker's ``job.log`` and a SLURM job's log get the
line too), else none: a library call is silent unless asked.

Loops inside loops: a loop that runs its steps through inner loops (the points of a grid, the runs of a preset)
installs its timer with :func:`outer`; an inner loop's timer then reports only until the outer one has (the first
point says how long it takes; the grid's estimate follows once the first points have ended).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

__all__ = ["Estimate", "Timer", "project", "changed_a_lot", "format_duration", "after_seconds", "reporting",
           "outer", "loops", "also", "ignore", "to_stderr"]

AFTER_S = 2.0  # seconds of work timed before the first estimate (default of $UFM_ESTIMATE_AFTER_S)
QUIET_FACTOR = 5.0  # work projected to take less than QUIET_FACTOR x after_seconds() is not announced
RESTATE_FRACTION = 1 / 3  # a new estimate when the projected total moves by more than this fraction ...
RESTATE_MIN_S = 60.0  # ... and by more than this many seconds
RESTATE_EVERY_S = 10.0  # seconds between two looks at an announced projection
LONG_S = 86400.0  # an estimate above a day adds how to stop the work

Callback = Callable[["Estimate"], None]
_SINK: contextvars.ContextVar[Callback | None] = contextvars.ContextVar("ufm_eta_sink", default=None)
_OUTER: contextvars.ContextVar["Timer | None"] = contextvars.ContextVar("ufm_eta_outer", default=None)


def after_seconds(environ: dict[str, str] | None = None) -> float:
    """Seconds of work timed before the first estimate: ``$UFM_ESTIMATE_AFTER_S`` (a number >= 0), else 2."""
    text = (os.environ if environ is None else environ).get("UFM_ESTIMATE_AFTER_S", "").strip()
    try:
        value = float(text)
    except ValueError:
        return AFTER_S
    return value if math.isfinite(value) and value >= 0 else AFTER_S


def project(done: int, total: int, elapsed_s: float) -> float:
    """Seconds left for ``total - done`` more steps at the mean pace of ``done`` steps timed in ``elapsed_s``."""
    if done < 1:
        raise ValueError(f"an estimate needs at least one timed step, got {done}")
    return max(0, total - done) * elapsed_s / done


def changed_a_lot(old_total_s: float, new_total_s: float) -> bool:
    """Whether a new projection of the total (seconds) differs enough from the last one announced to re-state it:
    by more than :data:`RESTATE_FRACTION` of the old total and by more than :data:`RESTATE_MIN_S`."""
    moved = abs(new_total_s - old_total_s)
    return moved > RESTATE_FRACTION * old_total_s and moved > RESTATE_MIN_S


def format_duration(seconds: float) -> str:
    """A duration for people: ``9.6 ms``, ``4.2 s``, ``2 min 5 s``, ``2 h 40 min``, ``3 d 4 h``, ``31.7 years``."""
    s = float(seconds)
    if not math.isfinite(s):
        return "forever"
    if s < 1:
        return f"{s * 1e3:.2g} ms" if s < 0.01 else f"{s * 1e3:.0f} ms"
    if s < 60:
        return f"{s:.2g} s" if s < 10 else f"{s:.0f} s"
    minutes, hours, days = s / 60, s / 3600, s / 86400
    if minutes < 60:
        return f"{int(minutes)} min {int(s % 60)} s"
    if hours < 24:
        return f"{int(hours)} h {int(minutes % 60)} min"
    if days < 365:
        return f"{int(days)} d {int(hours % 24)} h"
    return f"{days / 365.25:.3g} years"


def _clock_time(when: float, now: float) -> str:
    """The wall-clock time ``when`` (seconds since the epoch): ``14:32`` today, ``Dec 09 14:32`` within a year."""
    if when - now > 366 * 86400:
        return ""
    stamp, today = time.localtime(when), time.localtime(now)
    return time.strftime("%H:%M" if stamp[:3] == today[:3] else "%b %d %H:%M", stamp)


@dataclass(frozen=True)
class Estimate:
    """A projection after ``done`` of ``total`` steps (``unit``) in ``elapsed_s``: ``remaining_s`` more at
    ``step_s`` each, ending at ``ends_at`` (seconds since the epoch).  ``parallel`` steps run at once; ``bound``: ``total`` is an upper bound
    (the loop may stop earlier).  ``what`` names the work (``simulation``, a run's name)."""

    what: str
    unit: str
    done: int
    total: int
    elapsed_s: float
    remaining_s: float
    step_s: float  # seconds per step (with ``parallel`` at once: between two step ends), the first left out
    ends_at: float
    parallel: int = 1
    bound: bool = False
    inner: bool = False  # made inside an outer loop (see :func:`outer`): not the whole of the work

    @property
    def total_s(self) -> float:
        return self.elapsed_s + self.remaining_s

    def line(self, now: float | None = None) -> str:
        """``estimate (simulate): about 2 h 40 min for 1000000 epochs at 9.6 ms each; expected to end at 14:32``."""
        now = time.time() if now is None else now
        pace = (f"one per {format_duration(self.step_s)}, {self.parallel} at a time" if self.parallel > 1
                else f"{format_duration(self.step_s)} each")
        size = f"up to {self.total}" if self.bound else f"{self.total}"
        head = f"estimate ({self.what}): " if self.what else "estimate: "
        text = (f"{head}{'at most ' if self.bound else ''}about {format_duration(self.total_s)} for {size} "
                f"{self.unit} at {pace}")
        clock = _clock_time(self.ends_at, now)
        text += f"; expected to end {f'by {clock}' if self.bound else f'at {clock}'}" if clock else \
            "; expected to end more than a year from now"
        if self.total_s > LONG_S:
            text += "; stop it with Ctrl-C if that is longer than you meant"
        return text

    def to_dict(self) -> dict:
        return {**asdict(self), "line": self.line()}


class Timer:
    """Times a loop of ``total`` steps (``unit``) and announces an :class:`Estimate` (see the module docstring).

    ``callback`` (default: the one :func:`reporting` installed, if any); ``min_steps``: steps timed before the first
    estimate; ``parallel``: steps that run at once; ``bound``: ``total`` is an upper bound; ``clock`` / ``wall``:
    monotonic and wall-clock seconds (injectable for tests); ``after_s``: default :func:`after_seconds`.

    The first steps of a loop pay for warming up (allocations, first calls: often many times a later step), so
    with ``min_steps`` > 1 the pace is timed from the end of the first step, over the steps made after half of the
    ``after_s`` that follow it (the first estimate comes ``after_s`` after the first step); once announced, an
    estimate is looked at again every :data:`RESTATE_EVERY_S` at the pace since the previous look.
    """

    def __init__(self, total: int, unit: str, what: str = "", callback: Callback | None = None, min_steps: int = 3,
                 parallel: int = 1, bound: bool = False, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, after_s: float | None = None) -> None:
        self.total, self.unit, self.what = int(total), unit, what
        self.callback = callback if callback is not None else _SINK.get()
        self.min_steps, self.parallel, self.bound = max(1, min_steps), max(1, parallel), bound
        self.clock, self.wall = clock, wall
        self.after_s = after_seconds() if after_s is None else after_s
        self.parent = _OUTER.get()
        self.start = clock()
        self.done = 0
        self.last: Estimate | None = None
        self._next_check = self.start + self.after_s
        self._marks: list[tuple[int, float]] = []  # (steps, clock): the end of the first step, then the pace's start

    def estimate(self, now: float | None = None) -> Estimate:
        """The projection after the steps done so far (at least one), at the pace of the latest timed mark (see the
        class docstring), else of all steps."""
        now = self.clock() if now is None else now
        elapsed = now - self.start
        steps, seconds = self.done, elapsed
        for done, at in reversed(self._marks):
            if self.done > done:
                steps, seconds = self.done - done, now - at
                break
        remaining = project(steps, steps + self.total - self.done, seconds)
        return Estimate(self.what, self.unit, self.done, self.total, elapsed, remaining, seconds / steps,
                        self.wall() + remaining, self.parallel, self.bound, self.parent is not None)

    def _silenced(self) -> bool:
        """An inner loop whose outer loop has announced its own estimate (or that has no one to tell)."""
        return self.callback is None or (self.parent is not None and self.parent.last is not None)

    def _mark(self, now: float) -> None:
        """Note the end of the first step (the warm-up), then where the pace starts (half a delay later)."""
        if not self._marks:
            self._marks.append((self.done, now))
            if self.min_steps > 1:
                self._next_check = max(self._next_check, now + self.after_s)
        elif len(self._marks) == 1 and now - self._marks[0][1] >= self.after_s / 2:
            self._marks.append((self.done, now))

    def step(self, done: int | None = None) -> Estimate | None:
        """Record that ``done`` steps are done (default: one more); returns the estimate if one was announced."""
        self.done = self.done + 1 if done is None else int(done)
        if self._silenced():
            return None
        now = self.clock()
        if len(self._marks) < 2:
            self._mark(now)
        if self.done < min(self.min_steps, self.total) or self.done >= self.total or now < self._next_check:
            return None
        self._next_check = now + (RESTATE_EVERY_S if self.last is not None else max(self.after_s, 1.0))
        current = self.estimate(now)
        if self.last is not None:  # later estimates: at the pace since the previous look (the load may change)
            self._marks = [*self._marks[-2:], (self.done, now)]
        if current.total_s < QUIET_FACTOR * self.after_s:
            return None
        if self.last is not None and not changed_a_lot(self.last.total_s, current.total_s):
            return None
        self.last = current
        self._next_check = now + RESTATE_EVERY_S
        self.callback(current)
        return current


@contextlib.contextmanager
def reporting(callback: Callback, default: bool = False) -> Iterator[None]:
    """Timers made inside the block (this thread, this context) announce to ``callback``; ``default``: only if no
    callback is installed already (a task run inline keeps the CLI's)."""
    if default and _SINK.get() is not None:
        yield
        return
    token = _SINK.set(callback)
    try:
        yield
    finally:
        _SINK.reset(token)


@contextlib.contextmanager
def outer(timer: Timer) -> Iterator[Timer]:
    """Make ``timer`` the outer loop of the timers made inside the block (see the module docstring)."""
    token = _OUTER.set(timer)
    try:
        yield timer
    finally:
        _OUTER.reset(token)


def loops(total: int, unit: str, what: str = "") -> contextlib.AbstractContextManager[Timer]:
    """``with loops(len(runs), "runs", "train") as timer:`` around a loop whose steps run loops of their own (call
    ``timer.step()`` after each): it announces once the first step has ended (see :func:`outer`)."""
    return outer(Timer(total, unit, what, min_steps=1))


def also(first: Callback) -> Callback:
    """A callback that calls ``first`` (e.g. records the estimate in a run folder), then the installed one, if any."""
    then = _SINK.get()

    def both(estimate: Estimate) -> None:
        first(estimate)
        if then is not None:
            then(estimate)

    return both


def ignore(estimate: Estimate) -> None:
    """A callback that drops the estimate (a process that is not the one to report)."""


def to_stderr(estimate: Estimate) -> None:
    """Print the estimate's line on stderr (a log file, a pipe or a terminal)."""
    print(estimate.line(), file=sys.stderr, flush=True)
