"""Shared test setup: the tests live in subfolders mirroring the package (solver/, deep/, cli/),
so put tests/ itself on sys.path for the helpers (`from _idx import ...`, `from _tables import ...`)
and for the cross-file imports (`from test_slurm import ...`)."""
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


# ------------------------------------------------------------------------------ no process outlives its test
#
# A process a test started and left running (a torchrun worker after a failed launch, a training process after a
# test's Ctrl-C) takes a core from every later test: on these 2-core machines a compiled model's OpenMP barrier then
# spins for many minutes.  After each test, its leftover descendants get a grace period, are killed, and the test
# fails naming them.  Helpers that live as long as the pytest process by design are not leftovers.

import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

_LONG_LIVED = ("multiprocessing.resource_tracker", "multiprocessing.forkserver", "compile_worker",
               "torch/_inductor", "sbatch", "munged", "slurmd", "slurmctld")


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every live (not zombie) process below ``root``, from /proc."""
    parent, cmd = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        if fields[0] in ("Z", "X"):
            continue
        parent[int(entry)], cmd[int(entry)] = int(fields[1]), line
    found, frontier = {}, [root]
    while frontier:
        p = frontier.pop()
        for child, ppid in parent.items():
            if ppid == p and child not in found:
                found[child] = cmd[child]
                frontier.append(child)
    return found


def _leftovers(before: set[int]) -> dict[int, str]:
    return {p: c for p, c in _descendants(os.getpid()).items()
            if p not in before and not any(name in c for name in _LONG_LIVED)}


def _adopt_orphans() -> None:
    """Make this process a child subreaper (Linux), so a leftover whose parent died (torchrun's workers after the
    launcher exits) is re-parented here, where the check below sees it, instead of to init."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


@pytest.fixture(scope="session", autouse=True)
def _subreaper():
    _adopt_orphans()
    yield


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    if not os.path.isdir("/proc"):
        yield
        return
    before = set(_descendants(os.getpid()))
    yield
    deadline = time.monotonic() + 15.0  # a process told to stop may take a moment
    while (left := _leftovers(before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        pytest.fail("the test left processes running (killed now): "
                    + "; ".join(f"{p}: {c[:160]}" for p, c in sorted(left.items())), pytrace=False)
