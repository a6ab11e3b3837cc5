"""Statistics over seeds: means with t confidence intervals, paired differences, and the power of a paired test.

A study repeats each arm over seeds; the seed fixes the network's initialization and the batches, so two arms
run with the same seed are a pair.  Everything here is over plain floats (one value per seed), with scipy's
t distributions:

- :func:`mean_ci`: mean +- t_{1-a/2, n-1} s / sqrt(n);
- :func:`paired_difference`: the same over the differences of the seeds both arms have, with the paired t-test's
  p-value (``scipy.stats.ttest_rel``);
- :func:`seeds_needed` / :func:`detectable_effect`: how many seeds a paired two-sided t-test needs to detect a
  difference of a given size with a given power (the non-central t distribution), and the smallest difference a
  given number of seeds detects.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["Interval", "PairedDifference", "mean_ci", "paired_difference", "power_paired", "seeds_needed", "has_spread",
           "detectable_effect"]


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values with its ``level`` confidence interval [low, high] (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    std: float
    n: int
    level: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return {**asdict(self), "half_width": self.half_width}


@dataclass(frozen=True)
class PairedDifference(Interval):
    """The mean of ``a - b`` over the seeds both have, its interval, the paired t-test's two-sided p-value and
    the seeds paired."""

    p_value: float = math.nan
    seeds: tuple = ()


def _finite(values: Sequence[float], what: str) -> np.ndarray:
    x = np.asarray([float(v) for v in values], dtype=float)
    if not np.isfinite(x).all():
        raise ValueError(f"{what} has non-finite values {x.tolist()}")
    return x


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"the confidence level must lie in (0, 1), got {level}")


def mean_ci(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of ``values`` with the t interval mean +- t_{(1+level)/2, n-1} s / sqrt(n) (s: the sample standard
    deviation, ddof 1).  With one value the bounds are NaN (no spread to estimate); with none, refused."""
    from scipy import stats  # (imported when a statistic is computed: the commands start without it)

    _check_level(level)
    x = _finite(values, "the values")
    if len(x) == 0:
        raise ValueError("no values to average")
    mean = float(x.mean())
    if len(x) < 2:
        return Interval(mean, math.nan, math.nan, math.nan, 1, level)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, len(x) - 1)) * std / math.sqrt(len(x))
    return Interval(mean, mean - half, mean + half, std, len(x), level)


def has_spread(ci: Interval) -> bool:
    """Whether the values spread beyond rounding (a standard deviation above 1e-12 of their scale)."""
    return ci.n >= 2 and ci.std > 1e-12 * max(1.0, abs(ci.mean))


def paired_difference(a: Mapping, b: Mapping, level: float = 0.95) -> PairedDifference:
    """``a - b`` paired by key (seed -> value), over the keys both have: the mean difference with its t interval
    and the two-sided p-value of the paired t-test (NaN with fewer than two pairs or no spread)."""
    from scipy import stats  # (imported when a statistic is computed: the commands start without it)

    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        raise ValueError(f"no seed in common to pair (first: {sorted(a)}, second: {sorted(b)})")
    d = mean_ci([float(a[s]) - float(b[s]) for s in seeds], level)
    p = math.nan
    if len(seeds) >= 2 and has_spread(d):
        p = float(stats.ttest_rel([float(a[s]) for s in seeds], [float(b[s]) for s in seeds]).pvalue)
    return PairedDifference(d.mean, d.low, d.high, d.std, d.n, level, p, seeds)


def _check_rates(alpha: float, power: float | None = None) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"the test level alpha must lie in (0, 1), got {alpha}")
    if power is not None and not alpha < power < 1:
        raise ValueError(f"the power must lie in (alpha, 1) = ({alpha}, 1), got {power}")


def power_paired(effect: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` with ``n`` pairs when the true mean difference is
    ``effect`` and the differences' standard deviation ``std``: P(|T| > t_{1-alpha/2, n-1}) for T non-central t
    with n - 1 degrees of freedom and non-centrality effect sqrt(n) / std."""
    from scipy import stats  # (imported when a statistic is computed: the commands start without it)

    _check_rates(alpha)
    if n < 2:
        return math.nan
    if std <= 0:
        raise ValueError(f"the standard deviation of the differences must be positive, got {std}")
    df, nc = n - 1, abs(effect) * math.sqrt(n) / std
    crit = stats.t.ppf(1 - alpha / 2, df)
    upper, lower = float(stats.nct.sf(crit, df, nc)), float(stats.nct.cdf(-crit, df, nc))
    # scipy's nct loses a far tail to NaN at some non-centralities: the far tail is then negligible
    upper = upper if math.isfinite(upper) else float(nc > crit)
    lower = lower if math.isfinite(lower) else 0.0
    return upper + lower


def seeds_needed(effect: float, std: float, alpha: float = 0.05, power: float = 0.8, max_n: int = 100_000) -> int:
    """The fewest seeds (pairs) with which the paired two-sided t-test detects a mean difference ``effect`` at
    level ``alpha`` with probability ``power``, given the differences' standard deviation ``std``."""
    _check_rates(alpha, power)
    if effect == 0:
        raise ValueError("an effect of 0 cannot be detected; give the size of the difference to detect")
    n = 2
    while power_paired(effect, std, n, alpha) < power:
        n += 1
        if n > max_n:
            raise ValueError(f"more than {max_n} seeds would be needed")
    return n


def detectable_effect(std: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest mean difference that ``n`` seeds detect (paired two-sided t-test, level ``alpha``) with
    probability ``power``, given the differences' standard deviation ``std``: NaN with fewer than two seeds."""
    from scipy import optimize  # (imported when a statistic is computed: the commands start without it)

    _check_rates(alpha, power)
    if n < 2:
        return math.nan
    high = std
    while power_paired(high, std, n, alpha) < power:  # bracket the root (large non-centralities overflow nct)
        high *= 2
    return float(optimize.brentq(lambda e: power_paired(e, std, n, alpha) - power, 0.0, high, xtol=1e-12 * std))
