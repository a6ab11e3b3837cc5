"""ufm.executor_config: where tasks run; options of another executor refused, and the SLURM parameters built from
the options (sbatch options of their own refused in --slurm-extra)."""

import pytest

from ufm.errors import FieldError
from ufm.executor_config import SLURM_FIELDS, ExecutorConfig, parse_slurm_extra, slurm_parameters


def test_slurm_options_apply_to_the_slurm_executor_only():
    with pytest.raises(FieldError, match="partition, time_min apply to executor='slurm' only .* drop them") as err:
        ExecutorConfig(partition="gpu", time_min=5)
    assert err.value.fields[:2] == ("partition", "time_min")
    with pytest.raises(FieldError, match="workers applies to executor='local' only"):
        ExecutorConfig(executor="slurm", workers=2)
    assert set(ExecutorConfig().without_effect()) == {*SLURM_FIELDS, "workers"}
    assert set(ExecutorConfig(executor="local").without_effect()) == set(SLURM_FIELDS)
    assert ExecutorConfig(executor="slurm").without_effect() == {"workers": "with the slurm executor (it applies to "
                                                                            "the local executor only)"}


@pytest.mark.parametrize("overrides, message", [
    ({"time_min": 0}, "time_min must be >= 1, got 0"),
    ({"workers": -1, "executor": "local"}, "workers must be >= 0, got -1"),
    ({"mem_gb": float("nan")}, "mem_gb must be a finite number >= 0"),
    ({"partition": " "}, "partition is empty"),
    ({"mem_gb": 4, "slurm_extra": ("mem-per-cpu=2G",)}, "both set the memory; give one"),
])
def test_bad_slurm_values_are_refused(overrides, message):
    with pytest.raises(FieldError, match=message):
        ExecutorConfig(**{"executor": "slurm", **overrides})


def test_slurm_extra_items_are_sbatch_long_options():
    assert parse_slurm_extra(["qos=high", "--constraint = volta", "mem_per_cpu=2G"]) == {
        "qos": "high", "constraint": "volta", "mem-per-cpu": "2G"}
    for items, message in ((["qos"], "items are KEY=VALUE"), (["q os=x"], "items are KEY=VALUE"),
                           (["qos="], "items are KEY=VALUE"), (["time=10"], "'time', which has its own option time_min"),
                           (["output=x"], "'output', which submitit sets"), (["qos=a", "qos=b"], "sets 'qos' twice")):
        with pytest.raises(FieldError, match=message):
            parse_slurm_extra(items)


def test_slurm_parameters_hold_only_what_was_set():
    assert slurm_parameters(ExecutorConfig(executor="slurm")) == {"time": 60, "cpus_per_task": 1}
    params = slurm_parameters(ExecutorConfig(executor="slurm", partition="gpu", account="lab", gpus_per_task=1,
                                             mem_gb=1.5, array_parallelism=4, slurm_extra=("qos=high",)))
    assert params == {"time": 60, "cpus_per_task": 1, "partition": "gpu", "account": "lab", "gpus_per_task": 1,
                      "mem": "1536MB", "array_parallelism": 4, "additional_parameters": {"qos": "high"}}
    assert slurm_parameters(ExecutorConfig(executor="slurm", mem_gb=8))["mem"] == "8GB"
