"""The tests' build cache (tests/conftest.py) prunes only its own entries, and only those unused for a month."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import tests.conftest as conftest


def test_the_prune_removes_only_the_caches_own_old_entries(tmp_path, monkeypatch):
    # Catches: a prune that removed whatever is old in the folder (a user's file there), or the entries a session
    # just used (their mtime is refreshed on use), or that ran in every xdist worker.
    monkeypatch.setattr(conftest, "BUILD_CACHE", tmp_path)
    old = time.time() - (conftest.PRUNE_AFTER_DAYS + 1) * 86400
    ours_old = [tmp_path / "asr-0123456789abcdef", tmp_path / "kws-0123456789abcdef"]
    for folder in ours_old:
        (folder / "x.onnx").parent.mkdir()
        (folder / "x.onnx").write_text("build")
    files_old = [tmp_path / "hostile-linear8-0123456789abcdef.pte", tmp_path / "asr-0123456789abcdef.lock",
                 tmp_path / "hostile-linear8-0123456789abcdef.4242.partial"]
    for path in files_old:
        path.write_text("x")
    ours_fresh = tmp_path / "models-fedcba9876543210"
    ours_fresh.mkdir()
    foreign = [tmp_path / "notes.txt", tmp_path / "asr", tmp_path / "asr-0123"]  # not a name the tests make
    foreign[0].write_text("mine")
    foreign[1].mkdir()
    foreign[2].mkdir()
    for path in [*ours_old, *files_old, *foreign]:
        os.utime(path, (old, old))

    conftest.pytest_sessionstart(SimpleNamespace(config=SimpleNamespace(workerinput={})))  # an xdist worker
    assert all(path.exists() for path in [*ours_old, *files_old])
    conftest.pytest_sessionstart(SimpleNamespace(config=SimpleNamespace()))
    assert not any(path.exists() for path in [*ours_old, *files_old])
    assert ours_fresh.is_dir() and all(path.exists() for path in foreign)
