"""adbd's shell service on the simulated phone: a command line in the phone's own shell, as adbd runs it.

adb/daemon/shell_service.cpp (AOSP platform/system/core, android-15 tags): ``Subprocess::ForkAndExec`` forks,
calls ``setsid()`` and execs ``/system/bin/sh -c COMMAND`` with stdin, stdout and stderr on socketpairs;
``PassDataStreams`` copies output to the adb stream as it comes; when the adb stream dies (the host closed it,
or the controller went away) it sends SIGHUP to the shell, and only to the shell, then closes the pipes; its
exit code is the shell's, or ``0x80 | signal`` when a signal ended it (``WaitForExit``).  The shell is real
mksh with toybox in a sandbox laid out like a phone (:mod:`harness.sim.sandbox`).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

from harness.sim import sandbox
from harness.sim.phone import Phone


class Result:
    def __init__(self, code: int = 0, out: str = "", err: str = "") -> None:
        self.code, self.out, self.err = code, out, err


def run(phone: Phone, command: str, hangup: threading.Event, emit=None, stdin=None) -> Result:
    """Run ``command``; ``emit(kind, bytes)`` (1 stdout, 2 stderr) streams output as it is printed, otherwise it
    is collected.  ``hangup`` is set when the adb stream closed.  ``stdin`` yields what the host sends to the
    command's stdin, and its end closes it (adbd's PassInput: kIdStdin, kIdCloseStdin); without it, stdin stays
    open and empty, as for a host that never sends either."""
    proc, shell_pid = sandbox.spawn(phone, command)
    with phone.lock:
        phone.shells.add(shell_pid)
    if stdin is not None:
        threading.Thread(target=_pass_input, args=(stdin, proc.stdin), daemon=True).start()
    collected: dict[int, list[bytes]] = {1: [], 2: []}

    def pump(kind: int, pipe) -> None:
        fd = pipe.fileno()
        while not hangup.is_set():
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            if emit is None:
                collected[kind].append(chunk)
                continue
            try:
                emit(kind, chunk)
            except (OSError, ConnectionError):  # the stream is gone
                hangup.set()
        # adbd closes the pipes once the stream died: a process still printing gets EPIPE (or SIGPIPE)
        pipe.close()

    pumps = [threading.Thread(target=pump, args=(k, p), daemon=True) for k, p in ((1, proc.stdout), (2, proc.stderr))]
    for t in pumps:
        t.start()
    # As PassDataStreams: output is passed on until the pipes close, which may be after the shell exited (a
    # process it left running still holds them), or until the stream dies.
    while any(t.is_alive() for t in pumps) or proc.poll() is None:
        if hangup.is_set():
            _hang_up(shell_pid, proc)
            break
        _wait_for_an_end(pumps, proc, HANGUP_POLL_S)
    code = proc.wait()
    for t in pumps:
        t.join()
    with phone.lock:
        phone.shells.discard(shell_pid)
    if code < 0:
        code = 0x80 | -code
    return Result(code, b"".join(collected[1]).decode(errors="replace"), b"".join(collected[2]).decode(errors="replace"))


# How often a running command looks for the stream's end; the command's own end is seen as it happens (every
# command of a run used to wait out a last period after its output was all passed on: ~50 ms each).
HANGUP_POLL_S = 0.05


def _wait_for_an_end(pumps: list[threading.Thread], proc, wait_s: float) -> None:
    """Wait at most ``wait_s`` for a pump to finish or, once both have, for the shell to exit."""
    pump = next((t for t in pumps if t.is_alive()), None)
    if pump is not None:
        pump.join(wait_s)
        return
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        pass


def _pass_input(chunks, pipe) -> None:
    """Copy the host's stdin to the command's (blocking, as adbd's write waits for a full pipe), then close it:
    the command reads EOF, as after adbd's shutdown(SHUT_WR).  A command that stopped reading ends the copy."""
    try:
        for chunk in chunks:
            pipe.write(chunk)
            pipe.flush()
        pipe.close()
    except (OSError, ValueError):  # the command's stdin is gone (it exited, or adbd hung up and closed it)
        pass


def _hang_up(shell_pid: int, proc) -> None:
    """adbd when the stream dies: SIGHUP to the shell, then its pipes closed (what it started runs on unless the
    command line itself stops it)."""
    # A shell that has not begun yet (bubblewrap still setting up the phone's view before it execs sh) is told
    # once it has: adbd's child is sh from its fork on, so its hang-up never lands on anything else.
    deadline = time.monotonic() + 5
    while _not_yet_the_shell(shell_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        os.kill(shell_pid, signal.SIGHUP)
    except ProcessLookupError:
        pass
    proc.stdin.close()  # the pumps close stdout and stderr once they see the hangup


def _not_yet_the_shell(pid: int) -> bool:
    """Whether process ``pid`` is still bubblewrap, not yet the phone's shell it execs (False once gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"bwrap\0")
    except OSError:
        return False
