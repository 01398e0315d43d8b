"""Is B slower than A?  Run-level ratios with intervals, a test, a noise floor and a detectable effect.

The units are runs (processes, runner invocations), never iterations: see
:mod:`harness.stats.runlevel`.  A change is called only when all of these hold:

* it is significant (Welch's t-test on log run medians, p < ALPHA; paired by round when
  the two builds were measured alternately in the same night, where the nightly compares each
  run's P10: harness.nightly.checks.paired_gate), with the cell's learned
  night-to-night spread added to the variance: a whole night can sit higher or lower than
  the next, which no number of runs inside one night can see;
* it is larger than the practical threshold (default 5%);
* it is larger than the cell's noise floor, the change that night-to-night spread alone
  explains at 99% (learned from calibrations and unchanged nights, harness.nightly.noise).

When the runs are too spread for a threshold-sized change to be found (the minimum
detectable effect exceeds the threshold) and nothing was called, the verdict is "too
noisy" instead of a reassuring "no change".  ``benchmarks/false_alarms.py`` measures the
false-alarm and detection rates of exactly this rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.stats.runlevel import (LEVEL, MIN_INTERVAL_RUNS, RatioEstimate, log_values, min_detectable_ratio,
                                     more_runs_advice, no_interval_words, paired_log_diffs, ratio_estimate, sensible_ratio,
                                     welch_se_df)
from harness.stats.summary import Interval

MIN_RUNS = MIN_INTERVAL_RUNS  # per side: below it no interval is worth printing, so no verdict leans on one
DEFAULT_THRESHOLD = 0.05  # 5% slower (or faster) before anyone is paged
ALPHA = 0.01  # two-sided significance level of the run-level test
POWER = 0.8  # for the minimum detectable effect


@dataclass(frozen=True)
class LatencyComparison:
    runs_a: int
    runs_b: int
    ratio: float  # B / A, geometric means of the runs' own ``statistic``
    ratio_ci: Interval | None
    p95_ratio: float | None
    p95_ratio_ci: Interval | None
    p_value: float | None
    paired: bool
    mde_ratio: float | None  # smallest slowdown these runs find with 80% power at ALPHA
    noise_floor: float | None  # the cell's learned night-to-night spread, as a fraction
    verdict: str  # "slower" | "faster" | "no change" | "too noisy" | "too few runs"
    reason: str
    statistic: str = "median"  # the run-level value compared: "median", or "P10" for the paired nightly gate
    ci_level: float = LEVEL  # of ratio_ci and p95_ratio_ci; 1 - alpha where an interval is printed beside the verdict
    alpha: float = ALPHA  # the test's two-sided significance level
    threshold: float = DEFAULT_THRESHOLD

    def reading(self) -> str:
        """The verdict with the rule that gave it: the α, the p-value and the smallest change these runs find,
        so a row never reads 'too noisy' beside an interval that seems to exclude 1 without saying why."""
        if self.p_value is None:
            return f"{self.verdict}: {self.reason}"
        test = (f"{'significant' if self.p_value < self.alpha else 'not significant'} at α = {self.alpha:g} "
                f"(p = {self.p_value:.2g})")
        mde = f"; detects changes of {_pct(self.mde_ratio)} or more" if self.mde_ratio is not None else ""
        return f"{self.verdict}: {test}{mde} (threshold {self.threshold:.0%})"

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        for key in ("ratio_ci", "p95_ratio_ci"):
            d[key] = None if d[key] is None else [d[key].low, d[key].high]
        return d


def _pct(ratio: float) -> str:
    return f"{ratio - 1:+.1%}"


def compare_runs(a_p50, b_p50, a_p95=None, b_p95=None, paired: bool = False, threshold: float = DEFAULT_THRESHOLD,
                 noise_floor: float | None = None, alpha: float = ALPHA, night_sd: float = 0.0,
                 statistic: str = "median", ci_level: float = LEVEL) -> LatencyComparison:
    """Compare run-level medians (and P95s) of a baseline A with a candidate B.

    ``a_p50``/``b_p50`` may hold another run-level location (named by ``statistic``, which the
    verdict's text uses): the paired nightly gate compares each run's P10.

    ``night_sd`` and ``noise_floor``: the cell's learned night-to-night spread (log sd) and the change
    it explains (a fraction); both 0/None when nothing has been learned yet.

    ``ci_level``: of the intervals.  Where an interval is printed beside the verdict, pass ``1 - alpha``: then
    the interval excludes 1 exactly when the test is significant (the same t, se and degrees of freedom).
    """
    rule = {"ci_level": ci_level, "alpha": alpha, "threshold": threshold}
    med = ratio_estimate(a_p50, b_p50, paired=paired, night_sd=night_sd, level=ci_level)
    p95 = ratio_estimate(a_p95, b_p95, paired=paired, night_sd=night_sd, level=ci_level) if a_p95 and b_p95 else None
    runs_a = sum(1 for v in a_p50 if v)
    runs_b = sum(1 for v in b_p50 if v)
    if med is None or min(runs_a, runs_b) < MIN_RUNS or med.p_value is None:
        return LatencyComparison(runs_a, runs_b, med.ratio if med else math.nan, None,
                                 p95.ratio if p95 else None, None, None, paired, None, noise_floor, "too few runs",
                                 (f"{statistic} {_pct(med.ratio)}; " if med else "")
                                 + f"{no_interval_words(min(runs_a, runs_b))}: needs at least {MIN_RUNS} runs on each "
                                 f"side (has {runs_a} and {runs_b}); {more_runs_advice(min(runs_a, runs_b))}",
                                 statistic, **rule)
    if med.interval is None:  # runs too spread for an interval worth printing: nothing to lean a verdict on
        return LatencyComparison(runs_a, runs_b, med.ratio, None, p95.ratio if p95 else None, None, med.p_value,
                                 paired, None, noise_floor, "too noisy",
                                 f"{statistic} {_pct(med.ratio)}, {no_interval_words(min(runs_a, runs_b))}: "
                                 "too few runs to detect a change; add runs or quiet the device", statistic, **rule)
    mde = _mde(a_p50, b_p50, med, alpha, night_sd)
    mde = mde if sensible_ratio(mde) else None
    floor = max(threshold, noise_floor or 0.0)
    significant = med.p_value < alpha
    # Always said: an interval beside a verdict is read against the test's α, which is not always 1 - 0.95.
    interval = f"{ci_level * 100:g}% interval [{_pct(med.interval.low)}, {_pct(med.interval.high)}]"
    size = f"{statistic} {_pct(med.ratio)} {interval} (p={med.p_value:.2g})"
    if significant and med.ratio > 1 + floor:
        verdict, reason = "slower", f"{size}, over the {_floor_words(threshold, noise_floor)}"
    elif significant and med.ratio < 1 / (1 + floor):
        verdict, reason = "faster", f"{size}, beyond the {_floor_words(threshold, noise_floor)}"
    elif mde is None or mde > 1 + threshold:
        verdict = "too noisy"
        finds = f"these runs detect only changes of {_pct(mde)} or more" if mde else "too few runs to detect a change"
        reason = (f"{size}; too noisy to call at this threshold: {finds} (threshold {threshold:.0%}); "
                  "add runs or quiet the device")
    else:
        why = "not significant" if not significant else f"within the {_floor_words(threshold, noise_floor)}"
        verdict, reason = "no change", f"{size}, {why}"
    return LatencyComparison(runs_a, runs_b, med.ratio, med.interval, p95.ratio if p95 else None,
                             p95.interval if p95 else None, med.p_value, paired, mde, noise_floor, verdict, reason,
                             statistic, **rule)


def _floor_words(threshold: float, noise_floor: float | None) -> str:
    if noise_floor is not None and noise_floor > threshold:
        return f"cell's noise floor of {noise_floor:.1%} (threshold {threshold:.0%})"
    return f"{threshold:.0%} threshold"


def _mde(a_p50, b_p50, med: RatioEstimate, alpha: float, night_sd: float) -> float:
    """Minimum detectable slowdown of this design (paired or Welch) with these runs' spread.  Called only for a
    ratio with a p-value, so with at least 2 rounds (paired) or 2 runs a side."""
    if med.paired:
        diffs = paired_log_diffs(a_p50, b_p50)
        return min_detectable_ratio(float(diffs.std(ddof=1)) / math.sqrt(diffs.size), diffs.size - 1, alpha, POWER)
    la, lb = log_values(a_p50), log_values(b_p50)
    se, df = welch_se_df(float(la.std(ddof=1)), int(la.size), float(lb.std(ddof=1)), int(lb.size))
    return min_detectable_ratio(math.sqrt(se ** 2 + 2 * night_sd ** 2), df, alpha, POWER)
