"""ufm.sim_config: a SimConfig is checked when built, fills its loss's defaults, lists the fields without effect and
stacks its runs."""

import pytest

from ufm.errors import FieldError
from ufm.sim_config import DEFAULT_N_W, LOSS_OPTIONS, SimConfig


def test_the_defaults_follow_the_loss():
    scl = SimConfig()
    assert scl.n_w == DEFAULT_N_W and scl.prototype_anchors is True
    ce = SimConfig(loss="ce")
    assert ce.n_w == (0.0,) and ce.prototype_anchors is None  # not applicable: recorded None
    assert LOSS_OPTIONS["scl"] == ("n_w", "prototype_anchors") and LOSS_OPTIONS["ce"] == ()
    assert SimConfig(loss="class-averaging").prototype_anchors is None


def test_runs_are_the_product_of_n_w_tau_and_seeds_and_scalars_become_tuples():
    cfg = SimConfig(n_w=5.0, tau=[0.1, 1.0], seeds=(0, 1))
    assert cfg.n_w == (5.0,) and cfg.tau == (0.1, 1.0)
    assert cfg.runs == [{"n_w": 5.0, "tau": 0.1, "seed": 0}, {"n_w": 5.0, "tau": 0.1, "seed": 1},
                        {"n_w": 5.0, "tau": 1.0, "seed": 0}, {"n_w": 5.0, "tau": 1.0, "seed": 1}]


@pytest.mark.parametrize("overrides, message", [
    ({"tau": (0.1, 0.1)}, "tau repeats 0.1: the stacked runs would be identical copies"),
    ({"seeds": ()}, "seeds needs at least one value"),
    ({"loss": "ce", "n_w": (0.0, 10.0)}, "stacks runs that loss ce makes identical"),
    ({"n_w": (0.5,)}, "with prototype anchors n_w must be 0 or >= 1"),
    ({"loss": "hinge"}, "hinge"),
    ({"momentum": 1.0}, "momentum"),
    ({"epochs": 0}, "epochs"),
    ({"device": "tpu"}, "tpu"),
])
def test_bad_values_are_refused_when_built(overrides, message):
    with pytest.raises(ValueError, match=message):
        SimConfig(**overrides)


def test_a_repeated_stack_value_names_its_field():
    with pytest.raises(FieldError) as err:
        SimConfig(n_w=(10.0, 10.0))
    assert err.value.fields == ("n_w",)


def test_the_fields_without_effect_say_why():
    assert SimConfig(loss="ce").without_effect()["n_w"] == "with {loss} ce (it has no prototype copies)"
    assert "only scl and limit" in SimConfig(loss="class-averaging").without_effect()["prototype_anchors"]
    assert SimConfig(n_w=(0.0,)).without_effect()["prototype_anchors"] == "with {n_w} = 0 (no prototype copies)"
    assert SimConfig().without_effect()["momentum"] == "with {optimizer} adam (sgd only)"
    assert "momentum" not in SimConfig(optimizer="sgd").without_effect()
    assert SimConfig(batching="full").without_effect()["batch_size"] == "with full batching (one batch of all samples)"
    assert "batch_size" not in SimConfig().without_effect() and "prototype_anchors" not in SimConfig().without_effect()
