"""ufm.provenance: the record of where a run came from is complete, JSON-ready and true of this process."""

import json
import platform
import re
import sys

import torch

import ufm
from ufm.provenance import provenance


def test_the_record_names_the_command_versions_and_the_cpu():
    record = provenance(torch.device("cpu"))
    assert set(record) == {"started", "command", "ufm_version", "git_commit", "python", "torch", "cuda", "device",
                           "device_name", "cpu", "cpu_capability", "threads", "threads_source", "numpy", "pillow", "host"}
    assert json.loads(json.dumps(record)) == record  # JSON-ready as it is
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["started"])
    assert record["command"] == sys.argv and record["ufm_version"] == ufm.__version__
    assert record["python"] == platform.python_version() and record["torch"] == torch.__version__
    assert record["device"] == "cpu" and record["device_name"] == record["cpu"] != ""
    assert record["threads"] == torch.get_num_threads() and record["threads_source"] in (
        "caller", "--threads", "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK", "executor share", "free cores", "problem size")
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    import numpy

    assert record["numpy"] == numpy.__version__


def test_the_git_commit_is_a_hash_with_a_dirty_mark_or_none():
    commit = provenance(torch.device("cpu"))["git_commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit), commit
