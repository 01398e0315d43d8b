"""A private adb server with simulated phones attached: for tests, benchmarks and trying plans.

Uses Debian's real ``adb``; the server port is a free one (never 5037, the default a
developer's own phones use, and never the 5555-5585 range the server probes as emulators).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AdbServer:
    exe: str
    port: int

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "ANDROID_ADB_SERVER_PORT": str(self.port)}

    def adb(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([self.exe, "-P", str(self.port), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout_s)

    def attach(self, root: Path, faults=None):
        """Start a simulated phone and `adb connect` to it; return (sim server, serial)."""
        from harness.sim.server import start

        server = start(0, root, faults)
        serial = f"127.0.0.1:{server.server_address[1]}"
        out = self.adb("connect", serial)
        if "connected" not in out.stdout:
            server.shutdown()
            server.server_close()
            raise RuntimeError(f"adb could not connect to the simulated phone: {out.stdout} {out.stderr}")
        return server, serial

    def detach(self, server, serial: str) -> None:
        self.adb("disconnect", serial)
        server.shutdown()
        server.server_close()


@contextmanager
def private_adb_server():
    exe = shutil.which("adb")
    if exe is None:
        raise UserError("Debian's adb is not installed.", fix="apt-get install adb (or run scripts/install-system-deps.sh).")
    server = AdbServer(exe, free_port())
    server.adb("start-server")
    try:
        yield server
    finally:
        server.adb("kill-server")
