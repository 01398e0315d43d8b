"""Every file the harness writes for a user (report and site pages, compare output, CSV/Parquet/ET exports,
JUnit, nightly.json, corpus manifests) is written whole or not at all: to a temporary file in the same folder,
flushed to disk, then renamed over the old one.  A full disk, a file-size limit or a crash mid-write leaves the
previous file as it was (and no temporary behind).  One rule, in this module.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class OutputError(OSError):
    """An output file could not be written; ``filename`` is the output's path (not the database's), and the
    previous file at that path is unchanged."""


def _naming(exc: OSError, path: Path) -> OutputError:
    """``exc`` as an OutputError naming ``path`` (a library's own OSError may carry a message and no errno)."""
    return OutputError(exc.errno, exc.strerror or str(exc), str(path))


def _target(path: Path) -> Path:
    """The file a rename must replace: a symlink's target (the link stays a link), else ``path`` itself."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a path (pandas, ElementTree); once the
    block ends without an error it replaces ``path``.  Any OSError (here or in the block) is an OutputError
    naming ``path``."""
    make_folder(path.parent)
    try:
        target = _target(path)
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        yield temp
        with open(temp, "rb+") as written:  # on disk before the rename, or a crash could leave an empty file
            os.fsync(written.fileno())
        os.replace(temp, target)
    except OSError as exc:
        raise _naming(exc, path) from None
    finally:
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass  # a folder that refused the write may refuse this too: nothing was made there then


def make_folder(path: Path) -> Path:
    """An output folder (and its parents), or an OutputError naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _naming(exc, path) from None
    return path


def write_text(path: Path, text: str) -> Path:
    """``path`` replaced by ``text`` (UTF-8), whole or not at all."""
    with replacing(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return path
