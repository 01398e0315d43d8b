"""Reference builds made from installed packages, never from a model hub.

Each recipe writes a model file and its manifest.  A build is cached: it is redone
only when its fingerprint (recipe version, source identity, toolchain versions)
differs from the one recorded in the existing manifest.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from harness.artifacts.manifest import sha256_of
from harness.errors import UserError


@dataclass(frozen=True)
class Recipe:
    name: str  # also the file stem
    suffix: str  # ".onnx" | ".pte"
    version: int  # bump when the recipe's output would change
    packages: tuple[str, ...]  # their versions enter the fingerprint
    build: Callable[[Path], dict]  # writes the file, returns the manifest fields it knows


@dataclass(frozen=True)
class BuildResult:
    name: str
    path: Path
    size_bytes: int
    build_s: float
    cached: bool

    def as_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def _versions(packages: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            raise UserError(f"the reference build needs the Python package '{pkg}', which is not installed.",
                            fix=f"pip install {pkg} (or run 'make demo', which installs everything).") from None
    return out


def _recipes() -> list[Recipe]:
    from harness.zoo import recipes

    return recipes.RECIPES


def build_all(out_dir: Path, only: list[str] | None = None, force: bool = False,
              log: Callable[[str], None] = lambda m: None) -> list[BuildResult]:
    """Build every recipe (or ``only`` those) into ``out_dir``; return what was built or reused."""
    recipes = _recipes()
    names = [r.name for r in recipes]
    for name in only or []:
        if name not in names:
            raise UserError(f"no reference build named '{name}'.", fix=f"choose from: {', '.join(names)}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for recipe in recipes:
        if only and recipe.name not in only:
            continue
        target = out_dir / f"{recipe.name}{recipe.suffix}"
        manifest_path = target.with_name(target.name + ".manifest.json")
        fingerprint = {"recipe": recipe.name, "recipe_version": recipe.version, **_versions(recipe.packages)}
        if not force and target.exists() and manifest_path.exists():
            old = json.loads(manifest_path.read_text())
            if old.get("recipe", {}).get("fingerprint") == fingerprint and old.get("sha256") == sha256_of(target):
                log(f"cached  {target}")
                results.append(BuildResult(recipe.name, target, target.stat().st_size, 0.0, True))
                continue
        log(f"build   {target} …")
        started = time.perf_counter()
        fields = recipe.build(target)
        build_s = time.perf_counter() - started
        recipe_info = {**fields.pop("recipe", {}), "fingerprint": fingerprint, "build_s": round(build_s, 2)}
        manifest = {**fields, "format": recipe.suffix[1:], "sha256": sha256_of(target),
                    "size_bytes": target.stat().st_size, "recipe": recipe_info}
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        log(f"built   {target} ({target.stat().st_size / 1e6:.1f} MB in {build_s:.1f} s)")
        results.append(BuildResult(recipe.name, target, target.stat().st_size, build_s, False))
    return results
