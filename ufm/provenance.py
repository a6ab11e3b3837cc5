"""Where a run came from: command line, package and git versions, torch/CUDA versions, device, and what decides a
CPU's floating-point paths (its model, the SIMD level torch dispatches to, the thread count): the same seed gives
the same run on the same machine, and a trajectory of many epochs may differ where these differ."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

__all__ = ["provenance", "thread_record"]


def _git_commit() -> str | None:
    """The commit of the source tree this package runs from, with ``+dirty`` if it has changes; None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def thread_record() -> dict:
    """torch's CPU thread count now and what chose it (:func:`ufm.threads.last`; "caller" when no ufm run chose)."""
    from ufm.threads import last

    choice = last()
    threads = torch.get_num_threads()
    return {"threads": threads, "threads_source": choice.source if choice and choice.threads == threads else "caller"}


def provenance(device: torch.device) -> dict:
    """A JSON-ready record of this process: argv, versions (torch, numpy, Pillow, which decodes JPEG images), device
    name, the CPU (model, torch's SIMD dispatch level, threads and what chose them), start time (UTC)."""
    import ufm

    cuda = device.type == "cuda"
    cpu = _cpu_model()
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": sys.argv,
        "ufm_version": ufm.__version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu,
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **thread_record(),
        "numpy": _version("numpy"),
        "pillow": _version("pillow"),
        "host": platform.node(),
    }
