"""Distribution-free confidence intervals for a quantile, from order statistics.

For n independent draws of a continuous variable, the number of draws below the q-quantile is
Binomial(n, q), so [x_(l), x_(u)] covers it with probability P(l <= B < u), whatever the distribution
(e.g. Conover, Practical Nonparametric Statistics, 3rd ed., sec. 3.2).  The interval is chosen as
equal-tailed as the binomial allows and covers at least ``level``; where the sample is too small for
a bound (a two-sided 95% interval for a P95 needs 72 draws: 0.95**72 < 0.025), there is no interval.
tests/test_stats.py checks the coverage by simulation.
"""

from __future__ import annotations

import math

import numpy as np

from harness.stats.distributions import binom_cdf
from harness.stats.summary import Interval


def fewest_draws(q: float, level: float = 0.95) -> int:
    """The fewest draws with which :func:`quantile_interval` gives the q-quantile an interval (72 for a P95 at
    95%): the bound nearer the tail, the extreme draw, must leave at most the tail beyond it (q**n <= tail)."""
    tail = (1 - level) / 2
    return math.ceil(math.log(tail) / math.log(max(q, 1 - q)))


def quantile_interval(values, q: float, level: float = 0.95) -> tuple[Interval | None, float]:
    """(interval, its exact coverage) for the q-quantile (0-1) of the distribution ``values`` came from.

    Both bounds are order statistics of ``values``; the interval is None when either bound needs more
    draws than there are."""
    x = np.sort(values)
    n = len(x)
    tail = (1 - level) / 2
    # The interval [x[lo], x[hi]] (0-based) covers the q-quantile unless B <= lo or B > hi, B ~ Binomial(n, q): lo is
    # the last k with P(B <= k) <= tail, hi the first with P(B > k) <= tail.  No draws: no k, no interval.
    cdf = binom_cdf(n, q)[:n]  # cdf[k] = P(B <= k), k < n
    lows, highs = np.flatnonzero(cdf <= tail), np.flatnonzero(1 - cdf <= tail)
    if not lows.size or not highs.size:
        return None, 0.0
    lo, hi = lows[-1], highs[0]
    coverage = float(cdf[hi] - cdf[lo])  # P(lo < B <= hi)
    return Interval(float(x[lo]), float(x[hi]), level), coverage
