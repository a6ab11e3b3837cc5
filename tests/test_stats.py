"""ufm.stats against answers known in closed form or from published tables."""

import math

import pytest

from ufm.stats import detectable_effect, mean_ci, paired_difference, power_paired, seeds_needed


def test_mean_ci_of_three_values_is_the_t_interval():
    ci = mean_ci([1, 2, 3])
    # t_{0.975, 2} = 4.302653 (tables); s = 1
    assert ci.mean == 2 and ci.std == pytest.approx(1.0) and ci.n == 3
    assert ci.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert (ci.low, ci.high) == pytest.approx((2 - 2.484138, 2 + 2.484138), rel=1e-6)


def test_mean_ci_level_and_degenerate_cases():
    assert mean_ci([1, 2, 3], level=0.9).half_width == pytest.approx(2.919986 / math.sqrt(3), rel=1e-6)
    one = mean_ci([0.7])
    assert one.mean == 0.7 and math.isnan(one.low) and math.isnan(one.half_width)
    same = mean_ci([0.5, 0.5, 0.5])
    assert same.half_width == 0 and same.low == same.high == 0.5
    with pytest.raises(ValueError, match="no values"):
        mean_ci([])
    with pytest.raises(ValueError, match="non-finite"):
        mean_ci([1, float("nan")])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1, 2], level=95)


def test_paired_difference_pairs_by_seed_not_by_position():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 7: 100.0}  # seed 7 has no partner: left out
    b = {2: 1.0, 1: 0.0, 0: 0.0}
    d = paired_difference(a, b)
    assert d.seeds == (0, 1, 2)
    # differences 1, 2, 2: mean 5/3, s = 1/sqrt(3)
    assert d.mean == pytest.approx(5 / 3)
    assert d.half_width == pytest.approx(4.302653 * (1 / math.sqrt(3)) / math.sqrt(3), rel=1e-6)
    # t = (5/3) / (s / sqrt(3)) = 5, two-sided p with 2 degrees of freedom = 1 - 5 / sqrt(27) (closed form for df 2)
    assert d.p_value == pytest.approx(1 - 5 / math.sqrt(27), rel=1e-9)


def test_paired_difference_without_pairs_or_spread():
    with pytest.raises(ValueError, match="no seed in common"):
        paired_difference({0: 1.0}, {1: 1.0})
    d = paired_difference({0: 1.0, 1: 2.0}, {0: 0.5, 1: 1.5})  # every difference 0.5
    assert d.mean == pytest.approx(0.5) and d.half_width == 0 and math.isnan(d.p_value)


def test_power_and_seeds_needed_match_the_tables():
    # Paired t-test, two-sided alpha 0.05, power 0.8 (Cohen's tables, G*Power): effect size 1 needs 10 pairs, 0.5
    # needs 34.
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(0.5, 1.0) == 34
    assert power_paired(1.0, 1.0, 10) == pytest.approx(0.803, abs=0.002)
    assert power_paired(1.0, 1.0, 9) < 0.8
    # no effect: the power is the level
    assert power_paired(0.0, 1.0, 12) == pytest.approx(0.05, abs=1e-9)


def test_detectable_effect_inverts_the_power():
    e = detectable_effect(0.02, 3)
    assert power_paired(e, 0.02, 3) == pytest.approx(0.8, abs=1e-6)
    assert detectable_effect(0.02, 10) < e  # more seeds, smaller effects
    assert seeds_needed(detectable_effect(0.01, 10), 0.01) == 10
    assert math.isnan(detectable_effect(0.02, 1))


def test_power_is_defined_where_scipy_loses_a_tail():
    # two pairs (one degree of freedom), where scipy's nct.cdf returns NaN for some non-centralities
    powers = [power_paired(e, 1.0, 2) for e in (0.5, 1, 2, 5, 10, 20, 100)]
    assert all(0.05 <= p <= 1 for p in powers) and powers == sorted(powers)
    assert power_paired(10, 1.0, 2, alpha=0.05) == pytest.approx(0.7328, abs=1e-3)
    assert math.isfinite(detectable_effect(1.0, 2))
