"""Is B slower than A?  Ratio of medians and of P95 with bootstrap intervals, plus Mann-Whitney U.

A change is called only when it is both statistically significant and larger than a
practical threshold (default 5%), and only from enough samples on both sides: noise on
phones is large, and a nightly that cries wolf stops being read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stats.summary import Interval

MIN_SAMPLES = 20  # per side; fewer and the verdict is "too few samples", never a regression
DEFAULT_THRESHOLD = 0.05  # 5% slower (or faster) before anyone is paged
ALPHA = 0.01  # Mann-Whitney significance level (two-sided)


@dataclass(frozen=True)
class LatencyComparison:
    n_a: int
    n_b: int
    median_ratio: float  # median(B) / median(A)
    median_ratio_ci: Interval | None
    p95_ratio: float
    p95_ratio_ci: Interval | None
    p_value: float | None  # Mann-Whitney U, two-sided
    verdict: str  # "slower" | "faster" | "no change" | "too few samples"
    reason: str

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        for key in ("median_ratio_ci", "p95_ratio_ci"):
            d[key] = None if d[key] is None else [d[key].low, d[key].high]
        return d


def _ratio_ci(a: np.ndarray, b: np.ndarray, q: float, resamples: int, seed: int, level: float = 0.95) -> Interval:
    """Percentile-bootstrap interval of percentile_q(B) / percentile_q(A), resampling each side independently."""
    rng = np.random.default_rng(seed)
    qa = np.percentile(a[rng.integers(0, a.size, (resamples, a.size))], q, axis=1)
    qb = np.percentile(b[rng.integers(0, b.size, (resamples, b.size))], q, axis=1)
    ratios = qb / qa
    alpha = (1 - level) / 2
    return Interval(float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha)), level)


def compare_latency(a_ms, b_ms, threshold: float = DEFAULT_THRESHOLD, min_samples: int = MIN_SAMPLES,
                    resamples: int = 2000, seed: int = 0) -> LatencyComparison:
    """Compare measured samples of a baseline A with a candidate B."""
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(a_ms, dtype=float), np.asarray(b_ms, dtype=float)
    median_ratio = float(np.median(b) / np.median(a)) if a.size and b.size else float("nan")
    p95_ratio = float(np.percentile(b, 95) / np.percentile(a, 95)) if a.size and b.size else float("nan")
    if min(a.size, b.size) < min_samples:
        return LatencyComparison(a.size, b.size, median_ratio, None, p95_ratio, None, None, "too few samples",
                                 f"needs at least {min_samples} measured samples on each side "
                                 f"(has {a.size} and {b.size}); raise 'iterations' in the plan")
    median_ci = _ratio_ci(a, b, 50, resamples, seed)
    p95_ci = _ratio_ci(a, b, 95, resamples, seed + 1)
    p_value = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    significant = p_value < ALPHA and not (median_ci.low <= 1.0 <= median_ci.high)
    if significant and median_ratio > 1 + threshold:
        verdict, reason = "slower", f"median {median_ratio - 1:+.1%} (p={p_value:.2g}, over the {threshold:.0%} threshold)"
    elif significant and median_ratio < 1 - threshold:
        verdict, reason = "faster", f"median {median_ratio - 1:+.1%} (p={p_value:.2g})"
    else:
        why = "not significant" if not significant else f"within {threshold:.0%}"
        verdict, reason = "no change", f"median {median_ratio - 1:+.1%} ({why})"
    return LatencyComparison(a.size, b.size, median_ratio, median_ci, p95_ratio, p95_ci, p_value, verdict, reason)
