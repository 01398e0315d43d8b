"""Kept builds take their space once: by content, hard-linked where the bytes already are (harness.store.builds)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from types import SimpleNamespace

from harness.store.builds import OBJECTS, BuildCache


def _build(folder: Path, name: str, data: bytes, companions: dict[str, Path] | None = None) -> SimpleNamespace:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return SimpleNamespace(path=folder / name, sha256=sha, companions=companions or {},
                           manifest_dict=lambda: {"model": name, "sha256": sha})


def _inodes_holding(root: Path, data: bytes) -> set[int]:
    return {f.stat().st_ino for f in root.rglob("*") if f.is_file() and f.read_bytes() == data}


def test_a_build_kept_on_two_nights_is_in_the_store_once_and_never_linked_to_the_build(tmp_path):
    """Catches a second copy of the same bytes in the store, and the build itself hard-linked into it (an
    exporter rewriting the build in place would then rewrite the kept bytes: see the in-place test below)."""
    cache = BuildCache(tmp_path / "reports" / "harness.db")
    build = _build(tmp_path / "builds", "tiny.pte", b"x" * 4096)
    kept = cache.keep(build)
    again = cache.keep(build)
    assert again == kept and kept.read_bytes() == build.path.read_bytes()
    assert _inodes_holding(cache.root, b"x" * 4096) == {kept.stat().st_ino}
    assert kept.stat().st_nlink == 2 and (cache.root / OBJECTS / build.sha256).samefile(kept)
    assert build.path.stat().st_nlink == 1 and not kept.samefile(build.path)


def test_a_companion_shared_by_two_builds_is_kept_once(tmp_path):
    """Catches companions copied into every kept build (a tokenizer beside each LLM build)."""
    cache = BuildCache(tmp_path / "h.db")
    builds = tmp_path / "builds"
    builds.mkdir()
    tokenizer = builds / "tokenizer.json"
    tokenizer.write_text('{"vocab": {}}')
    first = cache.keep(_build(builds, "llm-a.pte", b"a", {"tokenizer": tokenizer}))
    second = cache.keep(_build(builds, "llm-b.pte", b"b", {"tokenizer": tokenizer}))
    assert (first.parent / "tokenizer.json").samefile(second.parent / "tokenizer.json")
    assert _inodes_holding(cache.root, b'{"vocab": {}}') == {(first.parent / "tokenizer.json").stat().st_ino}


def test_a_build_on_another_filesystem_is_kept(tmp_path):
    """A build on another filesystem than the database (/dev/shm, a tmpfs, where it is one of its own): copied
    into the store, and the build's folder may then go."""
    import shutil

    shm = Path("/dev/shm")
    other_fs = shm.is_dir() and shm.stat().st_dev != tmp_path.stat().st_dev
    elsewhere = Path(tempfile.mkdtemp(dir=shm, prefix="harness-test-")) if other_fs else tmp_path / "builds"
    try:
        cache = BuildCache(tmp_path / "h.db")
        build = _build(elsewhere, "tiny.pte", b"y" * 1000)
        kept = cache.keep(build)
        assert kept.read_bytes() == build.path.read_bytes() and not kept.samefile(build.path)
        shutil.rmtree(elsewhere)
        assert kept.read_bytes() == b"y" * 1000
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def _pte(tag: bytes) -> bytes:
    """Bytes the harness reads as a .pte: a flatbuffer root offset, ExecuTorch's 'ET12' identifier."""
    return (16).to_bytes(4, "little") + b"ET12" + tag.ljust(56, b"\0")


def test_last_nights_bytes_survive_the_build_rewritten_in_place(tmp_path):
    """Exporters write over a build in place (open(path, 'wb'), onnx.save, cp): catches a store that links the
    build itself, whose kept bytes (what tonight's same-night comparison re-measures) would become tonight's."""
    cache = BuildCache(tmp_path / "h.db")
    night_1 = _build(tmp_path / "builds", "tiny.pte", _pte(b"night 1"))
    cache.keep(night_1)
    with night_1.path.open("r+b") as fh:  # what cp does to an existing file: the same inode, new bytes
        fh.truncate(0)
        fh.write(_pte(b"night 2"))
    kept = cache.load(night_1.sha256)
    assert kept is not None and kept.sha256 == night_1.sha256 and kept.path.read_bytes() == _pte(b"night 1")


def test_a_kept_build_damaged_on_disk_is_not_loaded(tmp_path):
    """Catches damaged kept bytes loaded as last night's (or the manifest's sha256 mismatch ending the night)."""
    cache = BuildCache(tmp_path / "h.db")
    build = _build(tmp_path / "builds", "tiny.pte", _pte(b"night 1"))
    kept = cache.keep(build)
    kept.write_bytes(_pte(b"bit rot"))
    assert cache.load(build.sha256) is None


def test_prune_removes_the_objects_no_kept_build_uses(tmp_path):
    """Catches objects left behind by pruned builds (the store growing forever) or one still in use removed."""
    cache = BuildCache(tmp_path / "h.db")
    old = cache.keep(_build(tmp_path / "builds", "old.pte", b"old"))
    new = cache.keep(_build(tmp_path / "builds", "new.pte", b"new"))
    assert cache.prune({new.parent.name}) == 1
    objects = sorted(p.name for p in (cache.root / OBJECTS).iterdir() if not p.name.startswith("."))
    assert objects == [hashlib.sha256(b"new").hexdigest()] and new.read_bytes() == b"new"
    assert not old.parent.exists() and (tmp_path / "builds" / "old.pte").read_bytes() == b"old"
