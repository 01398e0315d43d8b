"""The host device: the machine the harness runs on, no phone needed.

Models run in a child process (see ``harness.runners.host_python``) so that a crash
or a hang in a runtime cannot take the harness down: :meth:`Device.run` kills the
child's whole process group when the timeout passes.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import time
from importlib import metadata
from pathlib import Path

from harness.devices.base import CommandResult, DeviceFacts, ThermalSample
from harness.inventory.models import Backend, DeviceConfig
from harness.thermal import sysfs


class Config(DeviceConfig):
    """A host entry: nothing beyond the common keys."""

    backends: list[Backend] = ["portable", "xnnpack", "ort-cpu"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


class Device:
    """Runs commands as local child processes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.id = config.id

    def reachable(self) -> tuple[bool, str]:
        return True, "this machine"

    def facts(self) -> DeviceFacts:
        uname = platform.uname()
        facts = {
            "model": "host",
            "hostname": uname.node,
            "os": f"{uname.system} {uname.release}",
            "machine": uname.machine,
            "cpu": _cpu_model(),
            "cpu_count": str(os.cpu_count()),
            "python": platform.python_version(),
            "torch": _version("torch"),
            "executorch": _version("executorch"),
            "onnxruntime": _version("onnxruntime"),
        }
        try:
            facts["memory_gb"] = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f}"
        except (ValueError, OSError):
            pass
        if self.config.soc:
            facts["soc"] = self.config.soc
        return DeviceFacts(device_id=self.id, platform="host", simulated=False, facts=facts)

    def push(self, local: Path, sha256: str) -> str:
        # The host already holds the file; nothing to copy.
        return str(local.resolve())

    def run(self, argv: list[str], timeout_s: float, env: dict[str, str] | None = None) -> CommandResult:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout_s)
            return CommandResult(argv, proc.returncode, out, err, time.perf_counter() - started)
        except subprocess.TimeoutExpired:
            # Kill the whole group: a runtime may have spawned threads or helpers of its own.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            return CommandResult(argv, None, out, err, time.perf_counter() - started, timed_out=True)

    def sample_thermals(self) -> list[ThermalSample]:
        return sysfs.read_local()

    def close(self) -> None:
        pass
