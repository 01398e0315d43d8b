"""Latency comparisons call a change only when it is real, large enough, and above the cell's noise."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats.compare import compare_runs


def _runs(median, n, seed, sd=0.01):
    """Run-level medians: a lognormal run effect of ``sd`` around ``median``."""
    return list(median * np.random.default_rng(seed).lognormal(0, sd, n))


def test_a_ten_percent_slowdown_is_called():
    c = compare_runs(_runs(20.0, 8, 1), _runs(22.0, 8, 2))
    assert c.verdict == "slower" and c.median_ratio == pytest.approx(1.10, abs=0.02)
    assert c.median_ratio_ci.low > 1.05 and c.p_value < 1e-6


def test_same_build_is_no_change():
    c = compare_runs(_runs(20.0, 8, 3), _runs(20.0, 8, 4))
    assert c.verdict == "no change" and c.median_ratio_ci.low < 1.0 < c.median_ratio_ci.high


def test_small_but_significant_shift_under_threshold_is_not_called():
    c = compare_runs(_runs(20.0, 30, 5, sd=0.005), _runs(20.4, 30, 6, sd=0.005))  # +2%: real, but under 5%
    assert c.p_value < 0.01 and c.verdict == "no change" and "within the 5% threshold" in c.reason


def test_a_change_inside_the_noise_floor_is_not_called():
    a, b = _runs(20.0, 8, 7), _runs(22.0, 8, 8)  # +10%, clearly significant
    c = compare_runs(a, b, noise_floor=0.15)  # but this cell moves 15% between unchanged nights
    assert c.p_value < 1e-4 and c.verdict == "no change" and "noise floor of 15.0%" in c.reason


def test_spread_runs_are_too_noisy_to_call_rather_than_no_change():
    c = compare_runs(_runs(20.0, 3, 9, sd=0.15), _runs(20.5, 3, 10, sd=0.15))
    assert c.verdict == "too noisy" and c.mde_ratio > 1.05 and "too noisy to call" in c.reason


def test_speedup_and_too_few_runs():
    assert compare_runs(_runs(20.0, 6, 11), _runs(15.0, 6, 12)).verdict == "faster"
    few = compare_runs([20.0], [40.0])
    assert few.verdict == "too few runs" and "at least 2 runs" in few.reason and few.p_value is None


def test_ratio_of_geometric_means_by_hand():
    # Geometric means: sqrt(10 * 40) = 20 and sqrt(15 * 60) = 30.
    assert compare_runs([10.0, 40.0], [15.0, 60.0]).median_ratio == pytest.approx(1.5)
