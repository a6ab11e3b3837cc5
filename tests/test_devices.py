"""ufm.devices: what a ``device`` option means, and the refusals that say what to use instead."""

import pytest
import torch

from ufm.devices import resolve_device
from ufm.errors import FieldError


def test_cpu_and_auto_resolve_to_a_torch_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_auto_is_the_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_an_unknown_device_is_refused_naming_the_field_and_the_choices():
    with pytest.raises(FieldError) as err:
        resolve_device("tpu")
    assert err.value.fields == ("device",)
    assert str(err.value) == "unknown device 'tpu': use auto, cpu or cuda"


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_where_there_is_none_is_refused_with_what_to_use(monkeypatch, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(FieldError, match="CUDA is not available here; use device='cpu' or device='auto'") as err:
        resolve_device(name)
    assert err.value.fields == ("device",)
