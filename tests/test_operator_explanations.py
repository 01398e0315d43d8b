"""Operator explanations follow the model, not one slow call: rankings, shares and differences from each operator's
median per inference; a profiled change that disagrees with the measured one is not put on operators; the report's
coverage column, memory verdict, profiled-total sentence and delegate ops read as text.  Hand-made operator records,
so each case is exactly the one an outside tester met on a busy 2-core machine."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.profile.records import OperatorTime, Profile, aggregate, merged

ITERATIONS = 10


def _profile(calls_ms: dict[str, list[float]], backend: str = "XNNPACK") -> Profile:
    """One profiling run of ITERATIONS inferences, one call per operator per inference, from each call's time."""
    calls = [(name, backend, "", ms) for name, times in calls_ms.items() for ms in times]
    return Profile(iterations=ITERATIONS, operators=aggregate(calls))


def _steady(ms: float) -> list[float]:
    return [ms] * ITERATIONS


def _held_up(ms: float, slow_ms: float) -> list[float]:
    """Nine ordinary calls and one held up by other load on the machine."""
    return [ms] * (ITERATIONS - 1) + [slow_ms]


def _view(profile: Profile, p50_ms: float | None = None, backend: str = "xnnpack"):
    from harness.report.model import CellView

    cell = SimpleNamespace(profiles=[profile], artifact={"backend": backend}, log="", extra={})
    return CellView(cell=cell, summary=SimpleNamespace(p50_ms=p50_ms) if p50_ms is not None else None)


def test_one_slow_call_does_not_rank_an_operator_first_in_the_table():
    # layer3: 3.19 ms over 10 calls, median 0.011 ms (the tester's); layer2: 0.1 ms every call.  Before, the table
    # ranked and shared by the mean (layer3 0.319 ms, 76%) and showed the median beside it (0.011 ms).
    view = _view(_profile({"layer3": _held_up(0.011, 3.091), "layer2": _steady(0.1)}))
    (first, first_share), (second, second_share) = view.top_operators
    assert (first.name, second.name) == ("layer2", "layer3")
    assert first_share == pytest.approx(0.1 / 0.111) and second_share == pytest.approx(0.011 / 0.111)


def test_the_operator_one_slow_call_held_up_is_not_named_for_a_change():
    from harness.profile.diff import operator_diff

    # Tonight layer2 is 3x wider (0.1 -> 0.3 ms a call); last night's profile had one layer3 call held up.  Before:
    # "layer3 (-0.308 ms) moved more than the whole -0.108 ms change": the wrong operator, the wrong sign.
    before = merged([_profile({"layer2": _steady(0.1), "layer3": _held_up(0.011, 3.091)})])
    tonight = merged([_profile({"layer2": _steady(0.3), "layer3": _steady(0.011)})])
    diff = operator_diff(before, tonight)
    assert diff.change_ms == pytest.approx(0.2) and [c.name for c in diff.top] == ["layer2"]
    assert "layer3" not in diff.reading()
    assert diff.reading() == ("top operator explains 100% of the +0.2 ms sum of the operators' median changes: "
                              "layer2 (+0.2 ms)")


def test_a_profiled_change_that_disagrees_with_the_measured_one_is_not_put_on_operators():
    from harness.report.quant import operator_diff_of

    # INT8 -> INT4 measured +0.395 ms at P50, while the operators' medians moved +0.0075 ms.  Before, the row said
    # "top 3 explain 97% of the +0.395 ms change: layer1_Q4 (+0.217 ms)" from the means of one short run.
    int8 = _view(_profile({"layer1": _steady(1.0)}), p50_ms=2.0)
    int4 = _view(_profile({"layer1_Q4": _steady(1.0075)}), p50_ms=2.395)
    diff = operator_diff_of(int8, int4)
    assert not diff.top and diff.explained_share is None and diff.refused == "a third of it or less"
    assert diff.reading() == ("the profiling runs do not explain the measured +0.395 ms P50 change: their operators "
                              "moved +0.0075 ms (a third of it or less)")
    # The other way round: the profile went down while the measured P50 went up.
    faster = _view(_profile({"layer1": _steady(0.8)}), p50_ms=2.3)
    assert operator_diff_of(int8, faster).refused == "the other way"
    # Three times the measured change or more is some other change too; within the factor it is explained.
    assert operator_diff_of(int8, _view(_profile({"layer1": _steady(2.0)}), p50_ms=2.3)).refused == "3 times it or more"
    agreeing = operator_diff_of(int8, _view(_profile({"layer1": _steady(1.25)}), p50_ms=2.3))
    assert not agreeing.refused and [c.name for c in agreeing.top] == ["layer1"]


