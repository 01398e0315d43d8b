"""Kept builds take their space once: by content, hard-linked where the bytes already are (harness.store.builds)."""

from __future__ import annotations

import hashlib
import os
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


def test_a_build_kept_on_two_nights_is_on_disk_once(tmp_path):
    """Catches a kept build copied (738 MB of copies after `make demo`): the kept file is the build's own inode,
    and keeping it again (tomorrow's run of the same bytes) adds no file."""
    cache = BuildCache(tmp_path / "reports" / "harness.db")
    build = _build(tmp_path / "builds", "tiny.pte", b"x" * 4096)
    kept = cache.keep(build)
    again = cache.keep(build)
    assert again == kept and kept.read_bytes() == build.path.read_bytes()
    assert kept.stat().st_ino == build.path.stat().st_ino
    # Three names for one inode: the build, its object, the kept build's file; nothing else holds the bytes.
    assert build.path.stat().st_nlink == 3
    stored = [f for f in cache.root.rglob("*") if f.is_file() and f.read_bytes() == build.path.read_bytes()]
    assert {f.stat().st_ino for f in stored} == {build.path.stat().st_ino}


def test_a_companion_shared_by_two_builds_is_kept_once(tmp_path):
    """Catches companions copied into every kept build (a tokenizer beside each LLM build)."""
    cache = BuildCache(tmp_path / "h.db")
    builds = tmp_path / "builds"
    builds.mkdir()
    tokenizer = builds / "tokenizer.json"
    tokenizer.write_text('{"vocab": {}}')
    first = cache.keep(_build(builds, "llm-a.pte", b"a", {"tokenizer": tokenizer}))
    second = cache.keep(_build(builds, "llm-b.pte", b"b", {"tokenizer": tokenizer}))
    inodes = {(folder / "tokenizer.json").stat().st_ino for folder in (first.parent, second.parent)}
    assert inodes == {tokenizer.stat().st_ino}


def test_a_build_on_another_filesystem_is_copied_and_kept(tmp_path, monkeypatch):
    """Catches a hard link attempted across filesystems and left failing (EXDEV): the build is copied into the
    store instead, and two nights of it still share that one copy.  /dev/shm (tmpfs) where it is a filesystem
    of its own; elsewhere the link is refused as the kernel would refuse it."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shm.stat().st_dev != tmp_path.stat().st_dev:
        elsewhere = Path(tempfile.mkdtemp(dir=shm, prefix="harness-test-"))
    else:
        elsewhere = tmp_path / "other-fs"
        real_link = os.link
        monkeypatch.setattr(os, "link", lambda src, dst, **kw: (_ for _ in ()).throw(OSError(18, "cross-device"))
                            if str(elsewhere) in str(src) else real_link(src, dst, **kw))
    try:
        cache = BuildCache(tmp_path / "h.db")
        build = _build(elsewhere, "tiny.pte", b"y" * 1000)
        kept = cache.keep(build)
        assert kept.read_bytes() == build.path.read_bytes() and kept.stat().st_ino != build.path.stat().st_ino
        object_file = cache.root / OBJECTS / build.sha256
        assert object_file.stat().st_ino == kept.stat().st_ino  # the copy is the object; the kept file links it
        build.path.unlink()  # the build folder may go; the kept bytes stay
        assert kept.read_bytes() == b"y" * 1000
    finally:
        if elsewhere.parent == shm:
            import shutil

            shutil.rmtree(elsewhere, ignore_errors=True)


def _pte(tag: bytes) -> bytes:
    """Bytes the harness reads as a .pte: a flatbuffer root offset, ExecuTorch's 'ET12' identifier."""
    return (16).to_bytes(4, "little") + b"ET12" + tag.ljust(56, b"\0")


def test_a_build_rewritten_in_place_is_not_loaded_as_the_kept_bytes(tmp_path):
    """A kept build shares its inode with the build: `cp new.pte tiny.pte` rewrites both.  Catches the rewritten
    bytes loaded as last night's (tonight's build 'compared' with itself, or a manifest-mismatch error ending
    the night) and reused when those old bytes are kept again."""
    cache = BuildCache(tmp_path / "h.db")
    night_1 = _build(tmp_path / "builds", "tiny.pte", _pte(b"night 1"))
    cache.keep(night_1)
    assert cache.load(night_1.sha256).sha256 == night_1.sha256
    with night_1.path.open("r+b") as fh:  # what cp does to an existing file: the same inode, new bytes
        fh.truncate(0)
        fh.write(_pte(b"night 2"))
    assert cache.load(night_1.sha256) is None
    restored = _build(tmp_path / "elsewhere", "tiny.pte", _pte(b"night 1"))
    kept = cache.keep(SimpleNamespace(**{**vars(restored), "sha256": "0" * 63 + "1"}))  # a new folder, same bytes
    assert kept.read_bytes() == _pte(b"night 1"), "the object rewritten in place was linked again"


def test_prune_removes_the_objects_no_kept_build_uses(tmp_path):
    """Catches objects left behind by pruned builds (the store growing forever) or one still in use removed."""
    cache = BuildCache(tmp_path / "h.db")
    old = cache.keep(_build(tmp_path / "builds", "old.pte", b"old"))
    new = cache.keep(_build(tmp_path / "builds", "new.pte", b"new"))
    assert cache.prune({new.parent.name}) == 1
    objects = sorted(p.name for p in (cache.root / OBJECTS).iterdir() if not p.name.startswith("."))
    assert objects == [hashlib.sha256(b"new").hexdigest()] and new.read_bytes() == b"new"
    assert not old.parent.exists() and (tmp_path / "builds" / "old.pte").read_bytes() == b"old"
