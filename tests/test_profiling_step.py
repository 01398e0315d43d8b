"""A cell's profiling runs are a step of their own after its last measured run: the measured run is stored (and
shown) before profiling starts, and a profiling run that fails says which of how many, and what was skipped."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from harness.devices.base import DeviceFacts
from harness.nightly.synthetic import SyntheticBuild
from harness.run.cell import PROFILING, CellResult, profile_cell
from harness.run.engine import schedule
from harness.runners import RunnerFailure
from harness.runners.base import Measurement, RunSettings
from harness.store import Store


def _spec(key: str, runs: int = 2, profile_runs: int = 2):
    build = SyntheticBuild("a" * 64, "silero", "vad", "fp32")
    return SimpleNamespace(key=key, device=SimpleNamespace(id="host"), artifact=build, task="latency",
                           runner="host-ort", chain=None,
                           settings=RunSettings(warmup_iterations=0, iterations=3, timeout_s=60, runs=runs,
                                                profile_runs=profile_runs))


class _CrashingProfiler:
    def __init__(self) -> None:
        self.calls = 0

    def profile(self, device, remote, artifact, settings):
        self.calls += 1
        raise RunnerFailure("crashed", "runner crashed (SIGKILL)", "")


def test_a_crashed_profiling_run_says_which_of_how_many_and_that_the_rest_were_skipped():
    # Catches: the note read "profiling run 1 crashed: ..." with no total, and never said the rest were skipped;
    # and a failure kept only as log text (the report read it back with a pattern).
    runner = _CrashingProfiler()
    profiling = profile_cell(_spec("c", profile_runs=2), None, runner, "/x")
    assert profiling.profiles == [] and runner.calls == 1
    assert profiling.notes == ["profiling run 1 of 2 crashed: runner crashed (SIGKILL); the other profiling run was "
                               "skipped"]
    assert profiling.failure == "runner crashed (SIGKILL); the other profiling run was skipped"
    profiling = profile_cell(_spec("c", profile_runs=3), None, _CrashingProfiler(), "/x")
    assert profiling.notes[0].endswith("; the other 2 profiling runs were skipped")
    profiling = profile_cell(_spec("c", profile_runs=1), None, _CrashingProfiler(), "/x")
    assert profiling.notes == ["profiling run 1 of 1 crashed: runner crashed (SIGKILL)"]
    assert profiling.failure == "runner crashed (SIGKILL)"


def test_the_profiling_step_comes_right_after_each_cells_last_measured_run():
    # Catches: profiling taken inside the last measured run (no step of its own, so nothing to resume).
    a, b = _spec("host/a"), _spec("host/b")
    todo = [(spec.key, index) for spec, index in schedule([a, b], {}, to_profile={"host/a", "host/b"})]
    assert todo == [("host/a", 0), ("host/b", 0), ("host/b", 1), ("host/b", PROFILING), ("host/a", 1),
                    ("host/a", PROFILING)]
    # Resumed after a Ctrl-C while profiling a: its runs are stored, only its profile is taken.
    stored = {"host/a": ("ok", {0, 1}), "host/b": ("ok", {0, 1})}
    assert [(s.key, i) for s, i in schedule([a, b], stored, to_profile={"host/a"})] == [("host/a", PROFILING)]
    assert schedule([a, b], {"host/a": ("crashed", {0})}, to_profile={"host/a"}) == [(b, 0), (b, 1)]


def test_a_stored_profiling_step_is_labelled_as_profiling_and_leaves_the_measured_runs_alone(tmp_path):
    # Catches: the profiling notes filed under "[run 2/2]" (the measured run), and the cell's finished_at taking in
    # the profiling time.
    spec = _spec("host/a")
    with Store(tmp_path / "h.db", durable=False) as store:
        store.record_artifact(spec.artifact)
        run_id = store.create_run("p", Path("p.yaml"), "0" * 64, {}, {}, plan_text="p")
        store.record_device(run_id, DeviceFacts("host", "host", False, {}), {})
        for index in range(2):
            store.record_run(run_id, spec, index, CellResult(spec.key, "ok", started_at=f"s{index}",
                                                             finished_at=f"f{index}",
                                                             measurement=Measurement(samples_ms=[1.0] * 3)))
        assert store.profiled_cells(run_id) == set()
        note = "profiling run 1 of 2 crashed: runner crashed (SIGKILL); the other profiling run was skipped"
        failure = "runner crashed (SIGKILL); the other profiling run was skipped"
        store.record_profiles(run_id, spec.key, CellResult(spec.key, "ok", log=note, started_at="p",
                                                           finished_at="p-end", profiling_failure=failure))
        (cell,) = store.cells(run_id)
        assert store.profiled_cells(run_id) == {spec.key}  # a failed profiling ended too: not retried by --resume
        assert cell.extra["profiling_failure"] == failure  # the report's flag reads this field, not the log text
        # --resume profiles it again and it succeeds: the old failure is not left beside the new outcome.
        store.record_profiles(run_id, spec.key, CellResult(spec.key, "ok", started_at="q", finished_at="q-end"))
        assert "profiling_failure" not in store.cells(run_id)[0].extra
    assert cell.log == f"[profiling] {note}" and "[run" not in cell.log
    assert cell.runs_done == 2 and cell.finished_at == "f1" and [r["finished_at"] for r in cell.runs] == ["f0", "f1"]


def test_a_failed_profiling_step_reaches_the_reports_flag_through_the_store(tmp_path, monkeypatch):
    # The seam from the step to the page: profile_step's failure, stored by record_profiles, read by the report's
    # cell view.  Catches: the failure dropped between the step and the store (the report then reads the generic
    # "no operator profile" text), or a note's wording change silently losing the flag (a pattern over the log).
    from harness.report.model import build_report_data
    from harness.run import cell as cell_module

    runner = _CrashingProfiler()
    monkeypatch.setattr(cell_module, "runner_module", lambda name: runner)
    device = SimpleNamespace(push=lambda path, sha256: "/remote", drain_notes=lambda: [])
    spec = _spec("host/a", profile_runs=2)
    result = cell_module.profile_step(spec, device)
    assert result.status == "ok" and runner.calls == 1
    with Store(tmp_path / "h.db", durable=False) as store:
        store.record_artifact(spec.artifact)
        run_id = store.create_run("p", Path("p.yaml"), "0" * 64, {}, {}, plan_text="p")
        store.record_device(run_id, DeviceFacts("host", "host", False, {}), {})
        for index in range(2):
            store.record_run(run_id, spec, index, CellResult(spec.key, "ok", started_at="s", finished_at="f",
                                                             measurement=Measurement(samples_ms=[1.0] * 3)))
        store.record_profiles(run_id, spec.key, result)
        (view,) = build_report_data(store, run_id).cells
    reason = "runner crashed (SIGKILL); the other profiling run was skipped"
    assert view.profiling_failure == reason
    assert view.coverage_column == ("–", f"profiling run failed: {reason}")