def test_the_operators_named_may_carry_a_little_over_the_change_within_the_profiles_noise():
    from harness.profile.diff import operator_diff

    def ops(layer2_b, layer2, norm):
        return merged([_profile({"layer2_b": _steady(layer2_b), "layer2": _steady(layer2), "norm": _steady(norm)})])

    # +0.208 and +0.093 ms, the rest -0.006 ms by noise: a +0.295 ms change.  Before, layer2 was dropped so that the
    # named share stayed under 100% ("top operator explains 70% ...: layer2_b").
    diff = operator_diff(ops(1.0, 1.0, 1.0), ops(1.208, 1.093, 0.994), noise_ms=0.01)
    assert [c.name for c in diff.top] == ["layer2_b", "layer2"]
    assert diff.explained_share == pytest.approx(0.301 / 0.295)
    assert diff.others_ms == pytest.approx(-0.006)
    assert diff.reading() == ("top 2 operators explain 102% of the +0.295 ms sum of the operators' median changes: "
                              "layer2_b (+0.208 ms), layer2 (+0.093 ms); others -0.006 ms")


def test_movers_larger_than_the_change_are_named_beside_the_largest_movers_the_other_way():
    from harness.profile.diff import operator_diff

    # The tester's line: X +0.147 and Y +0.142 ms against a +0.037 ms change; A and B moved -0.13 ms each, C -0.002.
    # Before, the line said only "(other operators moved the other way)", naming none of them.  Its figure is named
    # as what it is (the sum of the operators' median changes), not "profiled change", which read as the difference
    # of the two cards' profiled totals.
    a = merged([_profile({"X": _steady(1.0), "Y": _steady(1.0), "A": _steady(1.0), "B": _steady(1.0),
                          "C": _steady(1.0)})])
    b = merged([_profile({"X": _steady(1.147), "Y": _steady(1.142), "A": _steady(0.87), "B": _steady(0.88),
                          "C": _steady(0.998)})])
    diff = operator_diff(a, b, top=2)
    assert diff.change_ms == pytest.approx(0.289 - 0.252) and [c.name for c in diff.top] == ["X", "Y"]
    assert diff.reading() == ("X (+0.147 ms), Y (+0.142 ms) moved more than the whole +0.037 ms sum of the "
                              "operators' median changes; the other way: A (-0.13 ms), B (-0.12 ms)")


def test_a_nightly_check_says_plainly_when_the_profile_does_not_explain_its_change():
    from harness.nightly.checks import _explained
    from harness.report.verdict import Check

    # Measured +1.26 ms at P50; the profiling runs' operators moved -0.3 ms.  Before, the check named layer3 (-0.3 ms)
    # as the explanation of a slowdown.
    before = _view(_profile({"layer3": _steady(0.5)}), p50_ms=1.0)
    tonight = _view(_profile({"layer3": _steady(0.2)}), p50_ms=2.26)
    check = _explained(Check("host", "enc", "latency", "regression", "P50 +126%", {}), before, tonight)
    assert check.detail == ("P50 +126%; per operator (profiling runs): the profiling runs do not explain the measured "
                            "+1.26 ms P50 change: their operators moved -0.3 ms (the other way)")
    assert check.data["operators"]["refused"] == "the other way" and check.data["operators"]["top"] == []


def test_the_latency_tables_coverage_column_reads_its_share_and_its_fallback_as_text():
    from harness.profile.records import PORTABLE_CPU
    from harness.report.model import NOT_PROFILED

    mixed = Profile(iterations=2, operators=[OperatorTime("delegate", "XNNPACK", 2, 2.0, 1.0),
                                             OperatorTime("cumsum", PORTABLE_CPU, 2, 2.0, 1.0)])
    text, title = _view(mixed).coverage_column
    # Before, the latency table had no coverage column; the fallback flag lived in a hover on the verdict's ⚑.
    assert text == "XNNPACK 50% ⚑ CPU fallback 50%" and "portable CPU" in title
    whole = Profile(iterations=2, operators=[OperatorTime("delegate", "XNNPACK", 2, 2.0, 1.0)])
    assert _view(whole).coverage_column[0] == "XNNPACK 100%"
    unprofiled = _view(Profile(iterations=2))
    assert unprofiled.coverage_column == ("–", NOT_PROFILED) and "profile_runs" in NOT_PROFILED


