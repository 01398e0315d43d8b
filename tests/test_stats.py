"""Statistics checked against values worked out by hand, not against the code's own output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.stats import RunValues, percentile, run_values, summarize
from harness.stats.summary import hd_percentile
from harness.stats.runlevel import geometric_estimate, min_detectable_ratio, ratio_estimate


def test_pooled_percentiles_of_0_to_100_are_the_values_themselves():
    data = np.arange(101, dtype=float)  # sorted order statistics 0..100: type-7 P_q is exactly q
    s = summarize(data)  # one run
    assert (s.p90_ms, s.p99_ms) == (90, 99)
    assert s.p50_ms == pytest.approx(50)  # Harrell-Davis is symmetric: the median of 0..100 is 50
    assert s.min_ms == 0 and s.max_ms == 100 and s.n == 101 and s.runs == 1


def test_harrell_davis_by_hand():
    # n = 2, p = 0.5: weights are Beta(1.5, 1.5) mass on [0, 1/2] and [1/2, 1], 1/2 each by symmetry.
    assert hd_percentile([2.0, 4.0], 50) == pytest.approx(3.0)
    # n = 3, p = 0.5: Beta(2, 2) cdf is 3x^2 - 2x^3: masses 7/27, 13/27, 7/27.
    assert hd_percentile([1.0, 2.0, 10.0], 50) == pytest.approx((7 * 1 + 13 * 2 + 7 * 10) / 27)


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


def test_p50_is_the_geometric_mean_of_run_medians_with_a_t_interval():
    # Three symmetric runs with medians 8, 10, 12.5 (log-mean = (ln 8 + ln 10 + ln 12.5) / 3 = ln 10).
    runs = [np.array([7.0, 8.0, 9.0]), np.array([9.0, 10.0, 11.0]), np.array([12.0, 12.5, 13.0])]
    s = summarize(np.concatenate(runs), [run_values(r) for r in runs])
    assert s.runs == 3 and s.p50_ms == pytest.approx(10.0)
    logs = np.log([8.0, 10.0, 12.5])
    half = 4.302652729911275 * logs.std(ddof=1) / math.sqrt(3)  # t(0.975, df=2) from a table
    assert s.p50_ci.low == pytest.approx(10 * math.exp(-half)) and s.p50_ci.high == pytest.approx(10 * math.exp(half))


def test_one_run_has_no_interval_and_says_so():
    s = summarize(np.linspace(10, 11, 40))
    assert s.p50_ci is None and s.p95_ci is None
    assert any("one run" in w for w in s.warnings)


def test_summary_only_runs_use_the_runners_own_p95_never_a_mean():
    runs = [RunValues(10.0, 14.0, 0), RunValues(11.0, 15.0, 0), RunValues(10.5, None, 0)]
    s = summarize([], runs)
    assert s.summary_only and s.n == 0 and s.mean_ms is None
    assert s.p95_ms == pytest.approx(math.sqrt(14.0 * 15.0))  # only the runs that reported a P95
    mean_only = summarize([], [RunValues(10.0, None, 0), RunValues(10.2, None, 0)])
    assert mean_only.p95_ms is None and any("no P95" in w for w in mean_only.warnings)


def test_unstable_runs_are_warned():
    rng = np.random.default_rng(0)
    spread = [RunValues(10.0 * f, 12.0 * f, 30) for f in (0.7, 1.0, 1.4, 0.8, 1.3)]
    assert any("unstable across runs" in w for w in summarize(rng.normal(10, 0.1, 150), spread).warnings)
    steady = [RunValues(10.0 + 0.01 * i, 10.5, 30) for i in range(5)]
    assert not any("unstable" in w for w in summarize(rng.normal(10, 0.1, 150), steady).warnings)


def test_empty_samples_have_no_summary():
    assert summarize(np.array([])) is None


def test_welch_ratio_matches_scipy_on_log_values():
    a, b = [10.0, 10.4, 9.8, 10.1], [11.0, 11.5, 10.9, 11.2, 11.4]
    r = ratio_estimate(a, b)
    ref = sps.ttest_ind(np.log(b), np.log(a), equal_var=False)
    assert r.p_value == pytest.approx(ref.pvalue) and r.df == pytest.approx(ref.df)
    assert r.ratio == pytest.approx(math.exp(np.log(b).mean() - np.log(a).mean()))


def test_paired_ratio_matches_scipy_on_log_differences():
    a, b = [10.0, 12.0, 9.0, 11.0], [10.8, 13.1, 9.6, 12.0]
    r = ratio_estimate(a, b, paired=True)
    assert r.p_value == pytest.approx(sps.ttest_rel(np.log(b), np.log(a)).pvalue)
    assert r.df == 3


def test_min_detectable_ratio_by_hand():
    # se 0.02 on the log scale, df 8, alpha 0.01, power 0.8: (t_0.995 + t_0.8) * se.
    expected = math.exp((3.355387331 + 0.888889518) * 0.02)  # t quantiles for df=8 from a table
    assert min_detectable_ratio(0.02, 8, 0.01, 0.8) == pytest.approx(expected, rel=1e-6)


def test_geometric_estimate_ignores_failed_runs():
    est = geometric_estimate([4.0, None, 9.0])
    assert est.value == pytest.approx(6.0) and est.runs == 2


@pytest.mark.parametrize("n, q", [(100, 0.95), (20, 0.5), (80, 0.95)])
def test_order_statistic_interval_covers_the_quantile_as_it_says(n, q):
    """Simulated: lognormal latencies (skewed, like real ones); the interval must cover the true quantile at
    least 95% of the time, and as often as the exact coverage it reports."""
    from scipy.stats import lognorm

    from harness.stats.quantile import quantile_interval

    rng = np.random.default_rng(11)
    truth = float(lognorm.ppf(q, s=0.5, scale=100.0))
    hits, reps, claimed = 0, 4000, None
    for _ in range(reps):
        interval, claimed = quantile_interval(rng.lognormal(np.log(100.0), 0.5, n), q)
        hits += interval.low <= truth <= interval.high
    se = (claimed * (1 - claimed) / reps) ** 0.5
    assert claimed >= 0.95
    assert abs(hits / reps - claimed) < 4 * se + 0.002


def test_order_statistic_interval_admits_too_few_draws_for_a_p95():
    from harness.stats.quantile import quantile_interval

    # P(all 20 draws fall below the P95) = 0.95**20 = 0.36 > 0.025: no upper bound exists at 95%.
    assert quantile_interval(np.arange(20.0), 0.95) == (None, 0.0)
    assert quantile_interval(np.arange(71.0), 0.95) == (None, 0.0)  # 0.95**71 = 0.026 > 0.025
    assert quantile_interval(np.arange(72.0), 0.95)[0] is not None  # 0.95**72 = 0.0249


def test_runs_faster_than_a_millisecond_clock_still_get_a_summary_and_a_warning():
    """A whole-ms clock (ExecuTorch's LLM Stats) reads 0 for anything under a tick; such a cell must still be
    summarised (and meet its budget), with 0 counted as the tick's middle, not dropped as log(0)."""
    s = summarize([0.0] * 12, [RunValues(0.0, 0.0, 4)] * 3)
    assert s is not None and s.p50_ms == pytest.approx(0.5) and s.p95_ms == pytest.approx(0.5)
    assert any("3 of 3 runs measured 0 ms" in w for w in s.warnings)
    mixed = summarize([0.0, 1.0, 1.0], [RunValues(0.0, 1.0, 1), RunValues(1.0, 1.0, 1), RunValues(1.0, 1.0, 1)])
    assert mixed.p50_ms == pytest.approx((0.5 * 1 * 1) ** (1 / 3))  # dropping the 0 would have said 1.0
    clean = summarize([2.0, 3.0], [RunValues(2.0, 3.0, 1), RunValues(3.0, 3.0, 1)])
    assert not any("0 ms" in w for w in clean.warnings)



def _chain_progress_line(totals) -> None:
    """The live progress line of one finished chain cell whose per-utterance totals are ``totals`` (to stderr)."""
    from types import SimpleNamespace

    from harness.cli_progress import RichProgress

    progress = RichProgress()
    progress.start("20990101-000000-beef", total=1, already_done=0)
    spec = SimpleNamespace(device=SimpleNamespace(id="phone"), chain=SimpleNamespace(name="tiny"),
                           artifact=SimpleNamespace(label="tiny-encoder"))
    progress.cell_started(spec)
    progress.cell_finished(spec, SimpleNamespace(status="ok", measurement=SimpleNamespace(samples_ms=totals)))
    progress.stop()


def _utterance_rows(totals) -> list[dict]:
    """Stored transcripts of a chain whose utterances took ``totals`` (every word right)."""
    return [{"utt_id": f"u{i}", "reference": "a b", "hypothesis": "a b", "total_ms": t, "encoder_ms": None,
             "mel_ms": None, "decoder_ms_per_token": None, "rtf": None} for i, t in enumerate(totals)]


def test_a_chain_has_one_p95_per_utterance_on_the_progress_line_and_in_the_report(capsys):
    """The live line said 'P95 796.40 ms' (one run's Harrell-Davis P95 of the utterances) and the summary
    seconds later 'ASR per utterance P95 731.41 ms' (interpolated over the same utterances).  Fails if
    cli_progress goes back to run_values(...).p95_ms for a chain."""
    from types import SimpleNamespace

    from harness.report.model import chain_view

    totals = [300.0 + 10 * i for i in range(19)] + [1200.0]  # one slow utterance: the two estimators differ
    expected = float(np.percentile(totals, 95))  # 20 utterances: 0.95 * 19 = 18.05 -> 480 + 0.05 * 720
    assert abs(expected - 516.0) < 1e-9
    _chain_progress_line(totals)
    assert "P95 516.00 ms" in capsys.readouterr().err
    rows = _utterance_rows(totals)
    view = chain_view(SimpleNamespace(transcripts=rows), {"asr": None})
    assert view.timing["p95_total_ms"] == expected


def test_a_chain_has_one_p50_per_utterance_on_the_progress_line_the_chain_row_and_the_pipeline_row(capsys):
    """The live line said 'P50 668.88 ms' (Harrell-Davis) and the report table 701 ms (interpolated median) for
    the same utterances.  Fails if cli_progress goes back to run_values(...).p50_ms for a chain, or the chain or
    pipeline row to another estimator than per_utterance_p50."""
    from types import SimpleNamespace

    from harness.report.model import chain_view
    from harness.report.pipeline import PipelineView
    from harness.stats import per_utterance_p50

    totals = [100.0, 110.0, 120.0, 1000.0]  # a slow utterance: Harrell-Davis pulls the median up, 115 does not move
    assert per_utterance_p50(totals + [None]) == 115.0  # the mean of the middle two, by hand
    assert run_values(totals).p50_ms > 116.0  # the two estimators differ here, so the test can tell them apart
    _chain_progress_line(totals)
    assert "P50 115.00 ms" in capsys.readouterr().err
    rows = _utterance_rows(totals)
    assert chain_view(SimpleNamespace(transcripts=rows), {"asr": None}).timing["total_ms"] == 115.0
    pipeline = SimpleNamespace(totals_ms=np.asarray(totals))
    assert PipelineView.p50_ms.fget(pipeline) == 115.0


@pytest.mark.parametrize("summary, shown", [
    ({"p50_ms": 12.1, "p95_ms": 14.2, "mean_ms": 12.3}, "P50 12.10 ms, P95 14.20 ms"),
    ({"mean_ms": 3.5}, "mean 3.50 ms"),
])
def test_a_summary_only_runner_s_ok_cell_gets_a_tick_and_its_figures(capsys, summary, shown):
    """onnxruntime_perf_test (and QNN's runner) return no samples, only their own summary: the live line printed
    '✗ sim · tiny unknown fp32 ort-cpu: ok:' for a good run. Fails with the samples-only branch back."""
    from types import SimpleNamespace

    from harness.cli_progress import RichProgress

    progress = RichProgress()
    progress.start("20990101-000000-beef", total=1, already_done=0)
    spec = SimpleNamespace(device=SimpleNamespace(id="sim"), chain=None, artifact=SimpleNamespace(label="tiny"))
    progress.cell_started(spec)
    measurement = SimpleNamespace(samples_ms=[], summary_ms=summary)
    progress.cell_finished(spec, SimpleNamespace(status="ok", reason=None, measurement=measurement))
    progress.stop()
    err = capsys.readouterr().err
    assert "✓" in err and "✗" not in err and shown in err, err


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_fewest_draws_is_where_a_quantile_first_gets_an_interval(q):
    """The number pages quote ("needs at least 72 utterances" for a P95) is the interval rule's own: one draw fewer
    gives no interval, that many give one.  Catches a count that drifts from quantile_interval."""
    from harness.stats.quantile import fewest_draws, quantile_interval

    n = fewest_draws(q)
    assert quantile_interval(np.arange(n - 1.0), q)[0] is None
    assert quantile_interval(np.arange(float(n)), q)[0] is not None
    assert fewest_draws(0.95) == 72  # 0.95**72 < 0.025 <= 0.95**71


def test_a_runs_own_values_are_harrell_davis_of_its_iterations():
    """run_values by hand: no iterations, no values; one iteration is its own P50 and has no P95 (two needed); three
    iterations (1, 2, 3) have the symmetric median 2 and a P95 weighting the order statistics by the Beta(3.8, 0.2)
    mass over thirds.  Survivors of `make mutants` this kills in run_values/hd_percentile: the P95 or the count
    dropped, the P95's quantile or its minimum count changed, a single value read past its end."""
    assert run_values([]) == RunValues(None, None, 0)
    assert run_values([5.0]) == RunValues(5.0, None, 1) and hd_percentile([4.0], 95) == 4.0
    mass = np.diff(sps.beta.cdf([0, 1 / 3, 2 / 3, 1], 4 * 0.95, 4 * 0.05))
    got = run_values([3, 1, 2])
    assert got.n == 3 and got.p50_ms == pytest.approx(2.0)
    assert got.p95_ms == pytest.approx(float(mass @ [1.0, 2.0, 3.0]))
    assert run_values([2.0, 4.0]).p95_ms == pytest.approx(float(np.diff(sps.beta.cdf([0, 0.5, 1], 2.85, 0.15)) @ [2.0, 4.0]))


def test_the_median_interval_of_ten_values_by_hand():
    """Order statistics for the median of 10 draws at 95%, B ~ Binomial(10, 1/2): P(B <= 1) = 11/1024 <= 2.5% <
    P(B <= 2) = 56/1024, so the low bound is the 2nd value; P(B >= 9) = 11/1024, so the high one is the 9th; coverage
    P(2 <= B <= 8) = 1002/1024.  One value has no interval.  Survivors of `make mutants` this kills in
    quantile_interval: the rank ranges and picks shifted by one, a single value given coverage 1."""
    from harness.stats.quantile import quantile_interval

    interval, coverage = quantile_interval([7, 3, 10, 1, 5, 9, 2, 8, 4, 6], 0.5)
    assert (interval.low, interval.high) == (2.0, 9.0) and coverage == pytest.approx(1002 / 1024)
    assert quantile_interval([7.0], 0.5) == (None, 0.0)


def test_a_ratio_from_too_few_or_identical_runs_keeps_its_point_design_and_counts():
    """Edge cases of ratio_estimate by hand: one paired round is a ratio with nothing to test; one run on a side
    likewise (the ratio of geometric means); runs without spread are a certain change (p 0) or certainly none (p 1),
    with the interval collapsed onto the ratio.  Survivors of `make mutants` this kills in ratio_estimate: the
    design and run counts dropped or swapped in its early returns, the zero-spread p-value inverted or its df (3 + 3 - 2)
    dropped, the run counts of a Welch ratio dropped."""
    from harness.stats.runlevel import RatioEstimate

    assert ratio_estimate([10.0], [12.0], paired=True) == RatioEstimate(pytest.approx(1.2), None, None, None, True, 1, 1)
    one = ratio_estimate([10.0, 40.0], [30.0])
    assert one == RatioEstimate(pytest.approx(30 / 20), None, None, None, False, 2, 1)  # geometric mean of A is 20
    moved = ratio_estimate([10.0, 10.0, 10.0], [12.0, 12.0, 12.0])
    assert (moved.p_value, moved.paired, moved.runs_a, moved.runs_b, moved.df) == (0.0, False, 3, 3, 4.0)
    welch = ratio_estimate([10.0, 10.4, 9.8], [11.0, 11.5, 10.9, 11.2])  # the counts of each side, not swapped
    assert (welch.runs_a, welch.runs_b, welch.paired) == (3, 4, False)
    assert (moved.interval.low, moved.interval.high) == pytest.approx((1.2, 1.2))
    same = ratio_estimate([10.0, 10.0, 10.0], [10.0, 10.0, 10.0], paired=True)
    assert (same.ratio, same.p_value, same.paired, same.interval.low, same.interval.high) == (1.0, 1.0, True, 1.0, 1.0)


def test_an_interval_is_shown_from_three_runs_when_finite_positive_and_at_most_tenfold_wide_or_one_sided():
    """shown_interval at each edge of its rule, by hand.  Survivors of `make mutants` this kills: MIN_INTERVAL_RUNS or
    MAX_INTERVAL_SPAN moved, an edge made strict or loose (2 runs shown, exactly 10x hidden), the finite test
    weakened (a one-sided ratio interval reaching infinity shown), 'wholly on one side of 1' counting a bound on 1."""
    from harness.stats import Interval
    from harness.stats.runlevel import shown_interval

    tenfold = Interval(1.0, 10.0)  # high / low exactly MAX_INTERVAL_SPAN: still shown
    assert shown_interval(tenfold, 3) is tenfold
    assert shown_interval(tenfold, 2) is None  # a t with 1 degree of freedom
    assert shown_interval(None, 5) is None
    assert shown_interval(Interval(1.0, 10.001), 3) is None
    assert shown_interval(Interval(0.0, 1.0), 3) is None and shown_interval(Interval(-1.0, 1.0), 3) is None
    assert shown_interval(Interval(1.0, math.inf), 3) is None
    # A ratio's interval (no change = 1) wholly above or below 1 is shown however wide; one reaching 1 is not.
    up, down = Interval(22.0, 300.0), Interval(0.001, 0.5)  # 13.6x and 500x wide
    assert shown_interval(up, 3, 1.0) is up and shown_interval(down, 3, 1.0) is down
    assert shown_interval(up, 3) is None  # not a ratio's: too wide
    assert shown_interval(Interval(1.0, 20.0), 3, 1.0) is None and shown_interval(Interval(0.05, 1.0), 3, 1.0) is None
    assert shown_interval(Interval(1.5, math.inf), 3, 1.0) is None
    assert shown_interval(Interval(math.nan, 2.0), 3, 1.0) is None


def test_the_words_for_a_missing_interval_and_the_advice_follow_the_run_counts():
    """no_interval_words and more_runs_advice at each run count that changes them (3 runs: MIN_INTERVAL_RUNS).
    Survivors of `make mutants` this kills: the texts changed, a boundary moved by one (2 runs called 'one run',
    a plan of exactly 3 runs told to set 3), the planned-runs test inverted."""
    from harness.stats.runlevel import more_runs_advice, no_interval_words

    assert no_interval_words(0) == no_interval_words(1) == "one run: no interval"
    assert no_interval_words(2) == "too few runs for an interval (2)"
    assert no_interval_words(3) == no_interval_words(9) == "runs too spread for an interval (over 10x wide)"
    resume = "the plan asks for {} runs and 2 were stored: resume the run (--resume RUN_ID)"
    assert more_runs_advice(2, 5) == resume.format(5) and more_runs_advice(2, 3) == resume.format(3)
    assert more_runs_advice(2) == more_runs_advice(2, 2) == "set 'runs' in the plan to 3 or more"
    calmer = "look for thermal throttling, background load or frequency changes; more runs also narrow it"
    assert more_runs_advice(3) == more_runs_advice(3, 5) == calmer


def test_a_ratio_is_sensible_within_tenfold_either_way_inclusive():
    """sensible_ratio's bounds by hand: 1/10 and 10 themselves are printed; just beyond, inf, nan and None are not.
    Catches a bound made strict or moved, or a missing value let through."""
    from harness.stats.runlevel import sensible_ratio

    assert sensible_ratio(1.0) and sensible_ratio(10.0) and sensible_ratio(0.1)
    assert not any(sensible_ratio(r) for r in (None, 10.01, 0.0999, math.inf, -math.inf, math.nan, 0.0))


def test_log_values_and_paired_log_diffs_drop_missing_failed_and_impossible_runs():
    """By hand: log(e) = 1 and log(1) = 0 survive; None, 0, negatives, inf and nan are dropped.  A paired round
    counts only when both runs gave a positive value: (10, 20) gives log 2, (8, 2) gives -log 4.  Catches a filter
    dropped or inverted (a log of 0 or None reaching the test)."""
    from harness.stats.runlevel import log_values, paired_log_diffs

    assert log_values([math.e, None, 0.0, -1.0, math.inf, math.nan, 1.0]) == pytest.approx([1.0, 0.0])
    diffs = paired_log_diffs([10.0, None, 5.0, 0.0, 4.0, 8.0, 3.0], [20.0, 3.0, None, 7.0, -2.0, 2.0, 0.0])
    assert diffs == pytest.approx([math.log(2), -math.log(4)])
    assert paired_log_diffs([None], [1.0]).size == 0 and paired_log_diffs([], []).size == 0
    assert paired_log_diffs([0.5, 2.0], [2.0, 0.5]) == pytest.approx([math.log(4), -math.log(4)])  # under 1 ms counts


def test_welch_standard_error_and_degrees_of_freedom_by_hand():
    """sd 0.1 over 4 runs and 0.2 over 5: variances of the means 0.0025 and 0.008, se = sqrt(0.0105), Welch df =
    0.0105**2 / (0.0025**2 / 3 + 0.008**2 / 4) = 6.0968...; one side without spread leaves the other's n - 1; neither
    with spread gives se 0 and the pooled n_a + n_b - 2.  Catches the df formula's terms or the zero cases changed."""
    from harness.stats.runlevel import welch_se_df

    se, df = welch_se_df(0.1, 4, 0.2, 5)
    assert se == pytest.approx(math.sqrt(0.0105)) and df == pytest.approx(0.0105 ** 2 / (0.0025 ** 2 / 3 + 0.008 ** 2 / 4))
    assert df == pytest.approx(6.0968, abs=1e-4)
    se, df = welch_se_df(0.0, 4, 0.2, 5)
    assert se == pytest.approx(math.sqrt(0.008)) and df == pytest.approx(4.0)
    se, df = welch_se_df(0.1, 4, 0.0, 5)
    assert se == pytest.approx(0.05) and df == pytest.approx(3.0)
    assert welch_se_df(0.0, 4, 0.0, 5) == (0.0, 7.0)


def test_a_geometric_estimate_by_hand_at_two_levels_and_run_counts():
    """Runs 9, 10, 100/9: logs ln 10 -/+ ln(10/9), so the geometric mean is 10 and the log sd ln(10/9); the 99%
    interval is exp(+/- t(0.995, 2) * sd / sqrt 3) around 10 with t(0.995, 2) = 9.924843 from a table.  One run has
    no interval and no spread; two runs have a spread (|ln 9 - ln 4| / sqrt 2) but no interval.  Catches the level
    not reaching the interval, the one-run and two-run cases merged, the run count or log sd dropped."""
    from harness.stats.runlevel import Estimate

    est = geometric_estimate([9.0, 10.0, 100 / 9], level=0.99)
    sd = math.log(10 / 9)
    half = 9.924843 * sd / math.sqrt(3)
    assert est.value == pytest.approx(10.0) and est.runs == 3 and est.log_sd == pytest.approx(sd)
    assert (est.interval.low, est.interval.high, est.interval.level) == pytest.approx(
        (10 * math.exp(-half), 10 * math.exp(half), 0.99))
    assert geometric_estimate([5.0]) == Estimate(pytest.approx(5.0), None, 1, None)
    two = geometric_estimate([4.0, 9.0])
    assert (two.value, two.interval, two.runs, two.log_sd) == (pytest.approx(6.0), None, 2,
                                                               pytest.approx(math.log(9 / 4) / math.sqrt(2)))
    assert geometric_estimate([None, 0.0]) is None


def test_a_ratio_estimate_says_it_as_a_dict_and_has_none_without_runs_on_a_side():
    """as_dict names every field with its own value (runs 5 and 6 told apart); a side with no usable run gives no
    ratio, paired or not.  Catches fields swapped or dropped in as_dict, and 'either side empty' read as 'both'."""
    from harness.stats import Interval
    from harness.stats.runlevel import RatioEstimate

    r = RatioEstimate(1.2, Interval(1.1, 1.3), 0.01, 4.0, True, 5, 6)
    assert r.as_dict() == {"ratio": 1.2, "interval": [1.1, 1.3], "p_value": 0.01, "df": 4.0, "paired": True,
                           "runs_a": 5, "runs_b": 6}
    assert RatioEstimate(1.2, None, None, None, False, 1, 2).as_dict()["interval"] is None
    assert ratio_estimate([], [1.0]) is None and ratio_estimate([1.0], [None]) is None
    assert ratio_estimate([None, 1.0], [2.0, None], paired=True) is None


def test_a_three_run_summary_by_hand_every_field_and_warning():
    """Runs with medians 8, 10, 12.5 and P95s 12, 15, 18.75 (each 1.5x): geometric means 10 and 15, log sd ln 1.25
    on both, 95% intervals exp(+/- t(0.975, 2) * ln 1.25 / sqrt 3) around them (t = 4.302653 from a table).  The
    iterations 1..9 pooled: mean 5, sd sqrt(60 / 8), type-7 P90 at position 7.2 (8.2) and P99 at 7.92 (8.92).
    Spread runs (22% > 10%) and a pooled CV of 55% are both warned, in these words and nothing else.  Survivors of
    `make mutants` this kills in summarize: a field dropped or taken from the wrong estimate (P95's log sd, interval),
    P90/P99 swapped, a warning's words or threshold changed, a 2-run 'blind' note added to 3 runs."""
    runs = [RunValues(8.0, 12.0, 3), RunValues(10.0, 15.0, 3), RunValues(12.5, 18.75, 3)]
    s = summarize(np.arange(1.0, 10.0), runs)
    half = 4.302653 * math.log(1.25) / math.sqrt(3)
    assert (s.n, s.runs, s.summary_only) == (9, 3, False)
    assert (s.p50_ms, s.p95_ms) == (pytest.approx(10.0), pytest.approx(15.0))
    assert (s.p50_log_sd, s.p95_log_sd) == (pytest.approx(math.log(1.25)), pytest.approx(math.log(1.25)))
    assert (s.p50_ci.low, s.p50_ci.high, s.p50_ci.level) == pytest.approx((10 * math.exp(-half), 10 * math.exp(half), 0.95))
    assert (s.p95_ci.low, s.p95_ci.high) == pytest.approx((15 * math.exp(-half), 15 * math.exp(half)))
    sd = math.sqrt(60 / 8)
    assert (s.mean_ms, s.std_ms, s.min_ms, s.max_ms, s.p90_ms, s.p99_ms, s.cv) == pytest.approx(
        (5.0, sd, 1.0, 9.0, 8.2, 8.92, sd / 5))
    assert s.warnings == [
        "unstable across runs: run medians spread by 22% (over 10%); look for thermal throttling, background load or "
        "frequency changes",
        "unstable: the standard deviation is 55% of the mean (over 10%); look for thermal throttling or background load"]


def test_summaries_of_one_run_two_summary_only_runs_and_a_cv_of_exactly_ten_percent_say_so_in_words():
    """One iteration: one run, no P95 (two needed), sd 0 (not nan), and the advice to plan 3 runs.  Two summary-only
    runs of a plan that asked for 5: no interval, a log sd of 0, the resume advice, no P95 and no pooled figures.
    [9, 10, 11]: sd 1, mean 10, CV exactly 10%, which is not over 10%.  All zeros (a whole-ms clock): CV 0, not
    0/0; the tick's warning in full.  Survivors of `make mutants` this kills: the sd of one value or the CV of a
    zero mean computed anyway, '> 2 runs' for the blind note, the warnings' words, the CV test made '>='; [0.4, 0.6]:
    an sd skipped for two values, a CV skipped for a mean under 1 ms."""
    one = summarize([5.0])
    assert (one.runs, one.p50_ms, one.p95_ms, one.p95_ci, one.p95_log_sd, one.std_ms, one.cv) == (
        1, pytest.approx(5.0), None, None, None, 0.0, 0.0)
    assert one.warnings == ["one run: no interval, and no view of process-to-process noise (set 'runs' in the plan "
                            "to 3 or more)", "too few iterations per run for a P95"]
    two = summarize([], [RunValues(10.0, None, 0), RunValues(10.0, None, 0)], runs_planned=5)
    assert (two.n, two.runs, two.summary_only, two.p50_ci, two.p50_log_sd, two.p95_ms, two.mean_ms) == (
        0, 2, True, None, 0.0, None, None)
    assert two.p50_ms == pytest.approx(10.0)
    assert two.warnings == ["too few runs for an interval (2) (the plan asks for 5 runs and 2 were stored: resume the "
                            "run (--resume RUN_ID))", "the runner reported no P95",
                            "summary only: the runner printed percentiles, not iterations"]
    pair = summarize([0.4, 0.6])  # two values under 1 ms: sd sqrt(0.02), mean 0.5
    assert (pair.std_ms, pair.cv) == pytest.approx((math.sqrt(0.02), math.sqrt(0.02) / 0.5))
    edge = summarize([9.0, 10.0, 11.0])
    assert edge.cv == 0.1 and not any("unstable" in w for w in edge.warnings)
    zeros = summarize([0.0, 0.0], [RunValues(0.0, 0.0, 2)])
    assert zeros.cv == 0.0 and zeros.warnings[0] == ("1 of 1 runs measured 0 ms, below the runner's clock (whole "
                                                     "milliseconds): counted as 0.5 ms, the middle of [0, 1) ms")


def test_per_utterance_percentiles_skip_missing_utterances_and_are_none_without_any():
    """Type-7 over [10, 20, 30, 40] by hand: P50 at position 1.5 -> 25, P95 at 2.85 -> 38.5; a missing total is
    skipped, and none at all gives None, not an error.  Catches the quantiles swapped or moved, the None filter
    inverted, the empty case dropped."""
    from harness.stats import per_utterance_p50, per_utterance_p95

    totals = [40.0, None, 10.0, 30.0, 20.0]
    assert per_utterance_p50(totals) == 25.0 and per_utterance_p95(totals) == pytest.approx(38.5)
    assert per_utterance_p50([None]) is None and per_utterance_p95([]) is None


def test_an_order_statistic_interval_may_cover_exactly_its_level_and_its_bounds_are_the_extremes_when_they_must_be():
    """Level 0.9375 leaves tails of exactly 1/32, and the median of 5 draws has P(B <= 0) = P(B >= 5) = 1/32, B ~
    Binomial(5, 1/2): the extremes are the bounds and the coverage 30/32 is exactly the level ("at least level").
    Seven draws at 95%: P(B <= 0) = 1/128 <= 2.5% < P(B <= 1) = 8/128, so only the extremes qualify (coverage
    126/128).  No draws, no interval.  Survivors of `make mutants` this kills in quantile_interval: a tail test
    made strict, a rank range that starts one later, a guard for no draws that returns a coverage; and an interval
    labelled 0.95 whatever level it was computed at."""
    from harness.stats.quantile import quantile_interval

    interval, coverage = quantile_interval([4.0, 2.0, 5.0, 1.0, 3.0], 0.5, level=0.9375)
    assert (interval.low, interval.high, interval.level) == (1.0, 5.0, 0.9375) and coverage == 30 / 32
    interval, coverage = quantile_interval([7, 3, 6, 1, 5, 2, 4], 0.5)
    assert (interval.low, interval.high) == (1.0, 7.0) and coverage == pytest.approx(126 / 128)
    assert quantile_interval([], 0.5) == (None, 0.0)


def test_the_progress_line_names_a_cell_while_it_is_profiling():
    """Profiling runs come after a cell's measured runs and are not counted in the bar: the line read "…" for the
    whole profile (tens of seconds for a .pte on the host), as if the run had stalled."""
    from types import SimpleNamespace

    from harness.cli_progress import RichProgress

    progress = RichProgress()
    progress.start("20990101-000000-beef", total=1, already_done=1)
    spec = SimpleNamespace(device=SimpleNamespace(id="phone"), artifact=SimpleNamespace(label="enc int8"))
    progress.profiling(spec, running=True)
    shown = progress._progress.tasks[0].description
    progress.profiling(spec, running=False)
    after = progress._progress.tasks[0].description
    progress.stop()
    assert shown == "phone · enc int8 (profiling)" and after == "…"
