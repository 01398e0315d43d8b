"""The standard streams a command writes to, made safe before anything else opens a file.

A job launcher may start the harness with stdout or stderr closed (``>&-``).  Python then sets ``sys.stdout`` to
None (a nightly's last ``flush()`` crashed with exit 1, a false "regression"), and worse, descriptor 1 is free: the
next file opened (the results database) would get it, and a ``print`` would write into that file.  A full disk
behind stdout (``> /dev/full``) raised a bare ENOSPC that read as the database's.  So: descriptors 0-2 are held open
(on /dev/null when closed), and a failed write to stdout names standard output.
"""

from __future__ import annotations

import io
import os
import sys

from harness.outfile import OutputError

STDOUT_NAME = "standard output"


def hold_standard_descriptors() -> None:
    """Open /dev/null on each of 0, 1 and 2 that is closed, lowest first (os.open takes the lowest free one)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:  # a lower one was free too and is now this; the next loop turn fills the rest
                os.dup2(opened, fd)
                os.close(opened)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own stdout, for its lifetime
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


class _NamedStdout(io.RawIOBase):
    """Descriptor 1, whose write errors name standard output (an OutputError, as any other output's)."""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1

    def write(self, data) -> int:
        try:
            return os.write(1, data)
        except BrokenPipeError:
            raise  # a reader that stopped early: handled as such by the CLI
        except OSError as exc:
            raise OutputError(exc.errno, exc.strerror, STDOUT_NAME) from None


def name_stdout_errors() -> None:
    """Replace the process's own stdout (not a test's capture) by one whose write errors name it."""
    if sys.stdout is not sys.__stdout__ or sys.stdout is None:
        return
    sys.stdout.flush()
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(_NamedStdout()), encoding=sys.stdout.encoding,
                                  errors=sys.stdout.errors, line_buffering=sys.stdout.line_buffering)
