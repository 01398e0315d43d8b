"""Reading the text files users hand the harness (corpus manifests, Kaldi ``text``, LibriSpeech
``.trans.txt``, reference and hypothesis files): UTF-8 or one clear error naming the file, the line of
the first bad byte and how to convert it.  One rule for every text file the harness reads.
"""

from __future__ import annotations

import stat
from pathlib import Path

from harness.errors import UserError

MAX_TEXT_BYTES = 256 << 20  # a transcript of ~2 million utterances; well beyond any corpus's text, far below RAM

UTF8_FIX = "save the file as UTF-8 (iconv -f latin1 -t utf-8 FILE, for a Latin-1 file)."


def decode_utf8(data: bytes, path: Path | str) -> str:
    """``data`` as UTF-8 (a leading byte-order mark dropped); a bad byte is a UserError with its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"byte 0x{data[exc.start]:02x} is not UTF-8.", path=path,
                        line=data[:exc.start].count(b"\n") + 1, fix=UTF8_FIX) from None


def read_bounded(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them, or a UserError.

    Devices and FIFOs are refused before opening (``/dev/zero`` never ends; a FIFO blocks the open), and
    the read stops one byte past the cap, so a huge or sparse file costs no more memory than the cap.
    """
    max_bytes = MAX_TEXT_BYTES if max_bytes is None else max_bytes
    check_regular(path, "text")
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if len(data) > max_bytes:
        raise UserError(f"larger than {max_bytes >> 20} MB; this is not a file the harness reads.", path=path,
                        fix=f"check the path; split the input into files under {max_bytes >> 20} MB.")
    return data


def check_regular(path: Path, what: str, folders: bool = False, fix: str | None = None) -> None:
    """Refuse, before anything opens it, a path that is not a regular file (or a folder, when ``folders``): a
    FIFO blocks the open forever and a device never ends.  ``what`` the harness reads there ('text', 'builds')."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if stat.S_ISREG(mode) or (folders and stat.S_ISDIR(mode)):
        return
    if stat.S_ISDIR(mode):
        raise UserError(f"a folder; the harness reads {what} from regular files only.", path=path,
                        fix=fix or "give the path of a file, not of the folder that holds it.")
    raise UserError(f"not a regular file (a device, FIFO or socket); the harness reads {what} from regular files "
                    "only.", path=path, fix=fix or "give the path of a file (copy a stream to a file first).")


def _unreadable(path: Path, exc: OSError) -> UserError:
    if isinstance(exc, FileNotFoundError):
        return UserError("file not found.", path=path, fix="check the path.")
    return UserError(f"cannot read the file ({exc.strerror}).", path=path, fix="check the path and its permissions.")


def read_utf8(path: Path) -> str:
    """The text of ``path``; unreadable (missing, a folder, a device, too large) or non-UTF-8 files are UserErrors."""
    return decode_utf8(read_bounded(path), path)
