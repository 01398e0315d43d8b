"""Shared fixtures: real, small exported models (torch.export + XNNPACK, torch.onnx), built once per session."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import REPO, write


class TinyNet:
    """Two linear layers: big enough to take measurable time, small enough to export in seconds."""

    @staticmethod
    def make():
        import torch

        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64)).eval()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A folder with tiny.pte and tiny-b.pte (XNNPACK, each with its .etrecord), tiny.onnx, and nothing else
    (exported once and kept: :func:`cached_export`)."""
    return cached_export(tmp_path_factory, "models", _export_tiny_models, Path(__file__))


def cached_export(tmp_path_factory, name: str, export, *sources: Path) -> Path:
    """The folder ``export(folder)`` fills, kept between sessions (:func:`kept_export`); HARNESS_TEST_FRESH_BUILDS=1
    exports afresh into the session's temporary folder."""
    return kept_export(name, export, *sources, fresh_folder=lambda: tmp_path_factory.mktemp(name))


def kept_export(name: str, export, *sources: Path, fresh_folder=None) -> Path:
    """The folder ``export(folder)`` fills, kept between sessions in ``BUILD_CACHE`` as the reference builds are,
    under a fingerprint of ``sources`` (the files that say what is exported), the exporter (harness/zoo/export.py)
    and the toolchain versions: exporting cost each pytest-xdist worker 10-30 s of torch and exporter imports
    before its first test, for files every test only reads.  The one rule for every export the tests keep (this
    file's folders, tests/helpers.py's export_kws and the hostile table's .pte): made whole in a scratch folder
    under a lock, then renamed, so a folder in the cache is complete.  HARNESS_TEST_FRESH_BUILDS=1 exports afresh
    into ``fresh_folder()`` (a new temporary folder by default)."""
    import shutil
    import tempfile

    if os.environ.get("HARNESS_TEST_FRESH_BUILDS"):
        folder = fresh_folder() if fresh_folder else Path(tempfile.mkdtemp(prefix=f"{name}-"))
        export(folder)
        return folder
    out = BUILD_CACHE / f"{name}-{export_fingerprint(*sources)}"
    BUILD_CACHE.mkdir(parents=True, exist_ok=True)
    with file_lock(BUILD_CACHE / f"{out.name}.lock"):
        if not out.is_dir():
            scratch = BUILD_CACHE / f"{out.name}.partial"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir()
            export(scratch)
            scratch.rename(out)
    os.utime(out)  # used now: kept by the prune
    return out


@contextmanager
def file_lock(path: Path):
    """An exclusive lock on ``path`` (created), held for the block: pytest-xdist workers and concurrent sessions
    share the build cache."""
    import fcntl

    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def export_fingerprint(*sources: Path) -> str:
    """``sources``, harness/zoo/export.py and the exporting packages' versions, hashed."""
    import hashlib
    from importlib import metadata

    digest = hashlib.sha256()
    for path in (*sources, REPO / "harness" / "zoo" / "export.py"):
        digest.update(path.read_bytes())
    for package in ("torch", "executorch", "onnx", "onnxscript"):
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none".encode())
    return digest.hexdigest()[:16]


def _export_tiny_models(out: Path) -> Path:
    import torch

    from harness.zoo.export import export_onnx, export_pte_xnnpack

    out.mkdir(parents=True, exist_ok=True)
    module, example = TinyNet.make(), (torch.randn(1, 256),)
    export_pte_xnnpack(module, example, out / "tiny.pte")
    export_onnx(module, example, out / "tiny.onnx", ["x"], ["y"])
    torch.manual_seed(1)  # a second, different build for plans that need two cells
    other = torch.nn.Sequential(torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64)).eval()
    export_pte_xnnpack(other, example, out / "tiny-b.pte")
    return out


@pytest.fixture
def host_inventory(tmp_path) -> Path:
    return write(tmp_path / "devices.yaml", """
        devices:
          - id: host
            platform: host
            backends: [portable, xnnpack, ort-cpu]
        """)


