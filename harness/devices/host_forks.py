"""The host device's side of :mod:`harness.runners.host_forkserver`: start, ask, time out, renew.

There is one server per format (it holds that format's runtime only).  A server is renewed
before it would serve a model a second time, which with the engine's round-robin order
means one fresh server per format per round.  Anything unexpected (the server
will not start, dies, answers nonsense) is reported to the caller, which falls back to a
plain child process for that command: a measurement never depends on the optimisation.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.devices.base import CommandResult
from harness.wire import FORKSERVER_READY as READY

START_TIMEOUT_S = 120.0
SCRATCH_PREFIX = "harness-forks-"  # then the controller's pid (for people reading /tmp; the sweep ignores it)
SCRATCH_MARKER = ".harness-scratch"  # in each scratch folder, flocked by the controller that made it while it lives


def make_scratch() -> tuple[Path, int]:
    """A new scratch folder and the descriptor holding its marker's lock (close it after removing the folder).

    The marker is locked before it gets its name, so a sweep never sees a marker that nobody holds."""
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        fd = os.open(folder / f"{SCRATCH_MARKER}.new", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(folder / f"{SCRATCH_MARKER}.new", folder / SCRATCH_MARKER)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, fd


def sweep_stale_scratch() -> None:
    """Remove scratch folders left by a controller that was killed (SIGKILL leaves no time to clean up).

    Only a folder this harness provably made and no one holds: it has the marker, and the marker's lock can
    be taken.  The kernel releases a flock when its holder dies, in whatever PID namespace, so a live
    controller's folder (another container's, another CI job's) and a user's look-alike folder are kept."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        try:
            facts = folder.lstat()
            if facts.st_uid != os.getuid() or not stat.S_ISDIR(facts.st_mode):
                continue
            # O_NONBLOCK: a FIFO named like the marker would otherwise block the open, and every run with it.
            fd = os.open(folder / SCRATCH_MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # no marker: not ours; or the folder vanished
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # our marker is a regular file: anything else is not ours
            os.close(fd)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # held: its controller is alive
        finally:
            os.close(fd)


def _read_or_empty(path: Path) -> str:
    """A child's output file; '' when it was never written (or its folder is gone: the run is being stopped)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


class ForkServerError(Exception):
    """The fork server could not serve this request; run it as a plain process instead."""


class OutputFileError(ForkServerError):
    """The server could not create the child's output files (a full disk, no inodes left): nothing was forked,
    and the message says so and what to do."""


class ForkServer:
    """A running fork server: ``python -m MODULE PRELOAD`` speaking the protocol of host_forkserver.fork_loop."""

    def __init__(self, preload: str, module: str = "harness.runners.host_forkserver") -> None:
        sweep_stale_scratch()
        try:
            self.scratch, self._scratch_lock = make_scratch()
        except OSError as exc:
            raise ForkServerError(f"could not create a scratch folder in {tempfile.gettempdir()} ({exc.strerror})") \
                from None
        self.proc = subprocess.Popen([sys.executable, "-m", module, preload], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        self.served: set[str] = set()
        self._pending = b""  # bytes read from the server's stdout but not yet returned as a line
        self._requests = itertools.count()  # names each child's output files (a user may delete them once read)
        line = self._read_line(START_TIMEOUT_S)
        if line.strip() != READY:
            self.close()
            raise ForkServerError(f"the fork server did not start ({line.strip() or 'no answer'})")

    def _read_line(self, timeout_s: float) -> str:
        """The next line the server printed, or '' when none comes within ``timeout_s`` (or it died).

        Reads the pipe's descriptor directly, with a buffer of its own: select() on the descriptor
        cannot see lines already sitting in a file object's buffer (two replies often arrive in one
        read), and waiting on it then would wait forever."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while b"\n" not in self._pending:
            try:  # close() from another thread (a run being stopped) may have closed the pipe under us
                fd = self.proc.stdout.fileno()
                ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(fd, 65536) if ready else b""
            except (OSError, ValueError):
                return ""
            if not chunk:
                return ""
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8", errors="replace") + "\n"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(self, args: list[str], **request) -> tuple[int, Path, Path]:
        """Fork a child for ``args`` (more request keys as the server's child reads them); its pid and the
        files its stdout and stderr go to."""
        n = next(self._requests)
        out, err = self.scratch / f"{n}.out", self.scratch / f"{n}.err"
        try:
            self.proc.stdin.write(json.dumps({"args": args, "stdout": str(out), "stderr": str(err), **request}) + "\n")
            self.proc.stdin.flush()
            reply = json.loads(self._read_line(30.0) or "{}")
        except (OSError, ValueError) as exc:
            raise ForkServerError(f"the fork server did not answer ({exc})") from None
        if "error" in reply:
            raise OutputFileError(str(reply["error"]))
        pid = reply.get("pid")
        if pid is None:
            raise ForkServerError("the fork server did not fork")
        return pid, out, err

    def exit_code(self, timeout_s: float) -> int | None:
        """The child's exit code (negative: a signal) once it ends, or None if it is still running after
        ``timeout_s``."""
        reply = self._read_line(timeout_s)
        if not reply:
            if self.alive():
                return None
            raise ForkServerError("the fork server lost its child")
        try:
            return json.loads(reply)["exit"]
        except (ValueError, KeyError, TypeError):
            raise ForkServerError("the fork server lost its child") from None

    def run(self, argv: list[str], worker_args: list[str], model: str, timeout_s: float) -> CommandResult:
        """Measure in a forked child; kill its whole session when ``timeout_s`` passes."""
        self.served.add(model)
        started = time.perf_counter()
        pid, out, err = self.start(worker_args)
        code = self.exit_code(timeout_s)
        timed_out = code is None
        if timed_out:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            code = self.exit_code(30.0)
            if code is None:
                raise ForkServerError("the fork server lost its child")
        return CommandResult(argv, None if timed_out else code, _read_or_empty(out), _read_or_empty(err),
                             time.perf_counter() - started, timed_out=timed_out)

    def close(self) -> None:
        """Stop the server and the child it is waiting for (the server kills it when its stdin closes, see
        host_forkserver.fork_loop); safe to call twice, from two threads."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):  # its pipes too, not only the process
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.scratch, ignore_errors=True)
        lock, self._scratch_lock = self._scratch_lock, None  # released after the removal, not before it
        if lock is not None:
            os.close(lock)
