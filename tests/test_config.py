"""Config helpers shared by the experiment configs (ufm._config)."""

import pytest

from ufm._config import differences, first_repeat
from ufm.simulate import SimConfig
from ufm.spec import SolveConfig


def test_differences_name_each_field_with_both_values():
    saved = SimConfig(lr=0.5, seeds=(3,)).to_dict()
    assert differences(saved, SimConfig(lr=0.5, seeds=(3,))) == []
    assert differences(saved, SimConfig(lr=0.25, seeds=(4,))) == ["seeds (saved [3], asked [4])", "lr (saved 0.5, asked 0.25)"]  # field order
    assert differences(saved, SimConfig(lr=0.25, seeds=(4,)), ignore={"seeds"}) == ["lr (saved 0.5, asked 0.25)"]


def test_differences_read_the_saved_json_through_the_config_class():
    import json

    cfg = SimConfig()
    saved = json.loads(json.dumps(cfg.to_dict()))  # tuples come back as lists
    assert differences(saved, cfg) == []
    # a config saved before a field with a default existed agrees with a config at that default
    assert differences({k: v for k, v in saved.items() if k != "tol"}, cfg) == []
    assert differences({k: v for k, v in saved.items() if k != "tol"}, SimConfig(tol=0.01)) != []
    with pytest.raises(ValueError, match="unknown config fields"):
        differences({**saved, "colour": "red"}, cfg)
    with pytest.raises(ValueError, match="must be a JSON object"):
        differences([1, 2], cfg)
    with pytest.raises(ValueError):
        differences(SimConfig().to_dict(), SolveConfig())  # another class's fields


def test_first_repeat_finds_the_first_value_an_earlier_one_equals():
    assert first_repeat([1, 2, 3]) is None and first_repeat([]) is None
    assert first_repeat([3, 1, 2, 1, 3]) == 1  # the first value seen again, not the first value repeated
    assert first_repeat([1.0, 1]) == 1  # equal numbers are one value
    assert first_repeat(["a", "B", "b"], key=str.lower) == "b"
