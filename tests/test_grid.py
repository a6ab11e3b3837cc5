"""ufm.grid: parsing FIELD=V1,V2,..., the points' folder names and hashes, and "no effect at any point"."""

import pytest

from ufm.errors import FieldError
from ufm.grid import config_hash, parse_grid, point_label, refuse_without_effect, without_effect_everywhere
from ufm.simulate import SimConfig
from ufm.spec import SolveConfig


def test_values_are_parsed_by_the_type_of_their_field():
    grid = parse_grid(["ratio=1,10", "k=5,10", "n-w=0,100", "prototype_anchors=true,off", "geometry=etf,minority"],
                      SimConfig)
    assert grid == {"ratio": (1.0, 10.0), "k": (5, 10), "n_w": ((0.0,), (100.0,)),
                    "prototype_anchors": (True, False), "geometry": ("etf", "minority")}
    assert isinstance(grid["k"][0], int) and isinstance(grid["ratio"][0], float)
    assert parse_grid([], SimConfig) == {}


@pytest.mark.parametrize("spec, message", [
    ("ratio", r"a grid is FIELD=V1,V2,... \(e.g. ratio=1,10,100\), got 'ratio'"),
    ("=1,2", "a grid is FIELD=V1,V2"),
    ("colour=red", "unknown grid field 'colour'; SimConfig has "),
    ("ratio=1,inf", "grid value 'inf' for ratio is not a finite number"),
    ("k=3,4.5", "grid value '4.5' for k is not an integer"),
    ("relu=maybe", "grid value 'maybe' for relu is not true or false"),
    ("geometry=etf,", "grid field geometry has an empty value"),
    ("tau=0.1,0.1", "grid field tau repeats a value: 0.1,0.1"),
])
def test_a_bad_grid_is_refused_saying_what_to_write(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_grid([spec], SimConfig)


def test_a_field_given_twice_is_refused():
    with pytest.raises(ValueError, match="grid field ratio is given twice; put all its values in one"):
        parse_grid(["ratio=1,2", "ratio=4"], SimConfig)


def test_point_names_are_folder_safe_and_plain():
    assert point_label({"ratio": 10.0, "tau": 0.1}) == "ratio=10,tau=0.1"
    assert point_label({"n_w": (100.0,), "seed": 3}) == "n_w=100,seed=3"  # a one-element tuple reads as its value
    assert point_label({"gram_file": "runs/a b.npy"}) == "gram_file=runs_a_b.npy"
    assert point_label({"lr": 1e-5, "relu": True}) == "lr=1e-05,relu=True"


def test_the_config_hash_depends_on_the_kind_and_every_field():
    cfg = SolveConfig(k=4, n_major=6)
    assert config_hash("solve", cfg) == config_hash("solve", SolveConfig(k=4, n_major=6))
    assert len(config_hash("solve", cfg)) == 8 and int(config_hash("solve", cfg), 16) >= 0
    assert config_hash("solve", cfg) != config_hash("simulate", cfg)
    assert config_hash("solve", cfg) != config_hash("solve", SolveConfig(k=4, n_major=6, tau=0.2))


def test_fields_without_effect_at_every_point_are_refused():
    etf, minority = SolveConfig(geometry="etf", n_w=10.0), SolveConfig(geometry="minority", n_w=10.0)
    assert "gamma" in without_effect_everywhere([etf, etf], ["gamma", "tau"])
    assert without_effect_everywhere([etf, minority], ["gamma"]) == {}  # it acts at the minority point
    assert without_effect_everywhere([], ["gamma"]) == {}
    with pytest.raises(FieldError, match="grid field gamma has no effect without the minority geometry: its 2 "
                                         "values would run identical points"):
        refuse_without_effect([etf], {"gamma": (0.5, 2.0)})
    with pytest.raises(FieldError, match="gamma has no effect without the minority geometry at any point of the grid"):
        refuse_without_effect([etf, etf], {"tau": (0.1, 1.0)}, given=["gamma"])
    refuse_without_effect([etf, minority], {"geometry": ("etf", "minority")}, given=["gamma"])
