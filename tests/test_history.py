"""The history check's step (E-Divisive's newest change point, the site's detector): found at the night it
began, on short histories too, ignoring noise; reported from the night it is first detectable for a week."""

from __future__ import annotations

import numpy as np
import pytest

from harness.nightly.checks import REPORT_NIGHTS, history_checks
from harness.nightly.history import Series, newest_step


def test_step_up_is_found_at_the_right_night():
    rng = np.random.default_rng(0)
    series = np.concatenate([20 * rng.lognormal(0, 0.02, 30), 23 * rng.lognormal(0, 0.02, 15)])
    step = newest_step(series)
    assert step is not None and step.index == 30 and step.ratio == pytest.approx(1.15, abs=0.03)


def test_noise_alone_has_no_step():
    rng = np.random.default_rng(1)
    assert newest_step(20 * rng.lognormal(0, 0.03, 60)) is None


def test_slow_drift_that_no_single_night_shows_is_caught():
    rng = np.random.default_rng(2)
    drift = 20 * np.linspace(1.0, 1.15, 60) * rng.lognormal(0, 0.02, 60)  # +0.25% a night
    nightly = np.abs(np.diff(drift) / drift[:-1])
    assert np.median(nightly) < 0.05  # each night is within noise of the last
    step = newest_step(drift)
    # A straight line's best split into two levels is at its middle (night 30 of 60); each side's level is the mean
    # of its nights, and the rise between the halves' means is about half of +15%, over the 5% threshold.
    # Catches a step found at the wrong night, levels from the wrong nights, and a ratio near 1.
    assert 25 <= step.index <= 35, step
    assert step.before == pytest.approx(drift[:step.index].mean()) and step.after == pytest.approx(drift[step.index:].mean())
    assert 1.05 < step.ratio < 1.15 and step.p_value < 0.01 and step.detected_index >= step.index, step


def test_small_shift_under_threshold_is_not_called():
    rng = np.random.default_rng(3)
    series = np.concatenate([20 * rng.lognormal(0, 0.005, 40), 20.4 * rng.lognormal(0, 0.005, 40)])  # +2%
    assert newest_step(series, threshold=0.05) is None
    assert newest_step(series, threshold=0.01) is not None


def _series(levels) -> Series:
    n = len(levels)
    return Series("phone", "kws asr int8 cpu", [f"night-{i}" for i in range(n)], list(levels), list(levels),
                  [False] * n, newest_step(levels))


def test_a_step_on_a_short_history_is_reported_from_the_first_night_it_shows_for_a_week():
    """The tester's case: a +65% step after 6 nights.  The old Mann-Whitney split (5 nights a side, p < 0.001)
    could not fire before 6 + 6 nights, flagged it on one night only and placed it late; this fails with it."""
    rng = np.random.default_rng(4)
    levels = list(np.concatenate([5.03 * rng.lognormal(0, 0.02, 6), 8.29 * rng.lognormal(0, 0.02, 16)]))
    flagged = {}
    for tonight in range(len(levels)):
        checks = history_checks([_series(levels[:tonight + 1])], f"night-{tonight}")
        if checks:
            (check,) = checks
            assert check.status == "regression" and check.data["step_run_id"] == "night-6"
            assert "from night-6" in check.detail
            flagged[tonight] = check.data["detected_run_id"]
    first = min(flagged)
    assert first <= 6 + 5  # 6 nights before and at most 6 after: detectable (3 a side is the minimum)
    assert sorted(flagged) == list(range(first, first + REPORT_NIGHTS))  # every night of a week, then not
    assert set(flagged.values()) == {f"night-{first}"}


@pytest.mark.slow  # a nightly over stored history
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


@pytest.mark.slow  # Chromium
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


def test_a_first_night_has_no_empty_history_heading(tmp_path):
    """One night is no history chart; the page said 'History (1 nights of ...)' over nothing (fails with the
    section shown whenever there are series)."""
    from harness.nightly.run import compare_and_write
    from harness.nightly.synthetic import write_synthetic_history

    db = tmp_path / "h.db"
    runs = write_synthetic_history(db, nights=1, devices=1, builds=1, samples=20)
    compare_and_write(db, runs[-1], None, tmp_path / "out", threshold=0.05)
    html = (tmp_path / "out" / "index.html").read_text()
    assert 'id="night-verdict"' in html and 'id="history"' not in html and "History (" not in html


def test_runs_of_one_date_are_told_apart_on_the_history_chart():
    """Two runs on one date sat at separate x (their start times) but both read '2026-12-07' in tooltips and
    ticks; with the time they are told apart (fails with date-only labels)."""
    from harness.report.plots import history_svg

    series = _series([20.0, 20.5, 20.2])
    series.started_at = ["2026-12-06T02:30:00+00:00", "2026-12-07T02:30:00+00:00", "2026-12-07T09:15:00+00:00"]
    svg = history_svg(series)
    assert "2026-12-07 02:30" in svg and "2026-12-07 09:15" in svg
