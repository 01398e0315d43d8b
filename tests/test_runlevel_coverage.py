"""Every interval the report prints covers its truth 93-97% of the time (nominal 95%), by simulation.

Latency is simulated as the harness sees it: each run (process) has its own level, a
lognormal run effect of known spread, and within a run the iterations scatter around
that level (lognormal, optionally with 3x spikes).  The truth each interval aims at
(exp E[log of a run's percentile], a run being 30 iterations) is computed by brute force
over 200,000 simulated runs, with the Harrell-Davis formula written out here, not taken
from the harness.  The same interval computed over pooled iterations (the old way) is
shown to cover far less, which is what made unchanged nights fail.

Where it does not hold, said with its figure (docs/statistics.md): rare spikes and few runs.  With
1% 3x spikes, most 5-run cells saw no spike at all in the runs that set P95, and no
interval can know about events it did not see.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats import run_values, summarize
from harness.stats.compare import compare_runs

ITER = 30
CELLS = 1500


def _runs(rng, cells, runs, between_sd, within_sd=0.08, outliers=0.0, level=10.0):
    """cells x runs x ITER latencies."""
    run_level = level * np.exp(rng.normal(0, between_sd, (cells, runs, 1)))
    within = np.exp(rng.normal(0, within_sd, (cells, runs, ITER)))
    spikes = np.where(rng.random((cells, runs, ITER)) < outliers, 3.0, 1.0)
    return run_level * within * spikes


def _hd(sorted_runs, q):
    """Harrell-Davis by its definition, over the last axis of already sorted values."""
    from scipy.stats import beta

    n, p = sorted_runs.shape[-1], q / 100
    cdf = beta.cdf(np.arange(n + 1) / n, (n + 1) * p, (n + 1) * (1 - p))
    return sorted_runs @ (cdf[1:] - cdf[:-1])


def _truth(q, between_sd, outliers=0.0, seed=99):
    """exp(E[log P_q of one run]): the quantity a geometric mean of run percentiles estimates."""
    big = np.sort(_runs(np.random.default_rng(seed), 200_000, 1, between_sd, outliers=outliers)[:, 0, :], axis=1)
    return float(np.exp(np.log(_hd(big, q)).mean()))


def _coverage(lows, highs, truth):
    return float(np.mean((np.asarray(lows) <= truth) & (truth <= np.asarray(highs))))


def _cell_coverage(runs, between_sd, outliers, seed):
    data = _runs(np.random.default_rng(seed), CELLS, runs, between_sd, outliers=outliers)
    ci50, ci95 = [], []
    for cell in data:
        s = summarize(cell.ravel(), [run_values(r) for r in cell])
        ci50.append(s.p50_ci)
        ci95.append(s.p95_ci)
    truth50, truth95 = _truth(50, between_sd, outliers), _truth(95, between_sd, outliers)
    return (_coverage([c.low for c in ci50], [c.high for c in ci50], truth50),
            _coverage([c.low for c in ci95], [c.high for c in ci95], truth95))


@pytest.mark.slow  # a coverage simulation of thousands of runs
@pytest.mark.parametrize("runs,between_sd,outliers", [
    (3, 0.05, 0.0), (5, 0.02, 0.0), (5, 0.10, 0.0), (10, 0.05, 0.0),  # a continuous body, any spread
    (10, 0.05, 0.03),  # 3% spikes: enough runs to have seen them
])
def test_p50_and_p95_intervals_cover_93_to_97_percent(runs, between_sd, outliers):
    cov50, cov95 = _cell_coverage(runs, between_sd, outliers, seed=runs * 100 + int(between_sd * 1000))
    assert 0.93 <= cov50 <= 0.97, cov50
    assert 0.93 <= cov95 <= 0.97, cov95


@pytest.mark.slow  # a coverage simulation of thousands of runs
@pytest.mark.parametrize("runs,outliers", [(5, 0.03), (5, 0.01)])
def test_median_interval_holds_with_spikes_and_the_p95_limit_is_as_stated(runs, outliers):
    """The median is robust to spikes at any run count; P95 with rare spikes and 5 runs is the stated
    limitation (docs/statistics.md: 'P95 intervals and rare spikes'), pinned here so the docs stay true."""
    cov50, cov95 = _cell_coverage(runs, 0.05, outliers, seed=int(outliers * 1000) + runs)
    assert 0.93 <= cov50 <= 0.97, cov50
    assert cov95 < 0.93, cov95  # if this starts to hold, the docs' limitation can go


@pytest.mark.slow  # a coverage simulation of thousands of runs
@pytest.mark.parametrize("paired", [False, True])
def test_ratio_intervals_cover_93_to_97_percent(paired):
    """Night against night (Welch) and INT4 against INT8 in the same rounds (paired): the interval of
    the ratio of run-level medians covers the true ratio 1.10."""
    rng = np.random.default_rng(7 + paired)
    a = _runs(rng, CELLS, 5, 0.05)
    if paired:  # both builds measured in the same round share that round's drift
        shared = np.exp(rng.normal(0, 0.05, (CELLS, 5, 1)))
        b = 1.10 * a / np.exp(rng.normal(0, 0.0, (CELLS, 5, 1))) * np.exp(rng.normal(0, 0.02, (CELLS, 5, 1)))
        a, b = a * shared, b * shared
    else:
        b = 1.10 * _runs(rng, CELLS, 5, 0.05)
    lows, highs = [], []
    for ca, cb in zip(a, b):
        c = compare_runs([run_values(r).p50_ms for r in ca], [run_values(r).p50_ms for r in cb], paired=paired)
        lows.append(c.ratio_ci.low)
        highs.append(c.ratio_ci.high)
    assert 0.93 <= _coverage(lows, highs, 1.10) <= 0.97


@pytest.mark.slow  # a coverage simulation of thousands of runs
def test_the_simulation_itself_makes_a_pooled_iteration_bootstrap_undercover():
    """Calls no project code on purpose: a check that the simulation above can tell intervals apart.  The old
    mistake, a percentile bootstrap over pooled iterations of one process per night, ignores the run effect and
    must cover the truth far less here; if it did not, the coverage tests above would prove nothing."""
    rng = np.random.default_rng(3)
    data = _runs(rng, 300, 1, 0.05)[:, 0, :]
    truth = _truth(50, 0.05)
    lows, highs = [], []
    for cell in data:
        boot = np.median(cell[rng.integers(0, ITER, (400, ITER))], axis=1)
        lows.append(np.quantile(boot, 0.025))
        highs.append(np.quantile(boot, 0.975))
    assert _coverage(lows, highs, truth) < 0.75


@pytest.mark.slow  # a false-alarm simulation
def test_false_alarm_rate_of_the_night_to_night_rule_on_unchanged_builds():
    """A/A by simulation: two nights of the same build, 5 runs each, a 5% threshold: essentially never
    called (the real-machine figure is benchmarks/false_alarms.py's)."""
    rng = np.random.default_rng(11)
    calls = 0
    for _ in range(2000):
        a = rng.lognormal(np.log(10), 0.03, 5)
        b = rng.lognormal(np.log(10), 0.03, 5)
        calls += compare_runs(list(a), list(b)).verdict in ("slower", "faster")
    assert calls / 2000 < 0.005
