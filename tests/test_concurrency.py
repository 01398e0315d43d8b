"""Every device is measured at once, each device's own runs one after another, through one writer."""

from __future__ import annotations

import sys
import time
import types

import pytest

from harness.devices import PLATFORMS
from harness.devices.base import BaseDevice, DeviceConfig, DeviceFacts
from harness.run.engine import run_plan
from harness.runners import RUNNERS
from harness.runners.base import Measurement, RunnerFailure
from harness.store import Store
from tests.helpers import copy_model, write

RUN_S = 0.4  # each run waits like a phone's runner does: the controller's CPU is not what it spends
ROOM_KEPT: dict[str, set[str]] = {}  # what each bench device was told to keep when it was opened (make_room)


@pytest.fixture
def waiting_lab(monkeypatch):
    """A 'bench' platform whose runner waits RUN_S per run (the device 'slow' never answers)."""
    platform = types.ModuleType("tests_bench_platform")

    class Config(DeviceConfig):
        backends: list[str] = ["xnnpack"]

    class Device(BaseDevice):
        def reachable(self):
            return (False, "unplugged") if self.id == "slow" else (True, "on the bench")

        def facts(self):
            return DeviceFacts(self.id, "bench", True, {"model": "bench"})

        def push(self, local, sha256):
            return str(local)

        def run(self, argv, timeout_s, env=None):
            raise AssertionError("not used by the bench runner")

        def sample_thermals(self):
            return []

        def make_room(self, needed):
            ROOM_KEPT[self.id] = needed

        def close(self):
            pass

    platform.Config, platform.Device = Config, Device
    runner = types.ModuleType("tests_bench_runner")
    runner.NAME, runner.TASKS = "bench-wait", ("latency",)
    runner.supports = lambda name, artifact: name == "bench"
    runner.parse = lambda text: Measurement(samples_ms=[])

    def measure(device, model_path, artifact, settings):
        start = time.time()
        time.sleep(RUN_S)
        if device.id == "crashy":
            raise RunnerFailure("crashed", "the bench runner crashed")
        return Measurement(samples_ms=[1.0] * settings.iterations,
                           extra={"measured_start_epoch_s": start, "measured_end_epoch_s": time.time()})

    runner.measure = measure
    for name, module in (("tests_bench_platform", platform), ("tests_bench_runner", runner)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(PLATFORMS, "bench", "tests_bench_platform")
    monkeypatch.setitem(RUNNERS, "bench-wait", "tests_bench_runner")


@pytest.mark.slow  # devices measured at once
def test_devices_are_measured_at_once_and_each_device_one_run_at_a_time(tmp_path, model_dir, waiting_lab):
    copy_model(model_dir, "tiny.pte", tmp_path / "b", manifest={"model": "tiny", "stage": "vad",
                                                               "backend": "xnnpack", "quantization": "fp32"})
    copy_model(model_dir, "tiny-b.pte", tmp_path / "b", manifest={"model": "tiny-b", "stage": "vad",
                                                                 "backend": "xnnpack", "quantization": "fp32"})
    write(tmp_path / "devices.yaml", """
        devices:
          - {id: p1, platform: bench}
          - {id: p2, platform: bench}
          - {id: p3, platform: bench}
          - {id: crashy, platform: bench}
          - {id: slow, platform: bench}
        """)
    plan = write(tmp_path / "plan.yaml", "name: lab\ninventory: devices.yaml\nartifacts: [b/*.pte]\n"
                 "warmup_iterations: 0\niterations: 2\nruns: 2\n")
    outcome = run_plan(plan, tmp_path / "r.db")
    with Store(tmp_path / "r.db") as store:
        cells = store.cells(outcome.run_id)
        devices = {d["device_id"] for d in store.devices(outcome.run_id)}
    by_device: dict[str, list[tuple[float, float]]] = {}
    for cell in cells:
        for run in cell.runs:
            if run["status"] == "ok":
                by_device.setdefault(cell.device_id, []).append(
                    (run["extra"]["measured_start_epoch_s"], run["extra"]["measured_end_epoch_s"]))
    # 3 good phones x 2 builds x 2 runs, each phone's 4 runs one after another ...
    assert sorted(by_device) == ["p1", "p2", "p3"] and all(len(v) == 4 for v in by_device.values())
    for spans in by_device.values():
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    # ... and the phones at the same time: every phone's first run overlaps every other phone's.
    firsts = [spans[0] for spans in by_device.values()]
    assert all(a0 < b1 and b0 < a1 for i, (a0, a1) in enumerate(firsts) for (b0, b1) in firsts[i + 1:])
    # A crashing or unplugged device fails only its own cells, each once, with its reason.
    failed = {c.device_id: c for c in cells if c.status != "ok"}
    assert set(failed) == {"crashy", "slow"} and len(cells) == 5 * 2
    assert all(c.runs_done == 1 for c in cells if c.device_id in ("crashy", "slow"))
    assert "unplugged" in next(c for c in cells if c.device_id == "slow").reason
    assert devices == {"p1", "p2", "p3", "crashy"}
    assert outcome.statuses == {"ok": 6, "crashed": 2, "failed": 2}
    # Opened, each device was told to keep every build of the plan (never removed to make room on it).
    assert ROOM_KEPT["p1"] == {c.artifact["sha256"] for c in cells} and len(ROOM_KEPT["p1"]) == 2


def test_extra_rounds_continue_the_interleaving_for_only_the_cells_asked():
    """The nightly's second look: the asked cells get rounds 6..11, alternating order as the first six did;
    the others get nothing more, and what is stored is never measured again."""
    from types import SimpleNamespace as NS

    from harness.run.engine import schedule

    def cell(key, quant):
        art = NS(model="m", stage="vad", format="pte", backend="xnnpack", quantization=quant)
        return NS(key=key, device=NS(id="phone"), task="latency", artifact=art, settings=NS(runs=6))

    new, ref, other = cell("phone/new", "int8"), cell("phone/new/ref", "int8"), cell("phone/other", "int4")
    stored = {c.key: ("ok", set(range(6))) for c in (new, ref, other)}
    todo = schedule([new, ref, other], stored, {new.key: 12, ref.key: 12})
    assert [r for _, r in todo] == [6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11]
    assert {s.key for s, _ in todo} == {new.key, ref.key}
    orders = [[s.key for s, r in todo if r == k] for k in range(6, 12)]
    # each even round in one order, each odd round in the other
    assert orders[0] == orders[2] == orders[4] and orders[1] == orders[3] == orders[5] == orders[0][::-1]
    assert schedule([new, ref, other], stored) == []  # without extra rounds, a complete run has nothing left