@pytest.fixture(scope="session")
def small_zoo(tmp_path_factory):
    """A real subset of the zoo: VAD (both), mel, ONNX encoder+decoder FP32 and INT8, INT8 .pte encoder, INT4 Core ML."""
    from harness.zoo import build_all

    out = tmp_path_factory.mktemp("builds")
    only = ["silero-vad-fp32", "silero-vad-int8", "whisper-logmel-fp32", "whisper-tiny.en-encoder-int8",
            "whisper-tiny.en-decoder-int8", "whisper-tiny.en-encoder-int8-xnnpack", "whisper-tiny.en-encoder-int4-coreml"]
    return out, build_all(out, only=only, jobs=2)  # in parallel, as `harness zoo build` does


# Reference builds that other tests take as input (the zoo's own tests build theirs afresh, in small_zoo) and the
# tests' exports are kept between sessions, as `harness zoo build` keeps builds/, in a cache of the user's
# (HARNESS_TEST_BUILDS, else ~/.cache/harness-test-builds) so that a fresh clone reuses them.  Every entry is named
# by a fingerprint of the code and toolchain that made it, so clones and branches with other zoo code never
# rebuild each other's, and the zoo still rebuilds a build whose recipe, inputs or bytes changed.  Entries unused
# for PRUNE_AFTER_DAYS are removed at the start of a session.  HARNESS_TEST_FRESH_BUILDS=1 builds them in the
# session's temporary folder instead.  Locks let pytest-xdist workers and concurrent sessions share the cache.
BUILD_CACHE = Path(os.environ.get("HARNESS_TEST_BUILDS")
                   or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness-test-builds")
PRUNE_AFTER_DAYS = 30


def reference_builds(tmp_path_factory, folder: str, only: list[str], jobs: int = 1) -> Path:
    """The zoo builds ``only``, in ``BUILD_CACHE/<folder>-<zoo code fingerprint>`` (or a fresh temporary folder):
    built or reused."""
    from harness.zoo import build_all, code_fingerprint

    if os.environ.get("HARNESS_TEST_FRESH_BUILDS"):
        out = tmp_path_factory.mktemp(folder)
        build_all(out, only=only, jobs=jobs)
        return out
    out = BUILD_CACHE / f"{folder}-{code_fingerprint()}"
    out.mkdir(parents=True, exist_ok=True)
    with file_lock(out / ".lock"):
        build_all(out, only=only, jobs=jobs)
    os.utime(out)  # used now: kept by the prune
    return out


def pytest_sessionstart(session) -> None:
    """Remove the cache entries no session has used for PRUNE_AFTER_DAYS (old fingerprints pile up: each edit of
    an exporter or a recipe makes new ones).  Only names the tests make (``name-<16 hex>`` folders, their
    ``.lock``/``.partial`` files, ``name-<16 hex>.pte``) are touched; nothing else in the folder is ours."""
    import re
    import shutil
    import time

    if not BUILD_CACHE.is_dir() or hasattr(session.config, "workerinput"):  # once, in the controlling process
        return
    ours = re.compile(r"^[a-z0-9.-]+-[0-9a-f]{16}(\.lock|\.partial|\.pte|\.pte\.lock|\.\d+\.partial)?$")
    cutoff = time.time() - PRUNE_AFTER_DAYS * 86400
    for entry in BUILD_CACHE.iterdir():
        if ours.match(entry.name) and entry.lstat().st_mtime < cutoff:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def whisper_bundle(tmp_path_factory):
    """The zoo's bundled Whisper tiny.en program (encoder + text_decoder) with its processor and tokenizer."""
    return reference_builds(tmp_path_factory, "bundle", ["whisper-tiny.en-asr-fp32-xnnpack"])


# The ONNX speech chain at INT8 (its FP32 encoder and decoder are built on the way) and the INT8 VAD.
ASR_BUILDS = ["silero-vad-int8", "whisper-logmel-fp32", "whisper-tiny.en-encoder-int8", "whisper-tiny.en-decoder-int8"]


@pytest.fixture(scope="session")
def asr_builds(tmp_path_factory):
    """The zoo's ONNX speech chain (mel, encoder and decoder, FP32 and INT8) and the INT8 Silero VAD, cached: the
    tests that transcribe with them waited for small_zoo, the zoo's own fresh build, on its worker."""
    return reference_builds(tmp_path_factory, "asr", ASR_BUILDS)


TINY_LLM = ["qwen2-tiny-arch-fp32-xnnpack", "qwen2-tiny-arch-int4-xnnpack", "qwen2-tiny-arch-int8-xnnpack"]


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    """The zoo's LLM builds at the tiny config of Qwen2's family (ExecuTorch's LLM export), with their tokenizer."""
    return reference_builds(tmp_path_factory, "llm", TINY_LLM, jobs=2)


@pytest.fixture(scope="module")
def adb_server():
    """A private adb server (never 5037, never the 5555-5585 emulator range), one per test module."""
    from harness.sim.adb_server import private_adb_server

    with private_adb_server() as server:
        yield server


@pytest.fixture
def phones(adb_server, tmp_path):
    """Start simulated phones for one test; disconnect and stop them afterwards so none leaks into the next."""
    started = []

    def make(faults=None):
        server, serial = adb_server.attach(tmp_path / f"p{len(started)}", faults)
        started.append((server, serial))
        return server, serial

    yield make
    for server, serial in started:
        adb_server.detach(server, serial)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs two workers, `--dist loadgroup`), the tests that take small_zoo run on
    one worker, so the zoo's subset is built once a session rather than once per worker; and so do the tests of
    a module that take one of its module-scoped fixtures (a light install, three nights, a history site): spread
    over both workers, each worker made the fixture again (the light install's environment was built twice)."""
    for item in items:
        if "small_zoo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("small_zoo"))
        elif fixture := _own_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}::{fixture}"))
    if getattr(config.option, "loadgroup", False):  # set in each xdist worker under --dist loadgroup
        for item in items:
            _name_the_group_in_the_test_id(item)
        items[:] = _longest_modules_first(items)


