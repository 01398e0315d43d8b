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
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from harness.devices.base import BaseDevice, CommandResult, DeviceConfig, DeviceFacts, ThermalSample
from harness.errors import DeviceError
from harness.lifetime import dying_with_this_process
from harness.vocab import Backend
from harness.thermal import sysfs

if TYPE_CHECKING:
    from harness.devices.host_forks import ForkServer


class Config(DeviceConfig):
    """A host entry.  ``no_fork_server``: start every measured run as a fresh interpreter instead of forking
    it from a per-round parent that imported the runtimes once (slower; for checking that the two agree)."""

    backends: list[Backend] = Field(["portable", "xnnpack", "ort-cpu"],
                                    description="The runtimes this machine can run builds with.")
    no_fork_server: bool = Field(False, description="Start every measured run as a fresh interpreter instead of "
                                                    "forking it (slower; for checking that the two agree).")


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


WORKER = ["-m", "harness.runners.host_worker"]


def _measured_by(argv: list[str]) -> tuple[str, str] | None:
    """The model a host_worker command measures and its format, or None for any other command."""
    if argv[1:3] != WORKER or "--model" not in argv[:-1] or "--format" not in argv[:-1]:
        return None
    return argv[argv.index("--model") + 1], argv[argv.index("--format") + 1]


class Device(BaseDevice):
    """Runs commands as local child processes; host_worker runs are forked from a per-round fork server."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._forks: dict[str, ForkServer] = {}  # format -> its fork server, started on the format's first run
        self._processes: set[subprocess.Popen] = set()  # plain processes running now, killed by close()
        self._lock = threading.Lock()  # close() may come from another thread while this one starts a process
        self._closed = False  # once closed (a run being stopped), nothing new starts

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
        measured = _measured_by(argv)
        if measured is not None and not env and not self.config.no_fork_server:
            result = self._run_forked(argv, *measured, timeout_s)
            if result is not None:
                return result
        return self._run_process(argv, timeout_s, env)

    def _run_forked(self, argv: list[str], model: str, fmt: str, timeout_s: float) -> CommandResult | None:
        """Through the fork server of ``fmt``; a new one when it already measured ``model`` (a new round)."""
        from harness.devices.host_forks import ForkServer, ForkServerError, OutputFileError

        server = self._forks.get(fmt)
        try:
            if server is None or not server.alive() or model in server.served:
                if server is not None:
                    server.close()
                server = ForkServer(fmt)
                if not self._keep(fmt, server):
                    server.close()
                    raise self._stopped(argv)
            return server.run(argv, argv[3:], model, timeout_s)
        except OutputFileError as exc:  # TMPDIR is full: say so rather than measure around it
            raise DeviceError(self.id, argv, str(exc)) from None
        except ForkServerError as exc:
            self.notes.append(f"{exc}; measured in a plain process instead")
            broken = self._forks.pop(fmt, None)
            if broken is not None:
                broken.close()
            return None

    def _run_process(self, argv: list[str], timeout_s: float, env: dict[str, str] | None) -> CommandResult:
        started = time.perf_counter()
        with self._lock:
            if self._closed:
                raise self._stopped(argv)
            # This thread waits for the child, so the child may die with it (and so with a SIGKILLed controller).
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, **(env or {})}, start_new_session=True, preexec_fn=dying_with_this_process(),
            )
            self._processes.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout_s)
            return CommandResult(argv, proc.returncode, out, err, time.perf_counter() - started)
        except subprocess.TimeoutExpired:
            _kill_group(proc)  # the whole group: a runtime may have spawned threads or helpers of its own
            out, err = proc.communicate()
            return CommandResult(argv, None, out, err, time.perf_counter() - started, timed_out=True)
        finally:
            with self._lock:
                self._processes.discard(proc)

    def _keep(self, fmt: str, server: ForkServer) -> bool:
        """Make ``server`` the one of ``fmt``, unless the device was closed while it started."""
        with self._lock:
            if not self._closed:
                self._forks[fmt] = server
            return not self._closed

    def _stopped(self, argv: list[str]) -> DeviceError:
        return DeviceError(self.id, argv, "the run is being stopped; not started", lost=True)

    def sample_thermals(self) -> list[ThermalSample]:
        return sysfs.read_local()

    def close(self) -> None:
        """Kill whatever runs (a run being stopped calls this from another thread) and start nothing after."""
        with self._lock:
            self._closed = True
            processes, servers = list(self._processes), list(self._forks.values())
            self._forks.clear()
        for proc in processes:
            _kill_group(proc)
        for server in servers:
            server.close()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
