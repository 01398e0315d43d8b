"""The Student's t, beta and binomial distribution functions the statistics use, in plain Python.

A controller that drives phones and writes reports installs no scipy (about 140 MB, most of what it would
otherwise weigh), so the few functions the intervals need are here, each from the regularised incomplete beta
function I_x(a, b) as Numerical Recipes (3rd ed., section 6.4) evaluates it: the continued fraction by
Lentz's method, on the side of the mean where it converges fast.  tests/test_distributions.py holds them to
scipy.special to 1e-10.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 100_000  # the fraction needs O(sqrt(max(a, b))) terms: a few hundred for a million draws


def betainc(a: float, b: float, x: float, y: float | None = None) -> float:
    """I_x(a, b), the beta distribution's cdf at ``x``; ``y`` is 1 - x when the caller knows it more exactly."""
    y = 1.0 - x if y is None else y
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    log_x = math.log1p(-y) if x > 0.5 else math.log(x)  # near 1, log(x) would lose y's digits
    log_y = math.log1p(-x) if y > 0.5 else math.log(y)
    log_front = a * log_x + b * log_y - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, y) / b


def _continued_fraction(a: float, b: float, x: float) -> float:
    """Numerical Recipes' betacf: the continued fraction of I_x(a, b), fast for x < (a + 1) / (a + b + 2)."""
    c, d = 1.0, _nonzero(1.0 - (a + b) * x / (a + 1))
    d = 1.0 / d
    fraction = d
    for m in range(1, _MAX_TERMS):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d, c = 1.0 / _nonzero(1.0 + even * d), _nonzero(1.0 + even / c)
        fraction *= d * c
        d, c = 1.0 / _nonzero(1.0 + odd * d), _nonzero(1.0 + odd / c)
        fraction *= d * c
        if abs(d * c - 1.0) < _EPS:
            return fraction
    raise ArithmeticError(f"the incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def _nonzero(value: float) -> float:
    return value if abs(value) >= _TINY else _TINY


def beta_cdf(x, a: float, b: float) -> np.ndarray:
    """scipy.stats.beta.cdf(x, a, b) for an array of ``x``."""
    return np.array([betainc(a, b, float(v)) for v in np.asarray(x, dtype=float)])


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (scipy.special.stdtr(df, -t))."""
    square = t * t
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + square), square / (df + square))
    return tail if t >= 0 else 1.0 - tail


@lru_cache(maxsize=4096)  # a history site asks for the same few (probability, df) pairs 10^5 times
def t_ppf(p: float, df: float) -> float:
    """The t quantile: the t with P(T <= t) = p (scipy.special.stdtrit(df, p))."""
    if not 0 < p < 1:
        raise ValueError(f"a probability strictly between 0 and 1, not {p}")
    if p < 0.5:
        return -t_ppf(1 - p, df)
    if p == 0.5:
        return 0.0
    if df == 1:  # the Cauchy distribution
        return math.tan(math.pi * (p - 0.5))
    tail = 1 - p
    # Newton on the upper tail, which is convex for t > 0: from any start below the quantile the steps close in
    # from below, and the normal quantile is below it (the t's tails are heavier).  A closer first guess (a
    # Cornish-Fisher series) saved a few steps of a computation the cache above makes once per pair.
    t = NormalDist().inv_cdf(p)
    for _ in range(200):
        step = (t_sf(t, df) - tail) / _t_pdf(t, df)
        t = t + step if t + step > 0 else t / 2
        if abs(step) <= 1e-11 * max(1.0, t):  # quadratic: the next step would be below rounding
            return t
    raise ArithmeticError(f"the t quantile did not converge (p={p}, df={df})")


def _t_pdf(t: float, df: float) -> float:
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_scale - (df + 1) / 2 * math.log1p(t * t / df))


EXACT_BINOMIAL_N = 1000  # comb(1000, 500) ~ 2.7e299 still fits a float; beyond, through log-gamma


def binom_cdf(n: int, p: float) -> np.ndarray:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, p) (scipy.stats.binom.cdf(np.arange(n + 1), n, p))."""
    if p <= 0 or p >= 1:
        return np.full(n + 1, 1.0) if p <= 0 else np.r_[np.zeros(n), 1.0]
    if n <= EXACT_BINOMIAL_N:  # exact binomial coefficients: a coverage of exactly 30/32 stays exactly that
        pmf = np.array([math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)])
    else:
        log_comb = np.array([math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in range(n + 1)])
        k = np.arange(n + 1)
        pmf = np.exp(log_comb + k * math.log(p) + (n - k) * math.log1p(-p))
    return np.minimum(np.cumsum(pmf), 1.0)
