"""Step detection finds a level shift (including a slow drift's) and ignores noise."""

from __future__ import annotations

import numpy as np
import pytest

from harness.nightly.history import detect_step


def test_step_up_is_found_at_the_right_night():
    rng = np.random.default_rng(0)
    series = np.concatenate([20 * rng.lognormal(0, 0.02, 30), 23 * rng.lognormal(0, 0.02, 15)])
    step = detect_step(series)
    assert step is not None and step.index == 30 and step.ratio == pytest.approx(1.15, abs=0.03)


def test_noise_alone_has_no_step():
    rng = np.random.default_rng(1)
    assert detect_step(20 * rng.lognormal(0, 0.03, 60)) is None


def test_slow_drift_that_no_single_night_shows_is_caught():
    rng = np.random.default_rng(2)
    drift = 20 * np.linspace(1.0, 1.15, 60) * rng.lognormal(0, 0.02, 60)  # +0.25% a night
    nightly = np.abs(np.diff(drift) / drift[:-1])
    assert np.median(nightly) < 0.05  # each night is within noise of the last
    assert detect_step(drift) is not None


def test_small_shift_under_threshold_is_not_called():
    rng = np.random.default_rng(3)
    series = np.concatenate([20 * rng.lognormal(0, 0.005, 40), 20.4 * rng.lognormal(0, 0.005, 40)])  # +2%
    assert detect_step(series, threshold=0.05) is None
    assert detect_step(series, threshold=0.01) is not None


def test_nightly_reports_a_recent_step_from_stored_history(tmp_path):
    from harness.nightly.run import compare_and_write
    from harness.nightly.synthetic import write_synthetic_history

    db = tmp_path / "h.db"
    runs = write_synthetic_history(db, nights=30, devices=1, builds=3, samples=40, step=(25, 1, 1.12))
    outcome = compare_and_write(db, runs[-1], None, tmp_path / "out", threshold=0.05)
    history = [c for c in outcome.checks if c.kind == "history"]
    assert len(history) == 1 and history[0].status == "regression" and "synthetic-1" in history[0].subject
    assert history[0].data["step_run_id"] == runs[25]
    assert outcome.baseline_id == runs[-2] and not outcome.passed
    html = (tmp_path / "out" / "index.html").read_text()
    assert "History (30 nights" in html and "step at night 25" in html


def test_nightly_report_renders_in_chromium_with_its_verdict(tmp_path):
    from harness.nightly.run import compare_and_write
    from harness.nightly.synthetic import write_synthetic_history
    from tests.helpers import chromium

    db = tmp_path / "h.db"
    runs = write_synthetic_history(db, nights=20, devices=1, builds=2, samples=30, step=(14, 0, 1.3))
    compare_and_write(db, runs[-1], None, tmp_path / "out", threshold=0.05)
    dom = chromium(tmp_path / "out" / "index.html", tmp_path, "--dump-dom")
    assert dom.returncode == 0 and "Verdict by device and stage" in dom.stdout and "regression" in dom.stdout
    assert "CONSOLE" not in dom.stderr and "Failed to load resource" not in dom.stderr
