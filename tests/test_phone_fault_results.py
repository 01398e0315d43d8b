"""What a phone fault becomes in the results, fast: a runner killed by a signal, a phone that stops answering, an
iPhone result that breaks the contract.  The hostile table's fault rows (tests/hostile/cases.py, slow) cause the
same faults on a simulated phone through the CLI; these check the harness's own part (runner, cell, worker)
with a scripted device, so `make quick` still sees them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.devices.base import CommandResult, DeviceFacts
from harness.errors import DeviceError
from harness.run.cell import execute_run
from harness.runners.base import RunSettings

CONTRACT = Path(__file__).resolve().parents[1] / "harness" / "runners" / "ios_contract" / "examples"
ET_HELP = ("  -model_path (Model serialized in flatbuffer) type: string\n"
           "  -num_executions (Number of times to run the model.) type: uint32\n"
           "  -print_output (none, summary or all) type: string\n")


class ScriptedPhone:
    """A device that answers when opened, and whose commands answer from ``answer(argv)``; it pushes nothing and
    has no sensors."""

    def __init__(self, answer, tools: dict | None = None) -> None:
        self.id = "phone"
        self.config = SimpleNamespace(tools=tools or {}, compute_units="all")
        self.pushes: list[dict] = []
        self.answer = answer
        self.closed = False

    def reachable(self):
        return True, ""

    def prepare(self):
        return True, ""

    def facts(self):
        return DeviceFacts(self.id, "android", True)

    def push(self, local, sha256: str) -> str:
        return f"/data/local/tmp/harness/{sha256}/{Path(local).name}"

    def make_room(self, needed: set[str]) -> None:  # it keeps nothing, so there is nothing to evict
        pass

    def run(self, argv, timeout_s, env=None) -> CommandResult:
        return self.answer(list(argv))

    def sample_thermals(self):
        return []

    def drain_notes(self):
        return []

    def close(self) -> None:
        self.closed = True


def _ok(argv, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(argv, 0, stdout, stderr, 0.01)


def _spec(runner: str, tmp_path: Path, key: str = "phone/abc/latency", name: str = "tiny.pte"):
    build = tmp_path / name
    build.write_bytes(b"not read by a scripted phone")
    artifact = SimpleNamespace(path=build, sha256="ab" * 32, inputs=None)
    config = SimpleNamespace(id="phone", model_dump=lambda mode: {"id": "phone"})
    return SimpleNamespace(key=key, task="latency", device=config, artifact=artifact, runner=runner, chain=None,
                           settings=RunSettings(warmup_iterations=1, iterations=3, timeout_s=30), cooldown=None,
                           thermal_period_s=60.0)


def _executor_runner_phone(tmp_path: Path, measured) -> ScriptedPhone:
    """A phone with executor_runner pushed; ``measured(argv)`` answers the measured command."""
    tool = tmp_path / "executor_runner"
    tool.write_bytes(b"stands in for an arm64 build")

    def answer(argv):
        if argv[-1] == "--help":
            return CommandResult(argv, 1, "", ET_HELP, 0.01)  # gflags exits 1 after --help
        return measured(argv) if "--model_path" in argv else _ok(argv)

    return ScriptedPhone(answer, tools={"executor_runner": tool})


def test_a_runner_killed_by_sigsegv_on_the_phone_is_a_crashed_cell_that_names_it(tmp_path):
    """A shell reports death by SIGSEGV as exit 139 (what the simulated phone's crash_runner fault does).  Catches
    the crash labelled 'failed' (exit code read as the runner's own), the signal left unnamed, or the runner's
    output dropped from the cell's log."""
    phone = _executor_runner_phone(tmp_path, lambda argv: CommandResult(
        argv, 139, "I 00:00:00.012 executorch:executor_runner.cpp:120] Model loaded in 3.5 ms.\n",
        "Segmentation fault\n", 0.2))
    result = execute_run(_spec("android-executor-runner", tmp_path), phone)
    assert result.status == "crashed", (result.status, result.reason)
    assert "executor_runner was killed by SIGSEGV (exit 139)" in result.reason, result.reason
    assert "Segmentation fault" in result.log and "Model loaded in 3.5 ms" in result.log, result.log
    assert result.measurement is None  # nothing of a crashed run is stored as a measurement


def test_a_phone_that_stops_answering_is_lost_and_its_next_cells_are_unreachable_with_the_reason(tmp_path):
    """The phone goes away during the first cell's measured command (adb loses it), and is not there when the worker
    asks again: both cells are "lost" (so --resume measures them), the first with adb's words, the next with
    "device unreachable" and why, at once (not after its own timeouts).  Catches a lost phone stored as "failed"
    (never measured again), a reason without the cause, or the worker running the next cell on the dead phone."""
    from harness.run.workers import measure_concurrently

    def vanished(argv):
        raise DeviceError("phone", argv, "adb lost the device (connection reset by peer)", lost=True)

    first = _executor_runner_phone(tmp_path, vanished)

    class Gone(ScriptedPhone):
        def reachable(self):
            return False, "adb lists no device 127.0.0.1:5555"

        def run(self, argv, timeout_s, env=None):
            raise AssertionError(f"ran {argv} on a phone that did not answer")

    opened: list[ScriptedPhone] = []

    def opener(config):
        device = first if not opened else Gone(_ok)
        opened.append(device)
        return device

    todo = [(_spec("android-executor-runner", tmp_path, "phone/aaa/latency", "a.pte"), 0),
            (_spec("android-executor-runner", tmp_path, "phone/bbb/latency", "b.pte"), 0)]
    finished = [e.result for e in measure_concurrently(todo, opener=opener) if e.kind == "finished"]
    assert [r.key for r in finished] == ["phone/aaa/latency", "phone/bbb/latency"]
    assert [r.status for r in finished] == ["lost", "lost"], [(r.status, r.reason) for r in finished]
    assert "adb lost the device (connection reset by peer)" in finished[0].reason, finished[0].reason
    assert finished[1].reason == "device unreachable: adb lists no device 127.0.0.1:5555", finished[1].reason
    assert len(opened) == 2 and first.closed  # asked again before the next cell; the lost connection closed


def test_an_iphone_result_that_breaks_the_contract_names_the_field_and_keeps_the_file_in_the_log():
    """The app wrote load_ms as a string and no latency_ms (the fake iPhone's malformed_result fault).  Catches a
    reason that does not name $.load_ms, a malformed result stored, or the offending file not kept in the log."""
    from harness.runners.base import RunnerFailure
    from harness.runners.ios_app import run_job

    job = json.loads((CONTRACT / "job.latency.json").read_text())
    result = json.loads((CONTRACT / "result.latency.json").read_text())
    result["job_id"] = job["job_id"]
    del result["latency_ms"]
    result["load_ms"] = "fast"
    written = json.dumps(result, indent=1)

    class IPhone(ScriptedPhone):
        def put(self, local, remote):
            pass

        def pull(self, remote):
            return written if remote == job["result_path"] else None

    with pytest.raises(RunnerFailure) as failure:
        run_job(IPhone(_ok), job, 30)
    caught = failure.value
    assert caught.status == "failed" and "breaks the contract" in caught.reason, caught.reason
    assert "$.load_ms: 'fast' is not of type 'number'" in caught.reason, caught.reason
    assert caught.log.startswith(job["result_path"] + ":") and '"load_ms": "fast"' in caught.log, caught.log
