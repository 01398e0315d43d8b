"""Latency summaries with honest uncertainty.

Percentiles use linear interpolation between order statistics (Hyndman & Fan type 7,
numpy's default), the convention most benchmark tools report.  Confidence intervals
for P50 and P95 are percentile-bootstrap intervals with a fixed seed, so the same
samples always give the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Below this many samples a P95 is little more than the maximum: no interval is given.
MIN_SAMPLES_FOR_P95_CI = 20
# pyperf warns when the standard deviation exceeds 10% of the mean; so do we.
UNSTABLE_CV = 0.10
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float = 0.95


@dataclass(frozen=True)
class LatencySummary:
    n: int
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    cv: float  # coefficient of variation: sample std / mean
    p50_ci: Interval | None
    p95_ci: Interval | None
    warnings: list[str] = field(default_factory=list)


def percentile(values: np.ndarray, q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


def bootstrap_ci(values: np.ndarray, q: float, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> Interval | None:
    """Percentile-bootstrap interval for the q-th percentile; None for fewer than 2 samples."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    rng = np.random.default_rng(seed)
    # Resample in blocks to bound memory for long series.
    block = max(1, 2_000_000 // data.size)
    stats = []
    for start in range(0, resamples, block):
        count = min(block, resamples - start)
        idx = rng.integers(0, data.size, size=(count, data.size))
        stats.append(np.percentile(data[idx], q, axis=1))
    dist = np.concatenate(stats)
    alpha = (1 - level) / 2
    return Interval(float(np.quantile(dist, alpha)), float(np.quantile(dist, 1 - alpha)), level)


def summarize(samples_ms: np.ndarray, seed: int = 0) -> LatencySummary | None:
    """Everything a report shows about one cell's measured samples (warm-ups excluded by the caller)."""
    data = np.asarray(samples_ms, dtype=float)
    if data.size == 0:
        return None
    mean = float(data.mean())
    std = float(data.std(ddof=1)) if data.size > 1 else 0.0
    cv = std / mean if mean > 0 else 0.0
    warnings = []
    if cv > UNSTABLE_CV:
        warnings.append(f"unstable: the standard deviation is {cv:.0%} of the mean (over {UNSTABLE_CV:.0%}); "
                        "look for thermal throttling or background load, and consider more iterations")
    p95_ci = None
    if data.size >= MIN_SAMPLES_FOR_P95_CI:
        p95_ci = bootstrap_ci(data, 95, seed=seed)
    else:
        warnings.append(f"only {data.size} samples: no interval for P95 (needs at least {MIN_SAMPLES_FOR_P95_CI})")
    return LatencySummary(
        n=int(data.size), mean_ms=mean, std_ms=std, min_ms=float(data.min()), max_ms=float(data.max()),
        p50_ms=percentile(data, 50), p90_ms=percentile(data, 90), p95_ms=percentile(data, 95),
        p99_ms=percentile(data, 99), cv=cv, p50_ci=bootstrap_ci(data, 50, seed=seed), p95_ci=p95_ci,
        warnings=warnings,
    )
