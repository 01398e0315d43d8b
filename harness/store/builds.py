"""Copies of measured builds, by content, beside the results database.

A nightly compares tonight's build with last night's.  When the bytes changed, the most
trustworthy comparison measures both in the same night, alternately in the same rounds:
whatever the machine did that night (a busy neighbour, a warm lab) falls on both and
cancels in a paired test.  By then the build folder holds only tonight's bytes, so the
store keeps every build it measured, under its sha256, with the manifest it was measured
under (and its companions).  Builds not used by a plan's recent runs are pruned.

The store keeps each file once: by the sha256 of its content in ``objects/``, and every kept build's files
are hard links to those objects, so a companion shared by several builds (a tokenizer beside each LLM
build, a Whisper processor) takes its space once, however many builds and nights use it.

An object is a copy of the build's file (a copy-on-write clone where the filesystem makes them: Btrfs, XFS),
never a hard link to it: exporters write a build in place (``open(path, "wb")``, ``onnx.save``, ``cp`` over
it), which would rewrite last night's kept bytes with tonight's, the very bytes a same-night comparison
re-measures.  A kept build whose bytes no longer match its sha256 (damaged on disk) is not loaded.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from harness.errors import UserError
from harness.validation import strict_json

KEEP_RUNS = 3  # per plan: the builds of its newest complete runs stay
# The only names the cache ever writes (a sha256, or one being copied in): anything else in its folder is
# someone else's and is never deleted.
_OWNED = re.compile(r"([0-9a-f]{64})(\.partial)?")
# Written into each folder the cache makes, first: a folder with such a name but no marker is someone else's.
MARKER = ".harness-build-cache"
OBJECTS = "objects"  # the kept files, each named by the sha256 of its bytes


class BuildCache:
    def __init__(self, db_path: Path) -> None:
        self.root = db_path.parent / f"{db_path.stem}-builds"

    def keep(self, artifact) -> Path:
        """Copy ``artifact`` in (once per sha256); return the copy's path."""
        final = self.root / artifact.sha256
        if final.is_dir():  # these bytes are kept already, perhaps under another name
            return self._model_in(final) or final / artifact.path.name
        partial = self.root / f"{artifact.sha256}.partial"
        if self._wrote(partial):  # a copy a crash left half made
            shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        (partial / MARKER).write_text(f"{artifact.sha256}\n")
        for source in [artifact.path, *artifact.companions.values()]:
            self._place(source, partial / source.name)
        manifest = {k: v for k, v in artifact.manifest_dict().items() if v is not None}
        (partial / f"{artifact.path.name}.manifest.json").write_text(strict_json(manifest, indent=1))
        try:
            partial.rename(final)  # whole or not at all: a crash mid-copy leaves only a .partial
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(partial, ignore_errors=True)  # another harness kept the same bytes first
        return self._model_in(final) or final / artifact.path.name

    def _place(self, source: Path, target: Path) -> None:
        """``source`` (a file, or a folder of them) at ``target``, every file a link to its object."""
        if source.is_dir():
            target.mkdir()
            for child in sorted(source.iterdir()):
                self._place(child, target / child.name)
        else:
            _link_or_copy(self._object(source), target)

    def _object(self, source: Path) -> Path:
        """The stored file with ``source``'s bytes, copied in when there is none."""
        from harness.artifacts.manifest import sha256_of

        digest = sha256_of(source)
        stored = self.root / OBJECTS / digest
        if stored.is_file():
            return stored
        if not (stored.parent / MARKER).is_file():
            stored.parent.mkdir(parents=True, exist_ok=True)
            (stored.parent / MARKER).write_text("files of kept builds, by sha256\n")
        partial = stored.with_name(f"{digest}.partial")
        partial.unlink(missing_ok=True)
        _clone_or_copy(source, partial)
        partial.replace(stored)
        return stored

    @staticmethod
    def _model_in(folder: Path) -> Path | None:
        """The model file (or folder) in a kept build's folder: the one with a manifest beside it."""
        models = sorted(p for p in folder.iterdir() if not p.name.endswith(".manifest.json") and p.name != MARKER
                        and (p.parent / f"{p.name}.manifest.json").exists())
        return models[0] if models else None

    def load(self, sha256: str):
        """The cached build as an Artifact, or None when it is not (or no longer) here."""
        from harness.artifacts import load_artifact

        folder = self.root / sha256
        if not folder.is_dir():
            return None
        model = self._model_in(folder)
        if model is None:
            return None
        try:
            artifact = load_artifact(model)
        except UserError:  # its bytes no longer match its manifest's sha256: not the build that was kept
            return None
        return artifact if artifact.sha256 == sha256 else None

    def prune(self, keep: set[str]) -> int:
        """Remove every cached build whose sha256 is not in ``keep``; return how many went.  Only names the
        cache wrote are candidates: a user's folder beside the database is never touched, whatever its name."""
        if not self.root.is_dir():
            return 0
        gone = 0
        for folder in self.root.iterdir():
            owned = _OWNED.fullmatch(folder.name)
            if owned and owned.group(1) not in keep and self._wrote(folder):
                shutil.rmtree(folder, ignore_errors=True)
                gone += 1
        self._prune_objects()
        return gone

    def _prune_objects(self) -> None:
        """Remove every object no kept build links to any more (only in the folder the cache made)."""
        objects = self.root / OBJECTS
        if not (objects / MARKER).is_file():
            return
        linked = {(f.stat().st_dev, f.stat().st_ino) for folder in self.root.iterdir()
                  if _OWNED.fullmatch(folder.name) and folder.is_dir() and not folder.is_symlink()
                  for f in folder.rglob("*") if f.is_file() and not f.is_symlink()}
        for stored in objects.iterdir():  # not a .partial: another harness may be storing it now
            if re.fullmatch("[0-9a-f]{64}", stored.name) and stored.is_file() and not stored.is_symlink():
                if (stored.stat().st_dev, stored.stat().st_ino) not in linked:
                    stored.unlink()

    def _wrote(self, folder: Path) -> bool:
        """Whether the cache made ``folder``: its marker is inside, or (a copy kept before the marker) the model
        beside its manifest has the sha256 the folder is named after."""
        owned = _OWNED.fullmatch(folder.name)
        if not owned or folder.is_symlink() or not folder.is_dir():
            return False
        if (folder / MARKER).is_file():
            return True
        from harness.artifacts.manifest import sha256_of

        model = self._model_in(folder)
        return model is not None and not model.is_symlink() and sha256_of(model) == owned.group(1)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the filesystem has them, a copy otherwise (inside the store: one filesystem)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int), a copy-on-write clone of a whole file


def _clone_or_copy(source: Path, target: Path) -> None:
    """A copy-on-write clone where the filesystem makes them (no bytes written until one side changes), a copy
    otherwise (another filesystem, ext4, tmpfs)."""
    import fcntl

    try:
        with source.open("rb") as src, target.open("wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        shutil.copystat(source, target)
    except OSError:
        target.unlink(missing_ok=True)
        shutil.copy2(source, target)
