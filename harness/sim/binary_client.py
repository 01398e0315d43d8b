"""A vendor binary on the simulated phone (getprop, dumpsys, logcat, log, a benchmark binary), as a process of its own.

Runs inside the phone's sandbox with only Python's standard library (``python -I -S``): hands its argv,
environment and working folder to the phone's daemon (harness/sim/vendor.py) over a Unix socket, copies what
the binary prints to its own stdout/stderr as it comes, and ends as the binary did: with its exit code, or
killed by the same signal.  Killing this process (toybox ``timeout``, ``kill``) closes the socket, and the
daemon stops the binary's work: the process is the binary, as far as the phone's shell can tell.

Its memory is the binary's too: a runtime reads the build it is given (weights, tokenizer) into its own
memory, so this process holds the bytes of every file its arguments name on the phone's storage until it
ends.  The kernel's own accounting of it (its peak RSS, what toybox ``time -v`` reports) then grows with the
build's size, as a real runner's does; nobody tells the harness a number.
"""
import json
import os
import signal
import socket
import struct
import sys

SOCKET = "/dev/socket/harness-sim"
STDOUT, STDERR, EXIT = 1, 2, 3


def main(argv):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as adbd leaves it for a shell's children
    name = os.path.basename(argv[0])
    if name == "simulated-binary":  # run through a stand-in's #! line: argv[1] is the stand-in's path
        name, argv = os.path.basename(argv[1]), argv[1:]
    held = _load_named_files(argv[1:])  # noqa: F841 - resident until the binary ends, as a runtime's weights are
    # Its pid in the phone's PID namespace: the binary's, which its log lines carry (logd takes it from the socket).
    request = {"name": name, "args": argv[1:], "env": dict(os.environ), "cwd": os.getcwd(), "path": argv[0],
               "pid": os.getpid()}
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(SOCKET)
    conn.sendall(json.dumps(request).encode() + b"\n")
    stream = conn.makefile("rb")
    while True:
        head = stream.read(5)
        if len(head) < 5:
            return 1  # the daemon went away mid-answer
        kind, length = struct.unpack("<BI", head)
        data = stream.read(length)
        if kind == EXIT:
            code = int(data)
            if code > 128 and code - 128 in (signal.SIGSEGV, signal.SIGABRT, signal.SIGKILL, signal.SIGBUS):
                signal.signal(code - 128, signal.SIG_DFL)
                os.kill(os.getpid(), code - 128)  # died of that signal, as the binary did
            return code
        _write(STDOUT if kind == STDOUT else STDERR, data)


def _load_named_files(args):
    """The bytes of each regular file under /data that an argument names (``--model_path=/data/...`` or a path
    of its own), read into this process's memory (every page touched, so resident)."""
    held, seen = [], set()
    for arg in args:
        path = arg.split("=", 1)[-1]
        if path.startswith("/data/") and path not in seen and os.path.isfile(path):
            seen.add(path)
            with open(path, "rb") as f:
                held.append(f.read())
    return held


def _write(fd, data):
    while data:
        data = data[os.write(fd, data):]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