def _longest_modules_first(items: list) -> list:
    """The test files in the order the workers should start them: the one building small_zoo first, then by how
    many of their tests are slow, each file's tests kept together (a module fixture is made once) and in their
    order.  In file-name order the zoo's group of minutes came last and one worker ran it alone at the end."""
    by_module: dict = {}
    for item in items:
        by_module.setdefault(item.module.__name__, []).append(item)

    def cost(module_items: list) -> tuple[bool, int]:
        return (any("small_zoo" in getattr(i, "fixturenames", ()) for i in module_items),
                sum(1 for i in module_items if i.get_closest_marker("slow")))

    ordered = sorted(by_module.values(), key=cost, reverse=True)  # stable: ties keep file-name order
    return [item for module_items in ordered for item in module_items]


def _name_the_group_in_the_test_id(item) -> None:
    """``test_x.py::test_y@group``: the id loadgroup's scheduler reads the group from.  pytest-xdist appends it in
    its own collection hook, which runs before this one (so it never saw the marks added here), and since pytest 9.2
    keeps ids in ``_id`` it sets a ``_nodeid`` nothing reads: every group, these and the test files' own, was
    ignored, and each worker built small_zoo and each module fixture again."""
    groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                     for mark in item.iter_markers("xdist_group")})
    suffix = "@" + "_".join(groups)
    if not groups or item.nodeid.endswith(suffix):
        return
    if hasattr(item, "_id"):
        item._id = type(item._id).parse(item.nodeid + suffix)
    else:  # pytest before 9.2
        item._nodeid = item.nodeid + suffix


def _own_module_fixture(item) -> str | None:
    """The first module-scoped fixture of the test's own module that it takes (the costly ones: runs, nights,
    sites; two of them may go to two workers); not conftest's adb_server, which starts in a second and whose
    tests are better spread over both workers."""
    info = getattr(item, "_fixtureinfo", None)
    for name, defs in (info.name2fixturedefs.items() if info is not None else ()):
        if any(d.scope == "module" and getattr(d.func, "__module__", None) == item.module.__name__ for d in defs):
            return name
    return None
