"""Runtime helpers shared by the measuring worker and the accuracy chains: a leaf module.

Creating an onnxruntime session, sizing ExecuTorch's threadpool and importing the ExecuTorch runtime
without its exporter are needed wherever a build runs on the host, both when it is timed
(harness.runners.host_worker) and when it transcribes (harness.accuracy.chains).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


def rss_mb() -> float:
    """This process's resident memory now, in MiB (NaN where /proc is missing)."""
    import resource

    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    """This process's high-water resident memory so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ort_session(path: str, threads: int | None, profile_prefix: str | None = None):
    """An onnxruntime CPU session, with ``threads`` intra-op threads when given; with ``profile_prefix``, ONNX
    Runtime's own profiler on, writing its JSON there (``session.end_profiling()`` returns its path)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def set_executorch_threads(threads: int | None) -> None:
    """Resize ExecuTorch's CPU threadpool (XNNPACK) when ``threads`` is given and the build exposes it."""
    if threads:
        with _without_the_exporter():  # portable_lib imports executorch.exir._warnings: not the exporter for that
            from executorch.extension.pybindings import portable_lib

        reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
        if reset is not None:
            reset(threads)


def import_executorch_runtime():
    """``executorch.runtime`` without the exporter.

    The runtime's pybindings import ``executorch.exir._warnings`` (one decorator), and importing
    any ``executorch.exir`` submodule runs ``executorch/exir/__init__.py``, which loads the whole
    exporter (torch._dynamo, torchao): 3.5 of the 5 s a cell's process used to spend before its first
    inference.  Registering ``executorch.exir`` as a bare package (its real folder, its ``__init__``
    not run) lets the submodule load alone.  A measuring process never exports, so nothing it uses is
    missing; a process that already imported the exporter keeps it.  Every run of a cell is a fresh
    process, so this start-up cost is paid once per run.
    """
    with _without_the_exporter():
        from executorch import runtime

    return runtime


@contextmanager
def _without_the_exporter():
    """Imports in this block see ``executorch.exir`` as a bare package (its folder, its ``__init__`` not run),
    unless it is loaded already.  The bare package leaves with the block (the submodules it loaded stay): a later
    ``import executorch.exir`` in the same process (an export, the devtools Inspector) then loads the real one
    instead of failing with "cannot import name ... from 'executorch.exir'"."""
    import sys
    import types

    if "executorch.exir" in sys.modules:
        yield
        return
    import executorch

    bare = types.ModuleType("executorch.exir")
    bare.__path__ = [str(Path(executorch.__path__[0]) / "exir")]
    bare.__package__ = "executorch.exir"
    sys.modules["executorch.exir"] = bare
    try:
        yield
    finally:
        if sys.modules.get("executorch.exir") is bare:
            del sys.modules["executorch.exir"]
        if getattr(executorch, "exir", None) is bare:  # `from executorch import exir` must not find it either
            del executorch.exir


def import_llm_runner():
    """``executorch.extension.llm.runner`` (TextLLMRunner) with the kernels LLM programs need registered.

    The runtime kernels llama::custom_sdpa / update_cache live in libcustom_ops_aot_lib, the quantized embedding
    and linear kernels in libquantized_ops_aot_lib: loading each library registers them (its static
    initialisers).  Their Python modules load the same libraries but first import torch._inductor and the
    exporter (for export-time meta kernels a measuring process never calls): 17 of the 24 s an LLM cell's
    process took to start on a busy 2-core machine, 2026-12-07.  Without either library a program stops
    with "kernel 'llama::update_cache.out' not found".
    """
    import torch
    import executorch

    root = Path(executorch.__path__[0])
    for folder, stem in (("extension/llm/custom_ops", "custom_ops_aot_lib"), ("kernels/quantized", "quantized_ops_aot_lib")):
        (library,) = (root / folder).glob(f"*{stem}.*")
        torch.ops.load_library(str(library))
    from executorch.extension.llm import runner

    return runner
