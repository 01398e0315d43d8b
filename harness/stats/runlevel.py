"""Statistics at the level where the noise lives: runs, not iterations.

Iterations inside one process share its memory layout, page placement, clock state and
the neighbours' load of that minute, so they are not independent draws of what the next
process (or the next night) will see: treating 30 of them as 30 independent samples gives
p-values of 1e-14 for shifts that are pure process-to-process noise.  A *run* is one
process on the host or one runner invocation on a phone.  Each run is reduced to its own
percentile; runs are the independent units.

Estimates are geometric means of run-level values with Student-t intervals on the log
scale (latency is multiplicative noise: a slow process is slower by a factor).  With R
runs there are R - 1 degrees of freedom, so the interval widens honestly when runs are
few; below 3 runs, or when it spans more than 10x, no interval is given (``shown_interval``).  ``tests/test_runlevel_coverage.py``
checks by simulation that the 95% intervals cover 93-97% under a known between-run
variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.stats.distributions import t_ppf, t_sf
from harness.stats.summary import Interval

LEVEL = 0.95

# When an interval is worth printing, and a verdict may lean on it (the one rule; everything that shows or uses a
# run-level interval goes through shown_interval / sensible_ratio).  With 2 runs a t-interval has 1 degree of
# freedom: t = 12.7 at 95%, 63.7 at 99%, so "P50 ratio 1.8 [0.000, 2e11]" is valid and says nothing.  An interval
# whose high end is more than MAX_INTERVAL_SPAN times its low end says as little, at any run count -- unless it is a
# ratio's and lies wholly on one side of 1 (no change): "between 22x and 300x slower" still says which way.
MIN_INTERVAL_RUNS = 3
MAX_INTERVAL_SPAN = 10.0


def shown_interval(interval: Interval | None, runs: int, no_change: float | None = None) -> Interval | None:
    """``interval`` when it is worth printing and judging by: from 3 runs or more, finite, positive, and its high
    end at most MAX_INTERVAL_SPAN times its low end or (a ratio's, ``no_change`` = 1) wholly on one side of
    ``no_change``; otherwise None (say :func:`no_interval_words`)."""
    if interval is None or runs < MIN_INTERVAL_RUNS:
        return None
    if not (math.isfinite(interval.low) and math.isfinite(interval.high)) or interval.low <= 0:
        return None
    one_sided = no_change is not None and not (interval.low <= no_change <= interval.high)
    return interval if one_sided or interval.high / interval.low <= MAX_INTERVAL_SPAN else None


def no_interval_words(runs: int) -> str:
    """Why a row shows no interval."""
    if runs < 2:
        return "one run: no interval"
    if runs < MIN_INTERVAL_RUNS:
        return f"too few runs for an interval ({runs})"
    return f"runs too spread for an interval (over {MAX_INTERVAL_SPAN:g}x wide)"


def more_runs_advice(runs_stored: int, runs_planned: int | None = None) -> str:
    """What gets an interval: runs in the plan when it asks for too few; the rest of the runs when the plan asked
    for enough and fewer were stored (a stopped run: --resume measures them); calmer runs when there were enough
    and they spread too far (telling a plan of 'runs: 3' to set 'runs: 3' helped no one)."""
    if runs_planned is not None and runs_planned >= MIN_INTERVAL_RUNS > runs_stored:
        return f"the plan asks for {runs_planned} runs and {runs_stored} were stored: resume the run (--resume RUN_ID)"
    if runs_stored < MIN_INTERVAL_RUNS:
        return f"set 'runs' in the plan to {MIN_INTERVAL_RUNS} or more"
    return "look for thermal throttling, background load or frequency changes; more runs also narrow it"


def sensible_ratio(ratio: float | None) -> bool:
    """A detectable change (or any derived ratio) worth printing: within MAX_INTERVAL_SPAN either way (which leaves
    out inf and nan: every comparison with nan is false)."""
    return ratio is not None and 1 / MAX_INTERVAL_SPAN <= ratio <= MAX_INTERVAL_SPAN


@dataclass(frozen=True)
class Estimate:
    """A run-level estimate: geometric mean of per-run values, with its t-interval (None when not worth printing:
    ``shown_interval``)."""

    value: float
    interval: Interval | None
    runs: int
    log_sd: float | None  # between-run standard deviation of log values; None for one run


@dataclass(frozen=True)
class RatioEstimate:
    """B / A from run-level values: point, interval, two-sided p-value of 'no change'."""

    ratio: float
    interval: Interval | None
    p_value: float | None
    df: float | None
    paired: bool
    runs_a: int
    runs_b: int

    def as_dict(self) -> dict:
        return {"ratio": self.ratio, "interval": None if self.interval is None else [self.interval.low, self.interval.high],
                "p_value": self.p_value, "df": self.df, "paired": self.paired, "runs_a": self.runs_a,
                "runs_b": self.runs_b}


def log_values(values) -> np.ndarray:
    """Natural logs of the positive, finite values (None and failed runs dropped)."""
    data = np.asarray([v for v in values if v is not None])  # none left: an empty float array
    data = data[np.isfinite(data) & (data > 0)]
    return np.log(data)


def _t(level: float, df: float) -> float:
    """Student's t quantile for a two-sided ``level`` (cached: a history site asks for 10^5 of them)."""
    return t_ppf(0.5 + level / 2, float(df))


def paired_log_diffs(a_values, b_values) -> np.ndarray:
    """log(b_i / a_i) for the rounds where both runs gave a value."""
    pairs = [(a, b) for a, b in zip(a_values, b_values) if a is not None and b is not None and a > 0 and b > 0]
    return np.log([b for _, b in pairs]) - np.log([a for a, _ in pairs])  # no pairs: an empty array


def geometric_estimate(values, level: float = LEVEL) -> Estimate | None:
    """Geometric mean of positive run-level values with a t-interval across runs."""
    logs = log_values(values)
    if logs.size == 0:
        return None
    centre = float(logs.mean())
    if logs.size < 2:
        return Estimate(math.exp(centre), None, 1, None)
    sd = float(logs.std(ddof=1))
    half = _t(level, logs.size - 1) * sd / math.sqrt(logs.size)
    interval = Interval(math.exp(centre - half), math.exp(centre + half), level)
    return Estimate(math.exp(centre), shown_interval(interval, int(logs.size)), int(logs.size), sd)


def ratio_estimate(a_values, b_values, paired: bool = False, level: float = LEVEL,
                   night_sd: float = 0.0) -> RatioEstimate | None:
    """B / A from run-level values.

    ``paired``: run i of A and run i of B were measured next to each other (the same round),
    so the test is on the per-round log differences, which cancels drifts both builds saw.
    Otherwise Welch's t-test on log values (nights measured hours apart).

    ``night_sd``: the cell's learned night-to-night spread (sd of a night's log level beyond what
    its runs show; see harness.nightly.noise).  Two nights each carry it, so 2 * night_sd**2 is
    added to the variance of an unpaired difference: runs inside one night cannot see it.
    """
    if paired:
        diffs = paired_log_diffs(a_values, b_values)
        if diffs.size == 0:
            return None
        centre = float(diffs.mean())
        if diffs.size < 2:
            return RatioEstimate(math.exp(centre), None, None, None, True, 1, 1)
        se, df = float(diffs.std(ddof=1)) / math.sqrt(diffs.size), float(diffs.size - 1)
        n_a = n_b = int(diffs.size)
    else:
        la, lb = log_values(a_values), log_values(b_values)
        if la.size == 0 or lb.size == 0:
            return None
        centre = float(lb.mean() - la.mean())
        n_a, n_b = int(la.size), int(lb.size)
        if min(n_a, n_b) < 2:
            return RatioEstimate(math.exp(centre), None, None, None, False, n_a, n_b)
        se, df = welch_se_df(float(la.std(ddof=1)), n_a, float(lb.std(ddof=1)), n_b)
        se = math.sqrt(se ** 2 + 2 * night_sd ** 2)
    if se == 0:  # a point interval: shown from MIN_INTERVAL_RUNS on, whichever side of 1 it lies
        p = 1.0 if centre == 0 else 0.0
        return RatioEstimate(math.exp(centre), shown_interval(Interval(math.exp(centre), math.exp(centre), level),
                                                              min(n_a, n_b)), p, df, paired, n_a, n_b)
    half = _t(level, df) * se
    p = 2 * t_sf(abs(centre) / se, df)
    interval = Interval(math.exp(centre - half), math.exp(centre + half), level)
    return RatioEstimate(math.exp(centre), shown_interval(interval, min(n_a, n_b), 1.0), p, df, paired, n_a, n_b)


def welch_se_df(log_sd_a: float, runs_a: int, log_sd_b: float, runs_b: int) -> tuple[float, float]:
    """Standard error of a difference of two log means, and its Welch-Satterthwaite degrees of freedom (2 runs or
    more a side)."""
    va, vb = log_sd_a ** 2 / runs_a, log_sd_b ** 2 / runs_b
    if not (va or vb):
        return 0.0, float(runs_a + runs_b - 2)
    return math.sqrt(va + vb), (va + vb) ** 2 / (va ** 2 / (runs_a - 1) + vb ** 2 / (runs_b - 1))


def min_detectable_ratio(se: float, df: float, alpha: float, power: float) -> float:
    """The smallest slowdown (a ratio > 1) that a two-sided t-test at ``alpha`` finds with ``power``,
    given the standard error ``se`` of the log ratio and its degrees of freedom (se 0: exp(0) = 1, no change)."""
    return math.exp((_t(1 - alpha, df) + _t(2 * power - 1, df)) * se)
