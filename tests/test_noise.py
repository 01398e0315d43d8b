"""The learned night-to-night spread, checked on simulated nights whose spread is known."""

from __future__ import annotations

import numpy as np
import pytest

from harness.nightly.noise import learn_floors
from harness.stats.compare import compare_runs

RUNS, RUN_SD = 5, 0.04


def _nights(rng, count, night_sd, sha="s", start=0, factor=1.0):
    """History rows as Store.history gives them: one per night, with its runs' medians."""
    rows = []
    for n in range(count):
        level = np.log(10.0 * factor) + rng.normal(0, night_sd)
        rows.append({"run_id": f"n{start + n}", "cell_key": "host/x/latency", "device_id": "host", "model": "m",
                     "stage": "vad", "format": "onnx", "backend": "ort-cpu", "quantization": "fp32", "sha256": sha,
                     "settings": {"runs": RUNS}, "calibration": False,
                     "run_p50_ms": list(np.exp(level + rng.normal(0, RUN_SD, RUNS)))})
    return rows


@pytest.mark.parametrize("night_sd", [0.0, 0.03, 0.06])
def test_night_spread_is_recovered_from_unchanged_nights(night_sd):
    estimates = []
    for seed in range(40):
        (floor,) = learn_floors(_nights(np.random.default_rng(seed), 31, night_sd)).values()
        estimates.append(floor.night_sd)
        assert floor.pairs == 30 and "30 unchanged nights" in floor.sources
    # The spread beyond what the runs explain, not the runs' own spread (RUN_SD / sqrt(RUNS) = 1.8%).
    assert np.median(estimates) == pytest.approx(night_sd, abs=0.008)


def test_a_changed_build_or_setting_breaks_the_chain_of_unchanged_nights():
    rng = np.random.default_rng(0)
    rows = _nights(rng, 3, 0.0) + _nights(rng, 3, 0.0, sha="other", start=3, factor=2.0)
    (floor,) = learn_floors(rows).values()
    assert floor.pairs == 4  # 2 pairs before the new build, 2 after; the doubling itself is not noise
    assert floor.night_sd < 0.02


def test_with_whole_nights_moving_the_rule_still_rarely_cries_wolf():
    """Nights whose level moves by 4% (sd) on top of 4% run-to-run noise: without the learned spread the
    run-level test alone calls many unchanged nights; with it, almost none."""
    rng = np.random.default_rng(5)
    rows = _nights(rng, 200, 0.04)
    floors = learn_floors(rows[:31])
    (floor,) = floors.values()
    naive = learned = 0
    for before, after in zip(rows[31:], rows[32:]):
        a, b = before["run_p50_ms"], after["run_p50_ms"]
        naive += compare_runs(a, b).verdict in ("slower", "faster")
        learned += compare_runs(a, b, noise_floor=floor.fraction, night_sd=floor.night_sd).verdict in ("slower", "faster")
    assert naive >= 10 and learned <= 2
