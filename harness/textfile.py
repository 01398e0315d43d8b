"""Reading the text files users hand the harness (corpus manifests, Kaldi ``text``, LibriSpeech
``.trans.txt``, reference and hypothesis files): UTF-8 or one clear error naming the file, the line of
the first bad byte and how to convert it.  One rule for every text file the harness reads.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import UserError

UTF8_FIX = "save the file as UTF-8 (iconv -f latin1 -t utf-8 FILE, for a Latin-1 file)."


def decode_utf8(data: bytes, path: Path | str) -> str:
    """``data`` as UTF-8 (a leading byte-order mark dropped); a bad byte is a UserError with its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"byte 0x{data[exc.start]:02x} is not UTF-8.", path=path,
                        line=data[:exc.start].count(b"\n") + 1, fix=UTF8_FIX) from None


def read_utf8(path: Path) -> str:
    """The text of ``path``; unreadable (missing, a folder, no permission) or non-UTF-8 files are UserErrors."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError("file not found.", path=path, fix="check the path.") from None
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror}).", path=path,
                        fix="check the path and its permissions.") from None
    return decode_utf8(data, path)
