"""Reference builds made from installed packages, never from a model hub.

Each recipe writes a model file and its manifest.  A build is cached: it is redone
only when its fingerprint (recipe version, source identity, toolchain versions)
differs from the one recorded in the existing manifest.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from harness.artifacts.manifest import sha256_of, size_of
from harness.errors import UserError


@dataclass(frozen=True)
class Recipe:
    name: str  # also the file stem
    suffix: str  # ".onnx" | ".pte"
    version: int  # bump when the recipe's output would change
    packages: tuple[str, ...]  # their versions enter the fingerprint
    build: Callable[[Path, dict[str, Path]], dict]  # (target, built deps by name) -> manifest fields it knows
    needs: tuple[str, ...] = ()  # recipes whose outputs this one derives from
    data: tuple[Path, ...] = ()  # other files the build reads (e.g. calibration audio checksums)


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


# The modules whose code shapes a build's bytes (relative to harness/); zoo/validate.py is deliberately not
# among them.  The model definitions live in harness/models/, which accuracy uses too.
BUILD_MODULES = ("zoo/__init__.py", "zoo/recipes.py", "zoo/export.py", "models/mel.py", "models/ct2.py",
                 "models/whisper.py", "models/whisper_split.py")


def code_fingerprint() -> str:
    """sha256 over the build code: editing a recipe or an export step invalidates every build."""
    import hashlib

    digest = hashlib.sha256()
    for name in BUILD_MODULES:
        # Keyed by the file name alone, as before the model files moved: builds made then stay valid.
        digest.update(Path(name).name.encode() + b"\0" + (Path(__file__).parent.parent / name).read_bytes())
    return digest.hexdigest()[:16]


def _recipes() -> list[Recipe]:
    from harness.zoo import recipes

    return recipes.RECIPES


def build_all(out_dir: Path, only: list[str] | None = None, force: bool = False,
              log: Callable[[str], None] = lambda m: None) -> list[BuildResult]:
    """Build every recipe (or ``only`` those) into ``out_dir``; return what was built or reused."""
    recipes = _recipes()
    by_name = {r.name: r for r in recipes}
    wanted = set(by_name) if not only else set()
    for name in only or []:
        if name not in by_name:
            raise UserError(f"no reference build named '{name}'.", fix=f"choose from: {', '.join(by_name)}.")
        stack = [name]
        while stack:  # a build's inputs are built too
            current = stack.pop()
            wanted.add(current)
            stack.extend(by_name[current].needs)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    built: dict[str, Path] = {}
    code = code_fingerprint()
    for recipe in recipes:
        if recipe.name not in wanted:
            continue
        target = out_dir / f"{recipe.name}{recipe.suffix}"
        manifest_path = target.with_name(target.name + ".manifest.json")
        deps = {name: built[name] for name in recipe.needs}
        fingerprint = {"recipe": recipe.name, "recipe_version": recipe.version, "code": code,
                       **_versions(recipe.packages),
                       **{f"input:{name}": sha256_of(path) for name, path in deps.items()},
                       **{f"data:{path.name}": sha256_of(path) for path in recipe.data}}
        if not force and target.exists() and manifest_path.exists():
            old = json.loads(manifest_path.read_text())
            if old.get("recipe", {}).get("fingerprint") == fingerprint and old.get("sha256") == sha256_of(target):
                log(f"cached  {target}")
                built[recipe.name] = target
                results.append(BuildResult(recipe.name, target, size_of(target), old["recipe"].get("build_s", 0.0), True))
                continue
        log(f"build   {target} …")
        started = time.perf_counter()
        if target.is_dir():
            shutil.rmtree(target)
        fields = recipe.build(target, deps)
        build_s = time.perf_counter() - started
        recipe_info = {**fields.pop("recipe", {}), "fingerprint": fingerprint, "build_s": round(build_s, 2)}
        manifest = {**fields, "format": recipe.suffix[1:], "sha256": sha256_of(target),
                    "size_bytes": size_of(target), "recipe": recipe_info}
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        log(f"built   {target} ({size_of(target) / 1e6:.1f} MB in {build_s:.1f} s)")
        built[recipe.name] = target
        results.append(BuildResult(recipe.name, target, size_of(target), build_s, False))
    return results
