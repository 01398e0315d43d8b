"""A store or output fault as one line that names the file and the fix (exit 2); None for a harness bug."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from harness.errors import UserError
from harness.outfile import OutputError
from harness.stdio import STDOUT_NAME

# What a user can do about a file the harness could not write (or read): by errno.
OS_FIXES = {
    errno.EROFS: "choose a place on a writable disk (or remount it read-write).",
    errno.EACCES: "choose a place you may write to, or change its permissions.",
    errno.EPERM: "choose a place you may write to, or change its permissions.",
    errno.ENOSPC: "free space on that disk ('df -h'), or choose another disk.",
    errno.EDQUOT: "free space within your quota, or choose another disk.",
    errno.EFBIG: "raise the file-size limit ('ulimit -f'), or write to another place.",
    errno.EIO: "the disk reported an error: check it ('dmesg'), or write to another disk.",
    errno.EEXIST: "give a path that does not exist yet, or remove what is there.",
    errno.ENOTDIR: "a part of the path is a file, not a folder: give another path.",
    errno.EISDIR: "that is a folder: give a file name.",
    errno.ENAMETOOLONG: "give a shorter path.",
}


def fault(exc: BaseException, db: Path | None) -> UserError | None:
    """One actionable line for a store or output fault; None for what is a harness bug (it keeps its traceback)."""
    if isinstance(exc, sqlite3.Error):
        from harness.store.db import store_fault

        return store_fault(exc, db)
    if isinstance(exc, OutputError) and exc.filename == STDOUT_NAME:
        return UserError(f"cannot write to standard output ({exc.strerror or os.strerror(exc.errno)}); what was "
                         "measured is stored all the same.", path=exc.filename,
                         fix=OS_FIXES.get(exc.errno, "send standard output to a place that takes it."))
    if isinstance(exc, OutputError):  # names the output, not the database; its previous file is still there
        return UserError(f"cannot write this output ({exc.strerror or os.strerror(exc.errno)}); a file that was "
                         "there is unchanged, and nothing stored was lost.", path=exc.filename,
                         fix=OS_FIXES.get(exc.errno, "give -o a place on a disk you may write to."))
    if isinstance(exc, OSError) and exc.errno in OS_FIXES:
        return UserError(f"{exc.strerror or os.strerror(exc.errno)}; nothing stored was lost.",
                         path=exc.filename or db, fix=OS_FIXES[exc.errno])
    return None
