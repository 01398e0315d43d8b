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
    default: bool = True  # built by a plain `harness zoo build`; False: only when named (the large LLMs)


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
                 "models/whisper_facts.py", "models/whisper.py", "models/whisper_split.py", "models/vad.py")


def code_fingerprint() -> str:
    """sha256 over the build code: editing a recipe or an export step invalidates every build."""
    import hashlib

    digest = hashlib.sha256()
    for name in BUILD_MODULES:
        # Keyed by the file name alone, as before the model files moved: builds made then stay valid.
        digest.update(Path(name).name.encode() + b"\0" + (Path(__file__).parent.parent / name).read_bytes())
    return digest.hexdigest()[:16]


def _recipes() -> list[Recipe]:
    from harness.zoo import llm, recipes

    return recipes.RECIPES + llm.RECIPES


def recipe_list() -> list[dict]:
    """Every reference build: its name (what ``--only`` takes), file suffix, whether a plain build makes it, and
    the builds it is made from."""
    return [{"name": r.name, "suffix": r.suffix, "default": r.default, "needs": list(r.needs)} for r in _recipes()]


def build_all(out_dir: Path, only: list[str] | None = None, force: bool = False,
              log: Callable[[str], None] = lambda m: None, jobs: int = 1) -> list[BuildResult]:
    """Build every default recipe (or ``only`` those) into ``out_dir``; return what was built or reused, in recipe order.

    ``jobs`` > 1 builds that many at once, each in a fresh process (exports are single-threaded Python for
    the most part, so a 2-core machine builds nearly twice as fast); a build starts once its inputs exist.
    """
    recipes = _recipes()
    by_name = {r.name: r for r in recipes}
    wanted = {r.name for r in recipes if r.default} if not only else set()
    for name in only or []:
        if name not in by_name:
            raise UserError(f"no reference build named '{name}'.", fix=f"choose from: {', '.join(by_name)}.")
        stack = [name]
        while stack:  # a build's inputs are built too
            current = stack.pop()
            wanted.add(current)
            stack.extend(by_name[current].needs)
    out_dir.mkdir(parents=True, exist_ok=True)
    code = code_fingerprint()
    todo = [r for r in recipes if r.name in wanted]
    built: dict[str, Path] = {}
    results: dict[str, BuildResult] = {}

    def fingerprint_of(recipe: Recipe) -> dict:
        return {"recipe": recipe.name, "recipe_version": recipe.version, "code": code, **_versions(recipe.packages),
                **{f"input:{name}": sha256_of(built[name]) for name in recipe.needs},
                **{f"data:{path.name}": sha256_of(path) for path in recipe.data}}

    def finished(result: BuildResult) -> None:
        built[result.name], results[result.name] = result.path, result
        if not result.cached:
            log(f"built   {result.path} ({result.size_bytes / 1e6:.1f} MB in {result.build_s:.1f} s)")

    pool = None
    running: dict = {}  # future -> recipe name
    try:
        while todo or running:
            ready = [r for r in todo if all(n in built for n in r.needs)]
            if not ready and not running:
                raise RuntimeError(f"recipes wait on inputs nobody builds: {[r.name for r in todo]}")
            for recipe in ready:
                if running and len(running) >= jobs:
                    break
                todo.remove(recipe)
                fingerprint = fingerprint_of(recipe)
                cached = _cached(recipe, out_dir, fingerprint, force)
                if cached is not None:
                    log(f"cached  {cached.path}")
                    finished(cached)
                    continue
                log(f"build   {out_dir / (recipe.name + recipe.suffix)} …")
                deps = {name: built[name] for name in recipe.needs}
                if jobs <= 1:
                    finished(_build_one(recipe.name, out_dir, deps, fingerprint))
                    continue
                if pool is None:
                    import multiprocessing
                    from concurrent.futures import ProcessPoolExecutor

                    # spawn: a fresh interpreter per worker, never a fork of a process holding torch's threads
                    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
                running[pool.submit(_build_one, recipe.name, out_dir, deps, fingerprint)] = recipe.name
            if running and (len(running) >= jobs or not [r for r in todo if all(n in built for n in r.needs)]):
                from concurrent.futures import FIRST_COMPLETED, wait

                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    finished(future.result())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return [results[r.name] for r in recipes if r.name in results]


def _cached(recipe: Recipe, out_dir: Path, fingerprint: dict, force: bool) -> BuildResult | None:
    """The existing build when its manifest records this fingerprint and its bytes are unchanged."""
    target = out_dir / f"{recipe.name}{recipe.suffix}"
    manifest_path = target.with_name(target.name + ".manifest.json")
    if force or not target.exists() or not manifest_path.exists():
        return None
    old = json.loads(manifest_path.read_text())
    if old.get("recipe", {}).get("fingerprint") != fingerprint or old.get("sha256") != sha256_of(target):
        return None
    return BuildResult(recipe.name, target, size_of(target), old["recipe"].get("build_s", 0.0), True)


def _remove_own_build(target: Path) -> None:
    """Clear a folder build the zoo made before (its manifest names a recipe); anything else is the user's."""
    manifest = target.with_name(target.name + ".manifest.json")
    try:
        ours = "recipe" in json.loads(manifest.read_text())
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise UserError("a folder that the zoo did not build stands where this build is written; it was left alone.",
                        path=target, fix="move or rename that folder, or build into another folder with -o.")
    shutil.rmtree(target)


def _build_one(name: str, out_dir: Path, deps: dict[str, Path], fingerprint: dict) -> BuildResult:
    """Build one recipe and write its manifest (in a worker process when building in parallel)."""
    import multiprocessing
    from contextlib import nullcontext

    from harness.library_log import library_output_to_log, native_output_to_log

    recipe = next(r for r in _recipes() if r.name == name)
    target = out_dir / f"{recipe.name}{recipe.suffix}"
    # A worker's library warnings go to the log too (in-process, the command's own redirection holds).
    worker = multiprocessing.parent_process() is not None
    with library_output_to_log() if worker else nullcontext():
        started = time.perf_counter()
        if target.is_dir():
            _remove_own_build(target)
        with native_output_to_log():  # C++ logging and prints of the exporters and quantizers
            fields = recipe.build(target, deps)
        build_s = time.perf_counter() - started
    recipe_info = {**fields.pop("recipe", {}), "fingerprint": fingerprint, "build_s": round(build_s, 2)}
    manifest = {**fields, "format": recipe.suffix[1:], "sha256": sha256_of(target),
                "size_bytes": size_of(target), "recipe": recipe_info}
    target.with_name(target.name + ".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return BuildResult(recipe.name, target, size_of(target), build_s, False)
