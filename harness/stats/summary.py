"""Latency summaries with honest uncertainty.

A cell is measured as several *runs* (separate processes or runner invocations).  P50 and
P95 are computed within each run and combined across runs by geometric mean, with a
Student-t interval across runs (see :mod:`harness.stats.runlevel` for why iterations
are not independent draws).  The other figures (P90, P99, mean, sd, min, max, CV) are
descriptive, over every measured iteration pooled, and carry no interval.

A run's own P50 and P95 use the Harrell-Davis estimator (a Beta-weighted average of all
order statistics): unlike a single interpolated order statistic, it moves smoothly when
one more spike lands in the tail, which is what lets a t-interval across runs reach its
nominal coverage (tests/test_runlevel_coverage.py).  Descriptive percentiles over pooled
iterations use linear interpolation (Hyndman & Fan type 7, numpy's default).  These two
functions are the only places percentiles are computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from harness.stats.distributions import beta_cdf

# pyperf warns when the standard deviation exceeds 10% of the mean; so do we, within runs and across them.
UNSTABLE_CV = 0.10


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float = 0.95


@dataclass(frozen=True)
class RunValues:
    """What one run measured: its percentiles (from its iterations, or the runner's own summary)."""

    p50_ms: float | None
    p95_ms: float | None
    n: int  # measured iterations stored for this run (0: the runner printed only a summary)


@dataclass(frozen=True)
class LatencySummary:
    n: int  # measured iterations stored, all runs together (0 for summary-only cells)
    runs: int
    p50_ms: float  # geometric mean of run medians (Harrell-Davis within each run)
    p95_ms: float | None  # geometric mean of run P95s; None when the runner reported none
    p50_ci: Interval | None  # t-interval across runs; None for a single run
    p95_ci: Interval | None
    p50_log_sd: float | None  # between-run spread (sd of log run medians): what the nightly plans with
    p95_log_sd: float | None
    summary_only: bool  # the runner printed percentiles, not iterations
    mean_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    cv: float | None = None  # pooled coefficient of variation: sample std / mean
    warnings: list[str] = field(default_factory=list)


def percentile(values, q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


@lru_cache(maxsize=256)
def _hd_weights(n: int, q: float) -> np.ndarray:
    p = q / 100
    edges = np.arange(n + 1) / n
    return np.diff(beta_cdf(edges, (n + 1) * p, (n + 1) * (1 - p)))


def per_utterance_p95(totals_ms) -> float | None:
    """A transcription chain's P95 per utterance: over its utterances' totals (utterances, not runs, are the
    units), interpolated as every pooled percentile.  The one estimator for this figure: the live progress line
    and the report's chain row both call it, so one command never prints two P95s for the same chain."""
    return _per_utterance_percentile(totals_ms, 95)


def per_utterance_p50(totals_ms) -> float | None:
    """A chain's (or pipeline's) P50 per utterance, by the same estimator as ``per_utterance_p95``: the progress
    line, the chain row and the pipeline row all call it (the live line printed a Harrell-Davis median)."""
    return _per_utterance_percentile(totals_ms, 50)


def _per_utterance_percentile(totals_ms, q: float) -> float | None:
    values = [v for v in totals_ms if v is not None]
    return percentile(values, q) if values else None


def hd_percentile(values, q: float) -> float:
    """The q-th percentile (0-100) by Harrell & Davis (1982): sum of order statistics weighted by
    Beta((n+1)p, (n+1)(1-p)) probability mass over [(i-1)/n, i/n]."""
    data = np.sort(values)  # one value: its weight is the whole Beta mass, 1
    return float(data @ _hd_weights(int(data.size), float(q)))


def run_values(samples_ms, n_min_p95: int = 2) -> RunValues:
    """A run's own P50 and P95 (Harrell-Davis) from its iterations."""
    data = np.asarray(samples_ms)
    if data.size == 0:
        return RunValues(None, None, 0)
    p95 = hd_percentile(data, 95) if data.size >= n_min_p95 else None
    return RunValues(hd_percentile(data, 50), p95, int(data.size))


# A run value of exactly 0 ms can only come from a clock that ticks in whole milliseconds (ExecuTorch's LLM
# Stats, for one) timing something shorter than a tick.  Dropping it (a log of 0) would leave a fast cell
# with no summary, or bias a mixed one upward; it is counted as the middle of the tick instead, and said.
HALF_TICK_MS = 0.5


def _lift(value_ms: float | None) -> float | None:
    return HALF_TICK_MS if value_ms == 0 else value_ms


def _unstable(spread: float) -> bool:
    """The one instability rule, for the pooled CV and the between-run log sd alike."""
    return spread > UNSTABLE_CV


def summarize(samples_ms, runs: list[RunValues] | None = None, runs_planned: int | None = None) -> LatencySummary | None:
    """Everything a report shows about one cell (warm-ups excluded by the caller).

    ``runs``: one entry per run; without it, all samples are taken as one run.  ``runs_planned``: how many the
    plan asked for, when known (the advice for a missing interval depends on it).
    """
    from harness.stats.runlevel import geometric_estimate, more_runs_advice, no_interval_words

    data = np.asarray(samples_ms)
    runs = runs if runs is not None else [run_values(data)]  # no samples: a run without values, so no summary
    zero_runs = sum(r.p50_ms == 0 for r in runs)
    p50 = geometric_estimate([_lift(r.p50_ms) for r in runs])
    if p50 is None:
        return None
    p95 = geometric_estimate([_lift(r.p95_ms) for r in runs])
    summary_only = data.size == 0
    warnings = []
    if zero_runs:
        warnings.append(f"{zero_runs} of {len(runs)} runs measured 0 ms, below the runner's clock (whole "
                        f"milliseconds): counted as {HALF_TICK_MS} ms, the middle of [0, 1) ms")
    if p50.interval is None:
        blind = ", and no view of process-to-process noise" if p50.runs < 2 else ""
        warnings.append(f"{no_interval_words(p50.runs)}{blind} ({more_runs_advice(p50.runs, runs_planned)})")
    if p50.log_sd is not None and _unstable(p50.log_sd):
        warnings.append(f"unstable across runs: run medians spread by {p50.log_sd:.0%} (over {UNSTABLE_CV:.0%}); "
                        "look for thermal throttling, background load or frequency changes")
    if p95 is None:
        warnings.append("the runner reported no P95" if summary_only else "too few iterations per run for a P95")
    pooled = {}
    if data.size:
        mean = float(data.mean())
        std = float(data.std(ddof=1)) if data.size > 1 else 0.0
        pooled = dict(mean_ms=mean, std_ms=std, min_ms=float(data.min()), max_ms=float(data.max()),
                      p90_ms=percentile(data, 90), p99_ms=percentile(data, 99), cv=std / mean if mean > 0 else 0.0)
        if _unstable(pooled["cv"]):
            warnings.append(f"unstable: the standard deviation is {pooled['cv']:.0%} of the mean "
                            f"(over {UNSTABLE_CV:.0%}); look for thermal throttling or background load")
    else:
        warnings.append("summary only: the runner printed percentiles, not iterations")
    return LatencySummary(
        n=int(data.size), runs=p50.runs, p50_ms=p50.value, p95_ms=None if p95 is None else p95.value,
        p50_ci=p50.interval, p95_ci=None if p95 is None else p95.interval, p50_log_sd=p50.log_sd,
        p95_log_sd=None if p95 is None else p95.log_sd, summary_only=summary_only, warnings=warnings, **pooled,
    )
