"""onnxruntime's ``onnxruntime_perf_test``: command and summary parser (current and older formats).

The tool prints a summary, not iterations.  Sources, read with the search tools: microsoft/onnxruntime
onnxruntime/test/perftest/performance_runner.cc at commit 034db1c2 (an old revision, the only one stored:
it prints "Average time cost:"), and, for current builds, the sample output in ORT's perf-test README and
Arm's published onnxruntime_perf_test transcripts: "Average inference time cost total: X ms" (older
builds: "Average inference time cost: X ms") and, with -s/-I, "P50 Latency: X s".  No tagged source of
the current summary code was read; issue 12 is where that check belongs.
A cell on this runner is summary-only: each run's P50 and P95 are the tool's own, never a mean.

Inputs (onnxruntime/test/perftest/README.md and command_args_parser.cc, main as read 2026-12-01): with
``-I`` the tool makes its own inputs and "free dimensions are treated as 1 unless overridden using -f"
(by dimension *name*; unnamed dynamic dimensions cannot be overridden); without it, it reads
onnx_test_runner's layout, ``test_data_set_*/input_*.pb`` beside the model, matched to the inputs by
name (performance_runner.cc).  A build whose manifest gives ``inputs`` (Silero VAD: a 576-sample window,
a zero state, ``sr`` 16000) is measured on those, written as test data beside the model on the phone;
with ``-I`` its dynamic input would be one sample long and ``sr`` random, and the model fails.
"""

from __future__ import annotations

import posixpath
import re
import tempfile
from pathlib import Path

from harness.runners.base import Measurement, RunnerFailure, RunSettings, check_command, push_file

NAME = "android-onnxruntime-perf-test"
TOOL = "onnxruntime_perf_test"
TASK = "latency"
_PROVIDER_OF = {"ort-cpu": "cpu", "ort-qnn": "qnn", "ort-xnnpack": "xnnpack", "ort-nnapi": "nnapi"}

PROVIDERS = ("cpu", "qnn", "xnnpack", "nnapi")
_SECONDS = {"s": 1000.0, "sec": 1000.0, "ms": 1.0}
_FIELDS = {
    "session_creation_ms": re.compile(r"Session creation time cost:\s*([\d.eE+-]+)\s*(s|ms)"),
    "first_inference_ms": re.compile(r"First inference time cost:\s*([\d.eE+-]+)\s*(s|ms)"),
    "mean_ms": re.compile(r"Average inference time cost(?: total)?:\s*([\d.eE+-]+)\s*(s|ms)"),
    "total_ms": re.compile(r"Total inference time cost:\s*([\d.eE+-]+)\s*(s|ms)"),
}
_REQUESTS = re.compile(r"Total inference requests:\s*(\d+)")
_PEAK = re.compile(r"Peak working set size:\s*(\d+)")
# Current: "P90 Latency: 0.0123 s"; older: "P90 Latency is 0.0123 sec".
_PERCENTILE = re.compile(r"\b(Min|Max|P50|P90|P95|P99|P999) Latency(?::| is)\s*([\d.eE+-]+)\s*(sec|s|ms)")


def build_command(runner: str, model_path: str, iterations: int, provider: str = "cpu",
                  threads: int | None = None, qnn_lib_dir: str | None = None, test_data: bool = False) -> list[str]:
    """``qnn_lib_dir``: where the QNN libraries were pushed, for ``-e qnn`` (``-i "backend_path|..."``, an
    option every perf-test revision read has, older and current: onnxruntime/test/perftest/command_args_parser.cc).
    ``test_data``: inputs were staged beside the model (stage_test_data), so no ``-I``; ``-s`` still
    prints the percentiles."""
    if provider not in PROVIDERS:
        raise ValueError(f"provider {provider}: use one of {', '.join(PROVIDERS)}")
    argv = [runner, "-e", provider, "-m", "times", "-r", str(iterations), "-s" if test_data else "-I"]
    if threads:
        argv += ["-x", str(threads)]
    if provider == "qnn":
        if qnn_lib_dir is None:
            raise ValueError("-e qnn needs the folder the QNN libraries were pushed to")
        argv += ["-i", f"backend_path|{qnn_lib_dir}/libQnnHtp.so"]
    return argv + [model_path]


