"""Inputs that cannot hurt: the build cache deletes only what it wrote; one YAML loader with limits; one
validation for numbers; read-only commands create nothing.  (The end-to-end rows are in tests/hostile/.)"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.store.builds import BuildCache


# -- the build cache deletes only what it wrote ---------------------------------------------------------------

def _build(folder: Path, name: str, data: bytes = b"model bytes") -> SimpleNamespace:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return SimpleNamespace(path=path, sha256=sha, companions={}, manifest_dict=lambda: {"model": name, "sha256": sha})


def test_prune_leaves_a_users_folders_and_files_beside_the_database(tmp_path):
    # Catches: prune removing every name that is not a kept sha256 (the user's exported models went).
    cache = BuildCache(tmp_path / "whisper.db")
    mine = cache.root / "my-exported-models"
    (mine / "model.onnx").parent.mkdir(parents=True)
    (mine / "model.onnx").write_bytes(b"precious")
    (cache.root / "notes.txt").write_text("precious too")
    (cache.root / ("ab" * 32 + ".txt")).write_text("a sha256 with a suffix the cache never writes")
    kept = cache.keep(_build(tmp_path / "b", "kept.pte", b"kept"))
    old = cache.keep(_build(tmp_path / "b", "old.pte", b"old"))
    stale = cache.root / ("cd" * 32 + ".partial")
    stale.mkdir()
    assert cache.prune({kept.parent.name}) == 2
    assert not old.parent.exists() and not stale.exists(), "an unused build (or a stale .partial) stayed"
    assert kept.exists()
    assert (mine / "model.onnx").read_bytes() == b"precious"
    assert (cache.root / "notes.txt").exists() and (cache.root / ("ab" * 32 + ".txt")).exists()


def test_the_same_bytes_under_two_names_are_kept_once(tmp_path):
    # Catches: the second name's copy renamed onto the first's folder ("Directory not empty", a .partial left).
    cache = BuildCache(tmp_path / "h.db")
    first = cache.keep(_build(tmp_path / "b", "a.pte"))
    second = cache.keep(_build(tmp_path / "b", "renamed.pte"))
    assert second == first and first.read_bytes() == b"model bytes"
    assert [p.name for p in cache.root.iterdir()] == [first.parent.name], "a .partial folder was left"
