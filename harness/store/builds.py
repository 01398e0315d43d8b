"""Copies of measured builds, by content, beside the results database.

A nightly compares tonight's build with last night's.  When the bytes changed, the most
trustworthy comparison measures both in the same night, alternately in the same rounds:
whatever the machine did that night (a busy neighbour, a warm lab) falls on both and
cancels in a paired test.  By then the build folder holds only tonight's bytes, so the
store keeps a copy of every build it measured, under its sha256, with the manifest it
was measured under (and its companions).  Copies not used by a plan's recent runs are
pruned.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from harness.validation import strict_json

KEEP_RUNS = 3  # per plan: the builds of its newest complete runs stay
# The only names the cache ever writes (a sha256, or one being copied in): anything else in its folder is
# someone else's and is never deleted.
_OWNED = re.compile(r"([0-9a-f]{64})(\.partial)?")
# Written into each folder the cache makes, first: a folder with such a name but no marker is someone else's.
MARKER = ".harness-build-cache"


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
        copy = shutil.copytree if artifact.path.is_dir() else shutil.copy2
        copy(artifact.path, partial / artifact.path.name)
        for companion in artifact.companions.values():
            (shutil.copytree if companion.is_dir() else shutil.copy2)(companion, partial / companion.name)
        manifest = {k: v for k, v in artifact.manifest_dict().items() if v is not None}
        (partial / f"{artifact.path.name}.manifest.json").write_text(strict_json(manifest, indent=1))
        try:
            partial.rename(final)  # whole or not at all: a crash mid-copy leaves only a .partial
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(partial, ignore_errors=True)  # another harness kept the same bytes first
        return self._model_in(final) or final / artifact.path.name

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
        return load_artifact(model) if model else None

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
        return gone

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