def parse(text: str) -> Measurement:
    """Summary figures in ms; the tool prints no per-iteration samples, so percentiles travel as extras."""
    extra: dict[str, float] = {}
    for key, pattern in _FIELDS.items():
        m = pattern.search(text)
        if m:
            extra[key] = float(m.group(1)) * _SECONDS[m.group(2)]
    for m in _PERCENTILE.finditer(text):
        extra[f"{m.group(1).lower()}_ms"] = float(m.group(2)) * _SECONDS[m.group(3)]
    if (m := _REQUESTS.search(text)):
        extra["requests"] = int(m.group(1))
    peak = _PEAK.search(text)
    if "p50_ms" not in extra:
        raise ValueError("no 'P50 Latency' line (run the tool with -I or -s so it prints percentiles)")
    summary = {k: extra[k] for k in ("p50_ms", "p95_ms", "mean_ms") if k in extra}
    return Measurement(
        samples_ms=[], summary_ms=summary, first_inference_ms=extra.get("first_inference_ms"),
        load_ms=extra.get("session_creation_ms"), peak_rss_mb=int(peak.group(1)) / 2**20 if peak else None,
        extra=extra, notes=["onnxruntime_perf_test prints a summary, not iterations: P50/P95 are its own"],
    )


def write_test_data(specs: list[dict], folder: Path, seed: int = 0) -> list[Path]:
    """The manifest's inputs as onnx_test_runner test data: ``input_K.pb``, one named TensorProto each."""
    import numpy as np
    from onnx import numpy_helper

    from harness.runners.host_worker import make_array

    rng, files = np.random.default_rng(seed), []
    folder.mkdir(parents=True, exist_ok=True)
    for k, spec in enumerate(specs):
        path = folder / f"input_{k}.pb"
        path.write_bytes(numpy_helper.from_array(make_array(spec, rng), name=spec["name"]).SerializeToString())
        files.append(path)
    return files


def stage_test_data(device, model_path: str, artifact) -> bool:
    """Put the manifest's inputs beside the model on the phone as ``test_data_set_0``; False when the manifest
    names none (or leaves a name out: the tool matches test data to inputs by name), and ``-I`` it is."""
    specs = [spec.model_dump() for spec in (getattr(artifact, "inputs", None) or [])]
    if not specs or not all(spec.get("name") for spec in specs):
        return False
    folder = posixpath.join(posixpath.dirname(model_path), "test_data_set_0")
    check_command(device.run(["mkdir", "-p", folder], 30), "mkdir for the test data")
    with tempfile.TemporaryDirectory() as scratch:
        for local in write_test_data(specs, Path(scratch)):
            pushed = push_file(device, local)
            check_command(device.run(["cp", pushed, posixpath.join(folder, local.name)], 30), "cp of the test data")
    return True


def supports(platform: str, artifact) -> bool:
    return platform == "android" and artifact.format == "onnx" and artifact.backend in _PROVIDER_OF


def measure(device, model_path: str, artifact, settings: RunSettings) -> Measurement:
    from harness.runners.executor_runner import push_tool

    runner = push_tool(device, "onnxruntime_perf_test")
    provider, lib_dir, env = _PROVIDER_OF[artifact.backend], None, None
    if provider == "qnn":  # without the libraries the QNN EP fails, or the tool quietly measures the CPU
        from harness.runners.qnn_executor_runner import push_qnn_libraries

        lib_dir = push_qnn_libraries(device, with_executorch_backend=False)
        env = {"LD_LIBRARY_PATH": lib_dir, "ADSP_LIBRARY_PATH": lib_dir}
    argv = build_command(runner, model_path, settings.iterations, provider, settings.threads, lib_dir,
                         test_data=stage_test_data(device, model_path, artifact))
    result = device.run(argv, settings.timeout_s, env=env)
    check_command(result, "onnxruntime_perf_test")
    try:
        return parse(result.stdout)
    except ValueError as exc:
        raise RunnerFailure("failed", f"could not read onnxruntime_perf_test's summary ({exc})", result.log()) from None
