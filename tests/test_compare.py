"""Latency comparisons call a change only when it is real and large enough."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats.compare import compare_latency


def _noisy(median, n, seed):
    return median * np.random.default_rng(seed).lognormal(0, 0.05, n)


def test_a_ten_percent_slowdown_is_called():
    c = compare_latency(_noisy(20.0, 200, 1), _noisy(22.0, 200, 2))
    assert c.verdict == "slower" and c.median_ratio == pytest.approx(1.10, abs=0.02)
    assert c.median_ratio_ci.low > 1.05 and c.p_value < 1e-6


def test_same_distribution_is_no_change():
    c = compare_latency(_noisy(20.0, 200, 3), _noisy(20.0, 200, 4))
    assert c.verdict == "no change" and c.median_ratio_ci.low < 1.0 < c.median_ratio_ci.high


def test_small_but_significant_shift_under_threshold_is_not_called():
    c = compare_latency(_noisy(20.0, 2000, 5), _noisy(20.4, 2000, 6))  # +2%: real, but under 5%
    assert c.p_value < 0.01 and c.verdict == "no change" and "within 5%" in c.reason


def test_speedup_and_too_few_samples():
    assert compare_latency(_noisy(20.0, 100, 7), _noisy(15.0, 100, 8)).verdict == "faster"
    few = compare_latency(_noisy(20.0, 10, 9), _noisy(40.0, 10, 10))
    assert few.verdict == "too few samples" and "at least 20" in few.reason and few.p_value is None


def test_ratio_of_medians_matches_hand_computation():
    a = np.arange(1, 42, dtype=float)  # median 21
    b = a * 1.5  # median 31.5
    assert compare_latency(a, b).median_ratio == pytest.approx(1.5)
