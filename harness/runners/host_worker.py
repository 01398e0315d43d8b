"""Child process that measures one model with a Python runtime on the host.

Run as ``python -m harness.runners.host_worker --model M --format onnx ...``.  It
prints one ``HARNESS_RESULT {json}`` line at the end; anything else on stdout is
the runtime's own chatter and is kept as the cell's log.  Living in its own process
means a segfault in a runtime or a model that never returns costs one cell, not
the run.

Timing order (pyperf's discipline: warm-ups are kept apart from measured values):
load -> first inference (reported alone) -> warm-up iterations -> measured iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

import numpy as np

from harness.runtime import import_executorch_runtime, ort_session, peak_rss_mb, rss_mb, set_executorch_threads
from harness.wire import RESULT_PREFIX

_NP_DTYPES = {
    "float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32,
    "int8": np.int8, "uint8": np.uint8, "bool": np.bool_,
}
ORT_DTYPES = {  # onnxruntime's type names -> numpy's (also the simulated perf tool's)
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
    "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
}
# ExecuTorch ScalarType codes (c10 numbering) for the dtypes a benchmark input can have.
_ET_DTYPES = {6: "float32", 5: "float16", 4: "int64", 3: "int32", 1: "int8", 0: "uint8", 11: "bool"}


def make_array(spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """One input tensor from an InputSpec-shaped dict (name, shape, dtype, fill, value)."""
    dtype = _NP_DTYPES[spec.get("dtype") or "float32"]
    shape = tuple(spec.get("shape") or ())
    if spec.get("value") is not None:
        return np.full(shape, spec["value"], dtype=dtype)
    fill = spec.get("fill") or "random"
    if fill == "zeros":
        return np.zeros(shape, dtype=dtype)
    if fill == "ones":
        return np.ones(shape, dtype=dtype)
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(dtype)
    return rng.integers(0, 8, shape).astype(dtype)


def _merge_specs(discovered: list[dict[str, Any]], given: list[dict[str, Any]] | None, notes: list[str]) -> list[dict]:
    """Inputs the model declares, overridden by the manifest's (by name, else by position)."""
    if not given:
        for spec in discovered:
            if spec.pop("dynamic", False):
                notes.append(f"input '{spec['name']}' has dynamic dimensions; used {spec['shape']}. "
                             "Give its shape in the manifest's 'inputs' to measure a realistic size.")
        return discovered
    by_name = {g.get("name"): g for g in given if g.get("name")}
    merged = []
    for i, spec in enumerate(discovered):
        # By name where the runtime knows names (ONNX); by position otherwise (.pte inputs are unnamed).
        override = by_name.get(spec["name"]) or (given[i] if i < len(given) else None)
        merged.append({**spec, **{k: v for k, v in (override or {}).items() if v is not None}})
    return merged


def _load_onnx(path: str, specs: list | None, threads: int | None, rng, notes) -> tuple[Callable[[], Any], float]:
    started = time.perf_counter_ns()
    session = ort_session(path, threads)
    load_ms = (time.perf_counter_ns() - started) / 1e6
    return onnx_runner(session, specs, rng, notes), load_ms


def onnx_runner(session, specs: list | None, rng, notes) -> Callable[[], Any]:
    discovered = []
    for inp in session.get_inputs():
        dynamic = any(not isinstance(d, int) for d in inp.shape)
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        discovered.append({"name": inp.name, "shape": shape, "dtype": ORT_DTYPES.get(inp.type, "float32"),
                           "dynamic": dynamic})
    feeds = {s["name"]: make_array(s, rng) for s in _merge_specs(discovered, specs, notes)}
    return lambda: session.run(None, feeds)


def _load_pte(path: str, specs: list | None, threads: int | None, rng, notes) -> tuple[Callable[[], Any], float]:
    Runtime = import_executorch_runtime().Runtime

    set_executorch_threads(threads)
    runtime = Runtime.get()
    started = time.perf_counter_ns()
    program = runtime.load_program(path)
    method = program.load_method("forward")
    load_ms = (time.perf_counter_ns() - started) / 1e6
    inputs = pte_inputs(method.metadata, specs, rng, notes)
    return (lambda: method.execute(inputs)), load_ms


def pte_inputs(meta, specs: list | None, rng, notes) -> list:
    import torch

    discovered = []
    for i in range(meta.num_inputs()):
        info = meta.input_tensor_meta(i)
        discovered.append({"name": f"input{i}", "shape": list(info.sizes()),
                           "dtype": _ET_DTYPES.get(info.dtype(), "float32")})
    return [torch.from_numpy(make_array(s, rng)) for s in _merge_specs(discovered, specs, notes)]


LOADERS = {"onnx": _load_onnx, "pte": _load_pte}
# Imported before the memory baseline, so "growth over pre-load" is the model, not the runtime library.
RUNTIME_MODULES = {"onnx": ["onnxruntime"], "pte": ["torch"]}


def measure(fmt: str, model: str, specs: list | None, warmup: int, iterations: int,
            threads: int | None, seed: int) -> dict[str, Any]:
    """Load, run once, warm up, measure; return every timing in milliseconds."""
    import importlib

    notes: list[str] = []
    for module in RUNTIME_MODULES[fmt]:
        importlib.import_module(module)
    if fmt == "pte":
        import_executorch_runtime()
    rss_before_mb = rss_mb()
    run, load_ms = LOADERS[fmt](model, specs, threads, np.random.default_rng(seed), notes)
    clock = time.perf_counter_ns
    t0 = clock()
    run()
    first_ms = (clock() - t0) / 1e6
    warmup_ms = []
    for _ in range(warmup):
        t0 = clock()
        run()
        warmup_ms.append((clock() - t0) / 1e6)
    samples_ms = []
    measured_start = time.time()  # wall clock, to place the measured iterations on the thermal timeline
    for _ in range(iterations):
        t0 = clock()
        run()
        samples_ms.append((clock() - t0) / 1e6)
    measured_end = time.time()
    return {
        "load_ms": load_ms, "first_inference_ms": first_ms, "warmup_ms": warmup_ms,
        "samples_ms": samples_ms, "peak_rss_mb": peak_rss_mb(), "rss_before_load_mb": rss_before_mb,
        "notes": notes, "measured_start_epoch_s": measured_start, "measured_end_epoch_s": measured_end,
        # Every run is its own process; the store keeps which, and which parent it came from.
        "pid": os.getpid(), "ppid": os.getppid(),
    }


def arguments(description: str) -> argparse.ArgumentParser:
    """The worker's command line (the profiling worker takes the same, and more)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True)
    parser.add_argument("--format", required=True, choices=sorted(LOADERS))
    parser.add_argument("--inputs-json", default="null", help="manifest 'inputs' as JSON")
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__).parse_args(argv)
    result = measure(args.format, args.model, json.loads(args.inputs_json), args.warmup,
                     args.iterations, args.threads or None, args.seed)
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
