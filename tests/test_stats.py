"""Statistics checked against values worked out by hand, not against the code's own output."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats import bootstrap_ci, percentile, summarize


def test_percentiles_of_0_to_100_are_the_values_themselves():
    data = np.arange(101, dtype=float)  # sorted order statistics 0..100: type-7 P_q is exactly q
    s = summarize(data)
    assert (s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms) == (50, 90, 95, 99)
    assert s.min_ms == 0 and s.max_ms == 100 and s.n == 101


def test_percentile_interpolates_linearly():
    # 4 values: P50 sits halfway between the 2nd and 3rd: (20 + 30) / 2.
    assert percentile(np.array([40.0, 10.0, 30.0, 20.0]), 50) == 25.0
    # P95 of [1..4]: position 0.95 * 3 = 2.85 -> 3 + 0.85 * (4 - 3).
    assert percentile(np.array([1.0, 2.0, 3.0, 4.0]), 95) == pytest.approx(3.85)


def test_mean_std_cv_match_textbook_formulas():
    data = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    s = summarize(data)
    assert s.mean_ms == 5.0
    sample_sd = (32 / 7) ** 0.5  # sum of squared deviations is 32, n - 1 = 7
    assert s.std_ms == pytest.approx(sample_sd)
    assert s.cv == pytest.approx(sample_sd / 5.0)


def test_bootstrap_interval_is_deterministic_and_covers_the_truth():
    rng = np.random.default_rng(1)
    data = rng.lognormal(mean=np.log(20), sigma=0.1, size=400)
    a, b = bootstrap_ci(data, 50, seed=7), bootstrap_ci(data, 50, seed=7)
    assert a == b
    assert a.low < 20 < a.high  # the population median is exp(log 20) = 20
    assert a.low < percentile(data, 50) < a.high


def test_bootstrap_interval_narrows_with_more_samples():
    rng = np.random.default_rng(2)
    small = bootstrap_ci(rng.normal(10, 1, 50), 50)
    large = bootstrap_ci(rng.normal(10, 1, 2000), 50)
    assert (large.high - large.low) < (small.high - small.low) / 3  # width shrinks ~ 1/sqrt(n)


def test_coverage_of_p95_interval_is_near_nominal():
    # Over many independent samples, a 95% interval should contain the true P95 most of the time.
    rng = np.random.default_rng(3)
    true_p95 = 10 + 1.6448536 * 1.0  # normal(10, 1)
    covered = 0
    for i in range(60):
        sample = rng.normal(10, 1, 300)
        ci = bootstrap_ci(sample, 95, resamples=500, seed=i)
        covered += ci.low < true_p95 < ci.high
    assert covered >= 48  # >= 80% of 60; nominal is 95%, percentile bootstrap runs a bit low


def test_unstable_and_small_samples_are_warned():
    noisy = summarize(np.array([1.0, 10.0] * 20))
    assert any("unstable" in w for w in noisy.warnings)
    few = summarize(np.array([5.0, 5.1, 5.2]))
    assert few.p95_ci is None and any("no interval for P95" in w for w in few.warnings)
    steady = summarize(np.full(50, 3.0) + np.linspace(0, 0.01, 50))
    assert steady.warnings == []


def test_empty_samples_have_no_summary():
    assert summarize(np.array([])) is None
