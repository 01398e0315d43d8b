"""Library warnings go to a log file, not the user's terminal.

torch, ExecuTorch and friends warn about deprecations and tracing details that a person running a
benchmark cannot act on; pages of them hide the harness's own messages.  While a command runs,
Python warnings and every library's log records go to ``harness.log`` in the user's state folder
(``$XDG_STATE_HOME/harness``, else ``~/.local/state/harness``; ``HARNESS_LOG`` names another file),
and the command ends with one line saying how many were kept there.  The harness's own messages
are printed directly, never through ``logging``, so nothing of the user's is hidden.

Loggers that print through a stderr handler of their own and do not propagate (torch's registered
loggers do this) are caught too: while a command runs, any logging handler writing to the terminal's
stderr sends its records to the log instead.  Progress bars drawn by libraries (tqdm, as Core ML tools
uses it) are switched off for the whole command by :func:`quiet_progress_bars`.  Output child
processes write to their stderr (a host cell's worker) lands in the cell's log, not the terminal.
Native libraries (ExecuTorch's C++ logging, ``[cpuinfo_utils.cpp:...]``) write to file descriptors 1 and 2
past Python's ``sys.stderr``: around library calls that print so (a zoo build), :func:`native_output_to_log`
points those descriptors at the log file.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def log_path() -> Path:
    """HARNESS_LOG, else the XDG state folder in the home folder; a home folder that does not exist (a service
    account's HOME=/nonexistent) is never made: the log goes to the temporary folder instead."""
    if os.environ.get("HARNESS_LOG"):
        return Path(os.environ["HARNESS_LOG"]).expanduser()
    if os.environ.get("XDG_STATE_HOME"):
        return Path(os.environ["XDG_STATE_HOME"]) / "harness" / "harness.log"
    home = Path.home()
    if not home.is_dir():
        import tempfile

        return Path(tempfile.gettempdir()) / f"harness-{os.getuid()}" / "harness.log"
    return home / ".local" / "state" / "harness" / "harness.log"


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def quiet_progress_bars() -> None:
    """No library progress bars in this process or its children (tqdm's own ``TQDM_DISABLE``), unless the user
    set it.  tqdm reads it when imported, so this runs first thing in a command, before any library loads."""
    os.environ.setdefault("TQDM_DISABLE", "1")


@contextmanager
def library_output_to_log() -> Iterator[_Counter]:
    """Within the block: warnings and library log records of level WARNING and up go to the log file;
    yields a counter of how many did."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:  # an unwritable home must not stop a benchmark: keep the library output where it was
        handler = logging.NullHandler()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    counter = _Counter()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.addHandler(counter)
    root.setLevel(min(previous_level, logging.WARNING) if previous_level else logging.WARNING)
    logging.captureWarnings(True)
    stream_emit = logging.StreamHandler.emit

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream in (sys.stderr, sys.__stderr__) and record.levelno >= logging.WARNING:
            handler.handle(record)  # a library's own terminal handler: to the log, counted
            counter.handle(record)
        elif self.stream not in (sys.stderr, sys.__stderr__):
            stream_emit(self, record)
        # below WARNING on the terminal: dropped, as the root logger's level would have

    logging.StreamHandler.emit = emit
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # each distinct warning once, as Python shows them by default
        try:
            yield counter
        finally:
            logging.StreamHandler.emit = stream_emit
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.removeHandler(counter)
            root.setLevel(previous_level)
            handler.close()


@contextmanager
def native_output_to_log() -> Iterator[None]:
    """Within the block, everything written to stdout and stderr, by native code through file descriptors 1 and 2
    and by Python's print, goes to the log file.  Only around library calls: a message of the harness's own
    printed inside would go there too.  Without a writable log file, output stays where it was."""
    try:
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "ab")
    except OSError:
        yield
        return
    streams = sys.stdout, sys.stderr
    for stream in streams:
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    text = open(log.fileno(), "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    try:
        for fd in saved:
            os.dup2(log.fileno(), fd)
        sys.stdout = sys.stderr = text
        yield
    finally:
        text.flush()
        _flush_c_stdio()  # printf output still in C's buffer belongs to the log, not to the terminal later
        sys.stdout, sys.stderr = streams
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        text.close()
        log.close()


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to ask (not on Linux or macOS): nothing buffered there
        pass
