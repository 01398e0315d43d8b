"""Every file the harness writes for a user (report and site pages, compare output, CSV/Parquet/ET exports,
JUnit, nightly.json, corpus manifests) is written whole or not at all: to a temporary file in the same folder,
flushed to disk, then renamed over the old one (a symlink at the path is refused: the file it points to is never
overwritten).  A full disk, a file-size limit or a crash mid-write leaves the
previous file as it was (and no temporary behind).  One rule, in this module.

Two kinds of path are never renamed over: a device or a FIFO (``-o /dev/null`` or a named pipe is written through,
as a shell's ``>`` would; renaming over it would replace the system's /dev/null with a file; a FIFO nothing reads
is refused, not waited on forever), and a SQLite
database or its write-ahead log (``-o`` naming the results database, directly or through a link, would have
replaced every stored run with a CSV).
"""

from __future__ import annotations

import errno
import os
import stat
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
    """What is written: ``path`` itself.  A symlink there is refused, not followed: the file it points to may be
    anywhere (a user's file far outside the output's folder was overwritten through one), and replacing the link
    would delete something the harness did not make.  Only a link to a device or FIFO is followed (``-o`` a
    link to /dev/null is written through)."""
    if path.is_symlink():
        real = Path(os.path.realpath(path))
        if _written_through(real):
            return real
        if _is_sqlite(real):  # the more useful of the two refusals: what the link leads to
            raise OutputError(errno.EEXIST, "it is a SQLite database (the results database?), which an output "
                                            "never replaces", str(path))
        raise OutputError(errno.EEXIST, f"it is a symbolic link (to {real}), and an output is never written "
                                        "through a link nor put in its place", str(path))
    return path


# The first bytes of a SQLite database file and of its write-ahead log (sqlite.org/fileformat2.html).
SQLITE_MAGIC = (b"SQLite format 3\0", bytes.fromhex("377f0682"), bytes.fromhex("377f0683"))


def _is_sqlite(target: Path) -> bool:
    try:
        with open(target, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return head.startswith(SQLITE_MAGIC)


def _written_through(target: Path) -> bool:
    """True for an existing device or FIFO: written in place, never renamed over."""
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)


def _refuse_readerless_fifo(target: Path, path: Path) -> None:
    """A named pipe nobody reads would block the write forever (a nightly hung at its last step): say so."""
    if not stat.S_ISFIFO(os.stat(target).st_mode):
        return
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputError(errno.ENXIO, "it is a named pipe (FIFO) that nothing reads, so writing would wait "
                                           "forever; start its reader first", str(path)) from None
        raise


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a path (pandas, ElementTree); once the
    block ends without an error it replaces ``path``.  A device or FIFO is yielded itself (written through).
    Any OSError (here or in the block) is an OutputError naming ``path``; a SQLite database is refused.  If it
    fails, the folders it made for ``path`` are removed again (a full disk leaves no empty new folder)."""
    made = make_folders(path.parent)
    try:
        with _replacing_in(path) as temp:
            yield temp
    except BaseException:
        remove_empty(made)
        raise


@contextmanager
def _replacing_in(path: Path) -> Iterator[Path]:
    """replacing, once ``path``'s folder exists."""
    try:
        target = _target(path)
        if _written_through(target):
            _refuse_readerless_fifo(target, path)
            yield target
            return
        if _is_sqlite(target):
            raise OutputError(errno.EEXIST, "it is a SQLite database (the results database?), which an output "
                                            "never replaces", str(path))
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    except OutputError:
        raise
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


def make_folders(path: Path) -> list[Path]:
    """make_folder, returning the folders it made, outermost first: what a failed output takes back (see
    remove_empty).  A folder someone else makes meanwhile is theirs, and not in the list."""
    chain = [path, *path.parents]
    missing = chain[:next((i for i, folder in enumerate(chain) if folder.is_dir()), len(chain))]
    made: list[Path] = []
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue  # made meanwhile, or a file there: make_folder below says which
            made.append(folder)
        make_folder(path)
    except OSError as exc:
        remove_empty(made)
        raise exc if isinstance(exc, OutputError) else _naming(exc, path) from None
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (made by this command, outermost first) innermost first, each only while it is empty:
    a file put there meanwhile, by anyone, keeps its folder."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


def write_text(path: Path, text: str) -> Path:
    """``path`` replaced by ``text`` (UTF-8), whole or not at all."""
    with replacing(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return path


class MadeHere:
    """What one command makes for its output (folders and files that were not there), so that a failure part
    way (a full disk) takes back exactly that: no empty or half-filled new folder is left, and nothing that was
    there before is removed.  Use through :func:`undone_on_failure`."""

    def __init__(self) -> None:
        self._made: list[Path] = []  # oldest first

    def folder(self, path: Path) -> Path:
        """``path`` and its missing parents (make_folder), each one this command made noted."""
        self._made += make_folders(path)
        return path

    def text(self, path: Path, text: str) -> Path:
        """write_text, noting ``path`` when it is a new file."""
        new = not os.path.lexists(path)
        write_text(path, text)
        if new:
            self._made.append(path)
        return path

    def undo(self) -> None:
        """Remove what this command made, newest first; a folder only while empty (someone else may have put a
        file of theirs into it meanwhile)."""
        for path in reversed(self._made):
            try:
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()  # kept unless empty
                else:
                    path.unlink()
            except OSError:
                pass  # kept: not empty, or already gone
        self._made.clear()


@contextmanager
def undone_on_failure() -> Iterator[MadeHere]:
    """A :class:`MadeHere` whose output is taken back if the block fails (and kept when it ends well)."""
    made = MadeHere()
    try:
        yield made
    except BaseException:
        made.undo()
        raise
