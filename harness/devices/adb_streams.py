"""The two adb streams the harness reads and writes itself, over a connection adbutils opened.

adbutils' ``shell2`` takes a *socket idle* timeout: a runner that keeps printing never times
out, and everything it prints is kept in memory.  :func:`shell_v2` reads the shell protocol v2
packets (adb's ``shell_protocol.h``: 1 = stdout, 2 = stderr, 3 = exit code) against a wall-clock
deadline and keeps at most ``cap_bytes`` of each stream (its head and its tail).
:func:`sync_send` is adb's sync SEND with 64 KiB chunks (adbutils writes 4 KiB ones).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT = 1, 2, 3
SYNC_CHUNK = 64 * 1024  # the sync protocol's largest DATA payload


class SyncRefused(OSError):
    """The device answered the SEND with FAIL (storage full, a bad path): it is there, and said no."""


class CappedBuffer:
    """The first and last ``cap_bytes // 2`` bytes of a stream, and how many were dropped between them."""

    def __init__(self, cap_bytes: int) -> None:
        self.half = max(1, cap_bytes // 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def write(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - self.half
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def text(self) -> str:
        if not self.dropped:
            return (self.head + self.tail).decode(errors="replace")
        marker = f"\n[... {self.dropped} bytes not kept: the command printed more than the harness keeps ...]\n"
        return self.head.decode(errors="replace") + marker + self.tail.decode(errors="replace")


@dataclass
class ShellOutcome:
    exit_code: int | None  # None when the deadline passed first
    stdout: str
    stderr: str
    deadline_passed: bool
    output_cut: bool = False  # a stream passed cap_bytes: its middle was dropped


def shell_v2(connection, command: str, deadline_s: float, cap_bytes: int) -> ShellOutcome:
    """Run ``command`` over an open transport (``device.open_transport()``), reading until the exit packet
    or until ``deadline_s`` seconds have passed, whichever is first; the connection is closed either way."""
    out, err = CappedBuffer(cap_bytes), CappedBuffer(cap_bytes)
    deadline = time.monotonic() + deadline_s
    sock = connection.conn

    def read_exact(n: int) -> bytes | None:
        data = bytearray()
        while len(data) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(min(remaining, 5.0))
            try:
                chunk = sock.recv(n - len(data))
            except socket.timeout:
                continue  # recheck the deadline: an idle but live connection is not a finished command
            if not chunk:
                raise EOFError("the device closed the connection before the command's exit code arrived")
            data += chunk
        return bytes(data)

    try:
        connection.send_command(f"shell,v2:{command}")
        connection.check_okay()
        while True:
            header = read_exact(5)
            if header is None:
                return ShellOutcome(None, out.text(), err.text(), True, bool(out.dropped or err.dropped))
            kind, length = header[0], struct.unpack("<I", header[1:5])[0]
            data = read_exact(length) if length else b""
            if data is None:
                return ShellOutcome(None, out.text(), err.text(), True, bool(out.dropped or err.dropped))
            if kind == SHELL_STDOUT:
                out.write(data)
            elif kind == SHELL_STDERR:
                err.write(data)
            elif kind == SHELL_EXIT:
                return ShellOutcome(data[0], out.text(), err.text(), False, bool(out.dropped or err.dropped))
    finally:
        connection.close()


def sync_send(connection, local: Path, remote: str, mode: int = 0o100644) -> None:
    """adb's sync SEND of one file with 64 KiB DATA chunks; SyncRefused with the device's reason on FAIL."""
    target = f"{remote},{mode}".encode()
    with connection as c:
        c.send_command("sync:")
        c.check_okay()
        c.conn.sendall(b"SEND" + struct.pack("<I", len(target)) + target)
        with local.open("rb") as fh:
            while chunk := fh.read(SYNC_CHUNK):
                c.conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        c.conn.sendall(b"DONE" + struct.pack("<I", int(time.time())))
        status = c.read_string(4)
        if status != "OKAY":
            length = struct.unpack("<I", c.read(4))[0]
            raise SyncRefused(f"{status}: {c.read(length).decode(errors='replace')}")
