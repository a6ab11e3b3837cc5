"""Where a run came from: command line, package and git versions, torch/CUDA versions, device."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

__all__ = ["provenance"]


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


def provenance(device: torch.device) -> dict:
    """A JSON-ready record of this process: argv, versions, device name, start time (UTC)."""
    import ufm

    cuda = device.type == "cuda"
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": sys.argv,
        "ufm_version": ufm.__version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else platform.processor() or platform.machine(),
        "host": platform.node(),
    }