def test_a_crashed_profiling_run_is_flagged_on_the_cell_and_in_its_coverage_hover():
    from harness.report.model import CellView, _verdict

    # The profiling step's failure as the store keeps it in the cell's extra (and its note in the log).  Before, only
    # the collapsed log said so: the cell had no flag and its coverage "–" read the generic "no operator profile".
    reason = "the runner was killed by SIGSEGV (exit -11); the other profiling run was skipped"
    cell = SimpleNamespace(profiles=[], artifact={"backend": "xnnpack", "stage": "encoder", "inferred": []},
                           log=f"[run 1/3] warmed up\n[profiling] profiling run 1 of 2 crashed: {reason}",
                           extra={"profiled": 0, "profiling_failure": reason}, status="ok", runs_done=3,
                           runs_planned=3, throttled=False)
    view = CellView(cell=cell, summary=SimpleNamespace(p95_ms=1.0, p95_ci=None, warnings=[]))
    _verdict(view, {})
    assert view.flags == [f"profile failed: {reason}"]
    assert view.coverage_column == ("–", f"profiling run failed: {reason}")
    quiet = CellView(cell=SimpleNamespace(**{**vars(cell), "log": "[profiling] runtime: onnxruntime 1.20",
                                             "extra": {"profiled": 1}}), summary=view.summary)
    _verdict(quiet, {})
    assert quiet.flags == [] and quiet.profiling_failure is None


def test_a_cpu_builds_coverage_names_no_fallback_and_a_delegate_builds_names_its_own():
    from harness.profile.coverage import ORT_CPU, coverage
    from harness.profile.records import PORTABLE_CPU

    # Before, an ort-cpu build's fallback read CPUExecutionProvider (its own backend), a portable build's "portable
    # CPU": the cells export's coverage_fallback named a fallback from the CPU to itself.
    on_cpu = Profile(iterations=2, operators=[OperatorTime("gemm", ORT_CPU, 2, 2.0, 1.0)])
    assert coverage([on_cpu], "ort-cpu").fallback == ""
    portable = Profile(iterations=2, operators=[OperatorTime("add", PORTABLE_CPU, 2, 2.0, 1.0)])
    assert coverage([portable], "portable").fallback == ""
    assert coverage([on_cpu], "ort-xnnpack").fallback == ORT_CPU
    assert coverage([portable], "xnnpack").fallback == PORTABLE_CPU


def test_a_latency_verdict_reads_the_p95_beside_its_budget_as_the_memory_verdict_reads_its_peak():
    from harness.report.model import CellView

    # Before, the latency table read "budget miss < 350 asr" while the memory verdict read "981 MB vs budget 100 MB".
    view = CellView(cell=SimpleNamespace(), summary=SimpleNamespace(p95_ms=412.0), budget_ms=350.0)
    assert view.p95_against_budget == "P95 412 ms vs budget 350 ms"
    # A P95 that would print equal to the budget it misses gets the digits that tell them apart (the shared rule).
    assert CellView(cell=SimpleNamespace(), summary=SimpleNamespace(p95_ms=350.4),
                    budget_ms=350.0).p95_against_budget == "P95 350.4 ms vs budget 350 ms"


def test_a_memory_verdict_reads_the_peak_beside_its_budget():
    from harness.report.pipeline import PipelineView

    # Before, the table read "budget miss < 100 MB" for a 982 MB peak.
    over = SimpleNamespace(peak_rss_mb=982.0, memory_budget_mb=100.0)
    assert PipelineView.memory_against_budget.fget(over) == "982 MB vs budget 100 MB"
    # A peak that would print equal to the budget it misses gets the digits that tell them apart.
    assert PipelineView.memory_against_budget.fget(SimpleNamespace(peak_rss_mb=1024.4, memory_budget_mb=1024.0)) == \
        "1024.4 MB vs budget 1024 MB"
