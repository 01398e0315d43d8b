"""Builds and corpora travel to the controller node that measures them.

The driver names every file its cells read (builds, their companions, chain parts, corpus
manifests and audio) with its sha256; a node that lacks a file fetches it from the driver
in chunks and keeps it in a cache keyed by sha256, so a build pushed to ten phones on one
node crosses the network once, and a node on the driver's own host (or sharing its
filesystem) copies nothing.  The driver serves only the files it listed: a node cannot
ask it for anything else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from harness.artifacts.manifest import sha256_of, size_of
from harness.plan import CellSpec

CHUNK_BYTES = 16 << 20  # small enough to pass through Ray's object store without fuss


@dataclass(frozen=True)
class FileRef:
    """A driver-side file, or a folder build (a Core ML package) with the relative names of its files."""

    sha256: str
    size_bytes: int
    members: tuple[str, ...] = ()  # a folder's files, relative to it; empty for a file


def _artifacts(spec: CellSpec) -> list:
    return [spec.artifact] + (list(spec.chain.parts.values()) if spec.chain else [])


def files_of(spec: CellSpec) -> list[Path]:
    """Every controller-side file (or folder build) a cell reads."""
    arts = _artifacts(spec)
    paths = [a.path for a in arts] + [p for a in arts for p in a.companions.values()]
    if spec.chain is not None:
        from harness.accuracy.corpus import read_manifest

        corpus = read_manifest(spec.chain.corpus)
        paths.append(corpus.manifest)
        paths += [corpus.audio_path(u) for u in corpus.utterances[: spec.chain.limit or None]]
    return paths


def catalogue(specs: list[CellSpec]) -> dict[str, FileRef]:
    """str(path) -> its sha256 and size, for every file the cells read (artifacts' known sha256 reused); a
    folder is listed with its members, and each member as a file of its own (what the driver serves)."""
    known = {str(a.path): a.sha256 for s in specs for a in _artifacts(s)}
    out: dict[str, FileRef] = {}
    for spec in specs:
        for path in files_of(spec):
            key = str(path)
            if key in out:
                continue
            members = tuple(str(p.relative_to(path)) for p in sorted(path.rglob("*")) if p.is_file()) \
                if path.is_dir() else ()
            out[key] = FileRef(known.get(key) or sha256_of(path), size_of(path), members)
            for name in members:
                out.setdefault(str(path / name), FileRef(sha256_of(path / name), (path / name).stat().st_size))
    return out


class FileServer:
    """Driver side: serves chunks of the catalogued files, and only those."""

    def __init__(self, files: dict[str, FileRef]) -> None:
        self.files = files

    def read(self, path: str, offset: int) -> bytes:
        if path not in self.files or self.files[path].members:
            raise PermissionError(f"{path} is not a file of this run")
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(CHUNK_BYTES)


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_LAB_CACHE", Path.home() / ".cache" / "harness" / "lab"))


def fetch(path: str, files: dict[str, FileRef], read: Callable[[str, int], bytes], cache: Path) -> Path:
    """A node-local copy of the driver's ``path``: the file (or folder) itself when it is here with the same
    bytes, else the cached copy (fetched once, checked against its sha256, renamed into place only when whole)."""
    ref, here = files[path], Path(path)
    if here.exists() and size_of(here) == ref.size_bytes and sha256_of(here) == ref.sha256:
        return here
    target = cache / ref.sha256[:2] / ref.sha256 / here.name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    if ref.members:  # a folder: each member fetched (and checked) on its own, then the folder checked whole
        try:
            for name in ref.members:
                (partial / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(fetch(str(here / name), files, read, cache), partial / name)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        got = sha256_of(partial)
    else:
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            while chunk := read(path, out.tell()):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
    if got != ref.sha256:
        shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
        raise OSError(f"{path} arrived with sha256 {got[:12]}, not {ref.sha256[:12]}: "
                      "the file changed on the driver during the run")
    partial.replace(target)
    return target


def localize(spec: CellSpec, files: dict[str, FileRef], read: Callable[[str, int], bytes],
             cache: Path | None = None) -> CellSpec:
    """The same cell with every path pointing at a node-local copy."""
    cache = cache or cache_dir()

    def here(path: Path) -> Path:
        return fetch(str(path), files, read, cache)

    def artifact(a):
        return replace(a, path=here(a.path), companions={k: here(p) for k, p in a.companions.items()})

    chain = spec.chain
    if chain is not None:
        chain = replace(chain, parts={role: artifact(a) for role, a in chain.parts.items()},
                        corpus=_corpus(chain, files, here, cache))
    return replace(spec, artifact=artifact(spec.artifact), chain=chain)


def _corpus(chain, files: dict[str, FileRef], here: Callable[[Path], Path], cache: Path) -> Path:
    """A node-local corpus folder laid out as the driver's (audio paths in the manifest are relative)."""
    from harness.accuracy.corpus import read_manifest

    driver_manifest = chain.corpus / "manifest.jsonl" if str(chain.corpus) not in files else chain.corpus
    manifest = here(driver_manifest)
    if manifest == driver_manifest:
        return chain.corpus  # the driver's own files are here
    corpus = read_manifest(manifest)
    root = cache / "corpora" / files[str(driver_manifest)].sha256
    for utt in corpus.utterances[: chain.limit or None]:
        local = root / utt.audio
        if not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(here(driver_manifest.parent / utt.audio).read_bytes())
    (root / driver_manifest.name).write_bytes(manifest.read_bytes())
    return root / driver_manifest.name
