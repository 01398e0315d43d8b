"""A fork server for the hostile table's ``harness`` commands: one Python process that has imported the
harness's command line once, and forks a child for each command, which runs ``harness`` exactly as
``python -m harness`` does (runpy's ``-m`` entry, the command's own folder first on sys.path, its arguments,
environment, standard streams and folder; a traceback, an exit code or a signal as that process would end).
A child process costs ~1 s of imports; a fork of one that has them costs a few milliseconds.

Where a child differs from a fresh interpreter: the modules the server imported (PRELOADED and the command
line's) are not imported again, so a file in the command's folder named like one of them would not shadow it,
and their import-time warnings were printed once, by the server; /proc/PID/cmdline and environ show the server's.
cases.py's rows that look at those (the process-tree rows) start `python -m harness` themselves; the rows
that signal a command or watch it while it runs take a forked one too (cases.harness_popen).

Run as ``python cli_server.py FD``: FD is a Unix socket on which each request is a JSON object
{"args", "cwd", "env"} with three descriptors (stdin, stdout, stderr); the server answers the child's pid
("pid N\\n"), then its wait status ("status N\\n").  The server ends when the socket closes.
"""

from __future__ import annotations

import json
import os
import socket
import sys


# What most commands import beyond the command line (a measuring run, the store and the stats): imported once
# here, not by each child.  Only modules a command imports anyway, whose import depends on nothing but the
# environment the children share.
PRELOADED = ("harness.run.engine", "harness.run.cell", "harness.run.workers", "harness.plan.expand",
             "harness.inventory.models", "harness.store.db", "harness.store.builds", "harness.store.migrate",
             "harness.stats.summary", "harness.accuracy.corpus", "harness.devices.host", "harness.cli_progress",
             "harness.lab", "onnx", "rich")


def _serve(sock: socket.socket) -> dict | None:
    """Answer requests until the socket closes (None), or, in a forked child, return its request."""
    while True:
        message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        if not message:
            return None
        pid = os.fork()
        if pid == 0:
            sock.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            return json.loads(message)
        for fd in fds:
            os.close(fd)
        sock.sendall(f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        sock.sendall(f"status {status}\n".encode())


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    del sys.path[0]  # this script's folder: each child puts its own folder there, as `python -m` does
    import importlib

    import harness.cli

    harness.cli.build_parser()  # every command's module, imported as a command line imports them
    for name in PRELOADED:
        importlib.import_module(name)
    import gc

    gc.freeze()  # what is imported stays out of the children's collections (and their exit's): 135 -> 65 ms each
    request = _serve(sock)
    if request is None:
        return
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path.insert(0, os.getcwd())
    sys.argv = ["-m", *request["args"]]
    import runpy

    # What `python -m harness` runs; its SystemExit, exception or signal ends this child as it would end that.
    runpy._run_module_as_main("harness", alter_argv=True)


if __name__ == "__main__":
    main()
