"""Time estimates of long loops (ufm.eta): the projection, when it is announced, its line, nesting."""

from __future__ import annotations

import time

import pytest

from ufm import eta


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _timer(total, seen, clock, **kw):
    return eta.Timer(total, "epochs", "simulation", seen.append, clock=clock, wall=lambda: 1e9 + clock.now,
                     after_s=2.0, **kw)


def test_project_is_the_mean_pace_times_the_steps_left():
    assert eta.project(10, 1000, 5.0) == pytest.approx(495.0)
    assert eta.project(1000, 1000, 5.0) == 0.0
    with pytest.raises(ValueError, match="at least one timed step"):
        eta.project(0, 10, 1.0)


def test_first_estimate_after_the_delay_and_the_first_steps():
    clock, seen = FakeClock(), []
    timer = _timer(1_000_000_000, seen, clock)
    clock.now = 5.0  # a slow first step (warming up)
    assert timer.step(1) is None
    clock.now = 5.5  # slow steps after it too
    assert timer.step(2) is None
    clock.now = 6.0
    assert timer.step(50) is None  # not before 2 s after the first step
    clock.now = 7.0
    est = timer.step(150)
    assert seen == [est] and est.done == 150
    # the pace from half the delay after the first step on: 10 ms each
    assert est.step_s == pytest.approx(0.01) and est.remaining_s == pytest.approx((1e9 - 150) * 0.01)
    assert est.ends_at == pytest.approx(1e9 + 7.0 + est.remaining_s)
    line = est.line(now=1e9)
    assert line.startswith("estimate (simulation): about 115 d 17 h ") and "for 1000000000 epochs at 10 ms each" in line
    assert "Ctrl-C" in line  # months: says how to stop it
    far = eta.Estimate("simulation", "epochs", 3, 10**10, 2.0, 1e8, 0.01, 1e9 + 1e8)
    assert "about 3.17 years" in far.line(now=1e9) and "expected to end more than a year from now" in far.line(now=1e9)


def test_nothing_before_the_delay_and_nothing_for_short_work():
    clock, seen = FakeClock(), []
    timer = _timer(100, seen, clock)
    for i in range(1, 4):
        clock.now = 0.1 * i
        timer.step(i)
    assert seen == []  # 0.3 s timed: under the 2 s delay
    clock.now = 2.5
    timer.step(99)  # projected total 2.5 s: under QUIET_FACTOR x 2 s, not worth a line
    assert seen == []


def test_restated_only_when_the_projection_moves_a_lot():
    clock, seen = FakeClock(), []
    timer = _timer(1000, seen, clock)
    clock.now = 0.3
    timer.step(1)
    clock.now = 3.0
    timer.step(10)  # 0.3 s per epoch: 300 s projected
    clock.now = 15.0
    timer.step(50)  # 0.3 s per epoch: the same
    assert len(seen) == 1
    clock.now = 30.0
    timer.step(60)  # 1.5 s per epoch since the last look: re-stated
    assert len(seen) == 2 and seen[-1].step_s == pytest.approx(1.5)
    assert eta.changed_a_lot(300, 420) and not eta.changed_a_lot(300, 380) and not eta.changed_a_lot(100, 150)


def test_inner_loops_report_until_the_outer_one_has():
    clock, outer_seen, inner_seen = FakeClock(), [], []
    with eta.outer(_timer(3, outer_seen, clock, min_steps=1)) as outer:
        first = _timer(100, inner_seen, clock)
        clock.now = 0.5
        first.step(1)
        clock.now = 3.0
        first.step(10)
        assert len(inner_seen) == 1 and inner_seen[0].inner
        clock.now = 30.0
        outer.step()  # the first point has ended: the outer loop's estimate
        assert len(outer_seen) == 1 and not outer_seen[0].inner
        second = _timer(100, inner_seen, clock)
        clock.now = 40.0
        second.step(10)
        assert len(inner_seen) == 1  # quiet now
    assert eta.Timer(5, "x").parent is None  # the block ended


def test_parallel_steps_and_upper_bounds_read_as_such():
    est = eta.Estimate("sweep", "tasks", 4, 40, 60.0, 540.0, 15.0, time.time() + 540, parallel=4)
    assert "about 10 min 0 s for 40 tasks at one per 15 s, 4 at a time; expected to end at" in est.line()
    est = eta.Estimate("copies", "solves", 2, 30, 20.0, 280.0, 10.0, time.time() + 280, bound=True)
    assert "at most about 5 min 0 s for up to 30 solves at 10 s each; expected to end by" in est.line()


def test_callbacks_come_from_reporting_unless_given():
    seen = []
    assert eta.Timer(5, "x").callback is None  # a library call is silent unless asked
    with eta.reporting(seen.append):
        assert eta.Timer(5, "x").callback == seen.append
        with eta.reporting(eta.to_stderr, default=True):  # a task run inline keeps the caller's
            assert eta.Timer(5, "x").callback == seen.append
        both = eta.also(lambda est: seen.append("kept"))
    both("e")
    assert seen == ["kept", "e"]


def test_durations_and_the_delay_setting():
    assert [eta.format_duration(s) for s in (0.0096, 0.33, 4.2, 125, 9600, 3 * 86400 + 4 * 3600, 1e9)] == \
        ["9.6 ms", "330 ms", "4.2 s", "2 min 5 s", "2 h 40 min", "3 d 4 h", "31.7 years"]
    assert eta.after_seconds({"UFM_ESTIMATE_AFTER_S": "0.5"}) == 0.5
    assert eta.after_seconds({"UFM_ESTIMATE_AFTER_S": "soon"}) == eta.AFTER_S
    assert eta.after_seconds({}) == eta.AFTER_S


def test_verify_prop1_estimates_its_minimizations(monkeypatch):
    from ufm.prop1 import MINIMIZATIONS, minimize_both

    monkeypatch.setenv("UFM_ESTIMATE_AFTER_S", "0")
    seen = []
    mins, ce_rows = minimize_both(epochs=5, on_estimate=seen.append)
    assert len(mins) == 2 and len(ce_rows) == 16
    assert [e.what for e in seen][:1] == ["simulation"] and [e.what for e in seen].count("verify-prop1") == 1
    assert next(e for e in seen if e.what == "verify-prop1").total == MINIMIZATIONS
