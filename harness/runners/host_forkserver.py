"""A parent that imports one host runtime once and forks one child per measured run.

Run as ``python -m harness.runners.host_forkserver FORMAT``.  Importing torch and the
ExecuTorch runtime costs a host process about 2 s; a cell measured as five runs of six
builds would pay it thirty times a night.  Instead the host device starts one of these
per format per round (see :class:`ForkServer`): it imports that format's runtime once,
then for each request forks a child that becomes its own session (so a timeout kills it
and everything it spawned), loads the model and measures exactly as ``host_worker`` does,
with stdout and stderr in files the controller names.  One server per format, not one
for all: a child then holds exactly its own runtime whatever the order of the round (an
ONNX run has no torch in it, as onnxruntime_perf_test on a phone has none), and a round
of ONNX builds never pays for torch.  The model is loaded, warmed up and measured in the
child, after the fork, so each run has its own heap, threads and caches; a server never
serves the same model twice, so the runs of one cell come from different exec'd parents
with different library layouts (ASLR) as well.

Protocol, one JSON object per line: request ``{"args": [...], "stdout": PATH, "stderr":
PATH}``; replies ``{"pid": N}`` at once, then ``{"exit": CODE}`` (negative: a signal); or
``{"error": REASON}`` alone when the output files could not be created (nothing was forked).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import traceback
from typing import Callable

from harness.lifetime import die_with_parent
from harness.wire import FORKSERVER_READY as READY


def child_session(request: dict, main: Callable[[list[str]], int | None]) -> int:
    """In a forked child whose stdout and stderr are already the request's files (see fork_loop): a session of
    its own, then ``main(request["args"])``; returns the exit code (an exception is printed, as Python would,
    and is 1)."""
    try:
        os.setsid()
        code = main(request["args"])
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) or exc.code is None else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return int(code or 0)


def _open_outputs(request: dict) -> tuple[int, int]:
    """The child's stdout and stderr files, opened by the server before it forks: a child that cannot create
    them has nowhere to say so, and the server can answer with the reason instead."""
    opened: list[int] = []
    try:
        for key in ("stdout", "stderr"):
            opened.append(os.open(request[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    except OSError as exc:
        for fd in opened:
            os.close(fd)
        raise OutputFileError(f"could not create the run's output file in {os.path.dirname(request['stdout'])} "
                              f"({exc.strerror}): free space there, or set TMPDIR to a folder with room") from None
    return opened[0], opened[1]


class OutputFileError(Exception):
    """A child's output file could not be created (a full disk, no inodes left); the message is the reason the
    server answers with (host_forks.ForkServer.start raises it to the device as its own OutputFileError)."""


def _be_child(request: dict, child: Callable[[dict], int], server_pid: int, outputs: tuple[int, int]) -> None:
    """The forked child's whole life: every path ends in os._exit (a child that returned into the server's
    loop would read the server's stdin and never answer)."""
    code = 1
    try:
        die_with_parent(server_pid)
        for fd, target in zip(outputs, (1, 2)):
            os.dup2(fd, target)
            os.close(fd)
        code = child(request)
    except BaseException:  # child() prints its own errors; this is what happens before it runs
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code)


def fork_loop(child: Callable[[dict], int]) -> int:
    """Say ready, then for each request line on stdin fork ``child(request)`` and report its pid and exit.

    The child dies with this server (see :mod:`harness.lifetime`), and this server kills the child when its
    stdin closes mid-run: the controller closed it to stop, or the controller's process ended (even by SIGKILL).
    """
    out = sys.stdout
    print(READY, file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            outputs = _open_outputs(request)
        except OutputFileError as exc:
            print(json.dumps({"error": str(exc)}), file=out, flush=True)
            continue
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            _be_child(request, child, server_pid, outputs)
        for fd in outputs:
            os.close(fd)
        print(json.dumps({"pid": pid}), file=out, flush=True)
        print(json.dumps({"exit": _wait_unless_stdin_closes(pid)}), file=out, flush=True)
    return 0


def _wait_unless_stdin_closes(pid: int) -> int:
    """The child's exit code (negative: a signal); its session is killed first if stdin becomes readable
    while it runs.  The protocol sends no request while a child runs, so readable means closed."""
    try:
        child_fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # an old kernel: poll for the child's exit instead
        child_fd = None
    try:
        while True:
            waiting_on = [sys.stdin.fileno()] + ([child_fd] if child_fd is not None else [])
            ready, _, _ = select.select(waiting_on, [], [], None if child_fd is not None else 0.5)
            if sys.stdin.fileno() in ready:
                _kill_session(pid)
            done, status = os.waitpid(pid, 0 if sys.stdin.fileno() in ready else os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
    finally:
        if child_fd is not None:
            os.close(child_fd)


def _kill_session(pid: int) -> None:
    """The child and, once it made its session (right after the fork), everything it started."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _measure(request: dict) -> int:
    from harness.runners import host_worker

    return child_session(request, host_worker.main)


def import_runtime(fmt: str) -> None:
    """The runtime a ``fmt`` build runs on: onnxruntime, or torch and ExecuTorch's runtime (no exporter)."""
    import importlib

    from harness.runners.host_worker import RUNTIME_MODULES
    from harness.runtime import import_executorch_runtime

    for module in RUNTIME_MODULES[fmt]:
        importlib.import_module(module)
    if fmt == "pte":
        import_executorch_runtime()


def serve(fmt: str) -> int:
    import_runtime(fmt)
    return fork_loop(_measure)


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1]))
