"""Store and output faults, text encodings, corpora that are not what they claim, and output integrity:
each ends in one actionable line and exit 2 (or safe output), never a traceback.  The CLI's main() runs
in-process; the hostile table (tests/hostile/cases.py) drives the same faults through a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


# -- encodings: one text reader for every text file (harness/textfile.py) ------------------------------------

def _latin1_manifest(root: Path) -> Path:
    (root / "manifest.jsonl").write_bytes(
        b'{"id": "u1", "audio": "a.wav", "text": "hello", "duration_s": 1}\n'
        b'{"id": "u2", "audio": "b.wav", "text": "caf\xe9", "duration_s": 1}\n')
    return root / "manifest.jsonl"


def _kaldi(root: Path) -> Path:
    (root / "k").mkdir()
    (root / "k" / "wav.scp").write_text("u1 a.wav\nu2 b.wav\n")
    (root / "k" / "text").write_bytes(b"u1 hello\nu2 caf\xe9\n")
    return root / "k"


def _librispeech(root: Path) -> Path:
    chapter = root / "ls" / "1" / "2"
    chapter.mkdir(parents=True)
    (chapter / "1-2.trans.txt").write_bytes(b"1-2-0001 HELLO\n1-2-0002 CAF\xc9\n")
    return root / "ls"


# Before the shared reader these raised UnicodeDecodeError tracebacks (read_text(encoding="utf-8")).
@pytest.mark.parametrize("argv, named", [
    (lambda r: ["corpus", "check", _latin1_manifest(r)], "manifest.jsonl:2:"),
    (lambda r: ["corpus", "import", "jsonl", _latin1_manifest(r), "-o", r / "out"], "manifest.jsonl:2:"),
    (lambda r: ["corpus", "import", "kaldi", _kaldi(r)], "text:2:"),
    (lambda r: ["corpus", "import", "librispeech", _librispeech(r)], "1-2.trans.txt:2:"),
], ids=["manifest", "jsonl import", "kaldi text", "librispeech trans.txt"])
def test_text_that_is_not_utf8_names_the_file_and_line(tmp_path, capsys, argv, named):
    code, _, err = run_main(capsys, *argv(tmp_path))
    assert code == 2
    assert named in err and ("0xe9" in err or "0xc9" in err) and "iconv" in err, err
