"""Android through adbutils -> Debian's real adb server -> the simulated SM8650 phone."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from harness.run.engine import run_plan
from harness.sim.phone import Faults
from harness.sim.server import start
from harness.store import Store
from tests.helpers import copy_model, write


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def adb_server():
    """A private adb server (never 5037, never the 5555-5585 emulator range)."""
    exe = shutil.which("adb")
    assert exe, "adb is missing: make test installs Debian's adb"
    port = _free_port()
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(port)}
    subprocess.run([exe, "-P", str(port), "start-server"], env=env, check=True, capture_output=True, timeout=60)
    yield exe, port, env
    subprocess.run([exe, "-P", str(port), "kill-server"], env=env, capture_output=True, timeout=60)


def _phone(tmp_path, adb_server, faults=None):
    exe, port, env = adb_server
    server = start(0, tmp_path / "phone", faults)
    serial = f"127.0.0.1:{server.server_address[1]}"
    out = subprocess.run([exe, "-P", str(port), "connect", serial], env=env, capture_output=True, text=True, timeout=60)
    assert "connected" in out.stdout, out
    return server, serial


def _inventory(tmp_path, serial, adb_port):
    runner = write(tmp_path / "tools" / "executor_runner", "#!/system/bin/sh\n# stands in for an arm64 build\n")
    return write(tmp_path / "devices.yaml", f"""
        devices:
          - id: sim-s24
            platform: android
            serial: "{serial}"
            adb_port: {adb_port}
            soc: SM8650
            backends: [xnnpack]
            tools: {{executor_runner: {runner}}}
        """)


def test_plan_runs_on_the_simulated_phone(tmp_path, adb_server, model_dir):
    server, serial = _phone(tmp_path, adb_server)
    _inventory(tmp_path, serial, adb_server[1])
    copy_model(model_dir, "tiny.pte", tmp_path / "builds", manifest={"model": "tiny", "stage": "vad",
                                                                    "backend": "xnnpack", "quantization": "fp32"})
    plan = write(tmp_path / "plan.yaml", """
        name: phone
        inventory: devices.yaml
        artifacts: [builds/tiny.pte]
        warmup_iterations: 2
        iterations: 12
        thermal_period_s: 0.2
        timeout_s: 120
        """)
    outcome = run_plan(plan, tmp_path / "r.db")
    assert outcome.statuses == {"ok": 1}, outcome
    with Store(tmp_path / "r.db") as store:
        (cell,) = store.cells(outcome.run_id)
        (device,) = store.devices(outcome.run_id)
    assert len(cell.samples_ms) == 12 and cell.load_ms > 0 and cell.runner == "android-executor-runner"
    assert device["simulated"] == 1 and device["facts"]["soc"] == "SM8650" and device["facts"]["abi"] == "arm64-v8a"
    temps = [t for t in cell.thermals if t["kind"] == "temp"]
    assert temps and any(t["sensor"].startswith("cpu-1-0") for t in temps)
    assert any(t["kind"] == "freq" and t["value"] > 1e6 for t in cell.thermals)
    # The model sits on the phone content-addressed; a second run pushes nothing.
    sha = cell.artifact["sha256"]
    assert (server.phone.root / "data/local/tmp/harness" / sha / "tiny.pte").is_file()
    again = run_plan(plan, tmp_path / "r.db")
    assert again.statuses == {"ok": 1}
    server.shutdown()


@pytest.mark.parametrize("fault, status, words", [
    (Faults(crash_runner=True), "crashed", "SIGSEGV"),
    (Faults(storage_full=True), "failed", "No space left"),
])
def test_faults_become_failed_cells_with_reasons(tmp_path, adb_server, model_dir, fault, status, words):
    server, serial = _phone(tmp_path, adb_server, fault)
    _inventory(tmp_path, serial, adb_server[1])
    copy_model(model_dir, "tiny.pte", tmp_path / "builds")
    plan = write(tmp_path / "plan.yaml", """
        name: faulty
        inventory: devices.yaml
        artifacts: [builds/tiny.pte]
        iterations: 3
        timeout_s: 60
        """)
    outcome = run_plan(plan, tmp_path / "r.db")
    with Store(tmp_path / "r.db") as store:
        (cell,) = store.cells(outcome.run_id)
    assert cell.status == status and words in (cell.reason + cell.log), (cell.reason, cell.log)
    server.shutdown()


def test_hung_runner_times_out(tmp_path, adb_server, model_dir):
    server, serial = _phone(tmp_path, adb_server, Faults(hang_runner=True))
    _inventory(tmp_path, serial, adb_server[1])
    copy_model(model_dir, "tiny.pte", tmp_path / "builds")
    plan = write(tmp_path / "plan.yaml", """
        name: hang
        inventory: devices.yaml
        artifacts: [builds/tiny.pte]
        warmup_iterations: 0
        iterations: 3
        timeout_s: 5
        """)
    outcome = run_plan(plan, tmp_path / "r.db")
    assert outcome.statuses == {"timeout": 1}
    server.shutdown()


def test_onnx_on_the_phone_through_onnxruntime_perf_test(tmp_path, adb_server, model_dir):
    server, serial = _phone(tmp_path, adb_server)
    runner = write(tmp_path / "tools" / "onnxruntime_perf_test", "#!/system/bin/sh\n")
    write(tmp_path / "devices.yaml", f"""
        devices:
          - id: sim
            platform: android
            serial: "{serial}"
            adb_port: {adb_server[1]}
            backends: [ort-cpu]
            tools: {{onnxruntime_perf_test: {runner}}}
        """)
    copy_model(model_dir, "tiny.onnx", tmp_path / "builds")
    plan = write(tmp_path / "plan.yaml", """
        name: ort
        inventory: devices.yaml
        artifacts: [builds/tiny.onnx]
        iterations: 30
        thermal_period_s: 0.1
        timeout_s: 120
        """)
    outcome = run_plan(plan, tmp_path / "r.db")
    with Store(tmp_path / "r.db") as store:
        (cell,) = store.cells(outcome.run_id)
    assert cell.status == "ok" and cell.runner == "android-onnxruntime-perf-test", cell.log
    assert cell.extra["requests"] == 30 and cell.extra["p50_ms"] > 0 and cell.load_ms > 0
    assert any(t["kind"] == "status" for t in cell.thermals)  # dumpsys thermalservice, at a lower rate
    server.shutdown()


def test_hot_phone_throttles_and_the_cell_is_flagged(tmp_path, adb_server, model_dir):
    server, serial = _phone(tmp_path, adb_server, Faults(hot=True))
    _inventory(tmp_path, serial, adb_server[1])
    copy_model(model_dir, "tiny.pte", tmp_path / "builds")
    plan = write(tmp_path / "plan.yaml", """
        name: hot
        inventory: devices.yaml
        artifacts: [builds/tiny.pte]
        iterations: 5
        thermal_period_s: 0.1
        cooldown: {max_temp_c: 60, timeout_s: 1, poll_s: 0.2}
        timeout_s: 120
        """)
    outcome = run_plan(plan, tmp_path / "r.db")
    with Store(tmp_path / "r.db") as store:
        (cell,) = store.cells(outcome.run_id)
    assert cell.status == "ok" and cell.throttled
    assert "still" in cell.cooldown_note and cell.cooldown_wait_s >= 1  # the gate waited, then gave up
    assert "thermal status reached level" in cell.log
    server.shutdown()
