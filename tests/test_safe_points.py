"""Ctrl-C as a flag checked at safe points (ufm.interrupt): it lands at the next check whatever the main thread was
doing when it came (a weakref callback, a __del__), never before, and the handler is put back afterwards."""

import os
import signal
import time
import weakref

import pytest

from ufm import interrupt
from ufm.interrupt import Interrupted


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_inside_a_block_ctrl_c_waits_for_the_next_check_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    steps = []
    with pytest.raises(Interrupted):
        with interrupt.safe_points():
            for step in range(5):
                interrupt.check()
                steps.append(step)
                if step == 1:
                    _ctrl_c()  # nothing is raised here: the step finishes
                    steps.append("finished")
    assert steps == [0, 1, "finished"]
    assert signal.getsignal(signal.SIGINT) is before and not interrupt.requested()  # landed: a caller may go on
    with pytest.raises(KeyboardInterrupt) as outside:  # outside a block: Python's behaviour
        _ctrl_c()
        time.sleep(1)
    assert not isinstance(outside.value, Interrupted)


def test_ctrl_c_in_a_weakref_callback_or_del_is_not_lost():
    """Raised there, a KeyboardInterrupt would be printed as 'Exception ignored' and swallowed."""

    class Thing:
        def __del__(self):
            _ctrl_c()

    class Ref:
        pass

    with pytest.raises(Interrupted):
        with interrupt.safe_points():
            Thing()  # collected at once: SIGINT from its __del__
            assert interrupt.requested()
            target = Ref()
            ref = weakref.ref(target, lambda _: _ctrl_c())  # noqa: F841
            del target
            interrupt.check()
    with pytest.raises(Interrupted):  # after the block's last check: it ends the block all the same
        with interrupt.safe_points():
            _ctrl_c()


def test_a_second_ctrl_c_adds_nothing_and_sleep_wakes_up(monkeypatch):
    start = time.monotonic()
    with pytest.raises(Interrupted):
        with interrupt.safe_points():
            _ctrl_c()
            _ctrl_c()  # a second one soon after: still no exception here
            interrupt.sleep(30)
    assert time.monotonic() - start < 5
    monkeypatch.setattr(interrupt, "FORCE_AFTER_S", 0.0)  # the first one waited too long: the second forces it
    with pytest.raises(KeyboardInterrupt):
        with interrupt.safe_points():
            _ctrl_c()
            time.sleep(0.01)
            _ctrl_c()
            time.sleep(1)


def test_the_line_says_what_was_kept_and_how_to_continue():
    err = Interrupted().note(kept="runs/x keeps its checkpoint of epoch 7", how="continue with `ufm train --resume`")
    err.note(kept="something else", how="re-run the same command", also="its SLURM jobs were cancelled")
    assert err.line() == ("interrupted: runs/x keeps its checkpoint of epoch 7; its SLURM jobs were cancelled; "
                          "re-run the same command")
    with pytest.raises(Interrupted) as caught:
        with interrupt.noting("points are kept", "re-run"):
            raise KeyboardInterrupt
    assert caught.value.line() == "interrupted: points are kept; re-run"
    assert Interrupted().line() == "interrupted: nothing was kept; re-run the same command to start again"
