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

On a Snapdragon phone (microsoft/onnxruntime as stored in the search index: no release tag could be pinned
there, so each file below is the stored revision, not a tag's).  Libraries: build.py's ``--use_qnn`` defaults
to ``shared_lib`` (tools/ci_build/build_args.py; older build.py revisions refused Android with a shared QNN EP:
"Only support Android + QNN builds with QNN EP built as a static library."), and with ``--build_shared_lib``
cmake/onnxruntime_unittests.cmake links onnxruntime_perf_test against libonnxruntime.so, so bionic refuses to
start it without that library ("CANNOT LINK EXECUTABLE ...: library ... not found: needed by main
executable", linker_main.cpp / linker.cpp); the QNN EP's libonnxruntime_providers_shared.so and
libonnxruntime_providers_qnn.so are loaded from libonnxruntime.so's folder.  They come from
``tools.onnxruntime_libs`` (push_ort_libraries).  CPU fallback: see NO_CPU_FALLBACK; main.cc prints what
escapes on stderr and returns -1 (exit 255), a failed run prints "Run failed:..." and returns -1; ORT's own
log lines go to logcat on Android (core/platform/logging/make_platform_default_log_sink.cc, AndroidLogSink,
tag "onnxruntime"), so "QNN SetupBackend failed" is read there.  onnxruntime issues 21157 and 26845 show both
lines from real phones.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import tempfile
from pathlib import Path

from harness.devices.android import REMOTE_ROOT
from harness.profile.records import PROFILE_ITERATIONS_MAX, Profile
from harness.runners.base import (Measurement, RunnerFailure, RunSettings, check_command, logcat_of,
                                  missing_or_empty, push_file, run_reporting_pid, with_kernel_peak)

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


# With the QNN EP, ONNX Runtime hands every node the EP does not claim to the CPU EP, and when the EP cannot set
# up its backend at all it claims none: the session runs wholly on the CPU and the tool exits 0
# (qnn_execution_provider.cc GetCapability logs "QNN SetupBackend failed ..." and returns no capability).  This
# session config entry makes that an error instead (inference_session.cc: "This session contains graph nodes
# that are assigned to the default CPU EP, but fallback to CPU EP has been explicitly disabled by the user."),
# passed as perf_test takes session config entries: -C "<key>|<value>" (command_args_parser.cc, whose help
# gives this very key as its example).
NO_CPU_FALLBACK = "session.disable_cpu_ep_fallback|1"
CPU_FALLBACK_REFUSED = "fallback to CPU EP has been explicitly disabled"
SETUP_BACKEND_FAILED = "SetupBackend failed"
ORT_LOGCAT_TAG = "onnxruntime"  # on Android ORT logs through AndroidLogSink, tagged with the log category


def build_command(runner: str, model_path: str, iterations: int, provider: str = "cpu",
                  threads: int | None = None, qnn_lib_dir: str | None = None, test_data: bool = False,
                  htp_performance_mode: str = "burst", profile_prefix: str | None = None) -> list[str]:
    """``qnn_lib_dir``: where the QNN libraries were pushed, for ``-e qnn`` (``-i "backend_path|..."``, an
    option every perf-test revision read has, older and current: onnxruntime/test/perftest/command_args_parser.cc),
    which also runs with CPU fallback disabled (NO_CPU_FALLBACK): a QNN cell measures the NPU or fails.
    ``test_data``: inputs were staged beside the model (stage_test_data), so no ``-I``; ``-s`` still
    prints the percentiles.  ``profile_prefix``: a profiling run (``-p``: ORT's profiler on, its JSON written
    as PREFIX_<date>_<time>.json, see PROFILE_GLOB)."""
    if provider not in PROVIDERS:
        raise ValueError(f"provider {provider}: use one of {', '.join(PROVIDERS)}")
    argv = [runner, "-e", provider, "-m", "times", "-r", str(iterations), "-s" if test_data else "-I"]
    if threads:
        argv += ["-x", str(threads)]
    if provider == "qnn":
        if qnn_lib_dir is None:
            raise ValueError("-e qnn needs the folder the QNN libraries were pushed to")
        # -i takes every QNN option as 'key|value' pairs in one space-separated word; htp_performance_mode's
        # values are the plan's names (command_args_parser.cc's help: 'burst', 'balanced', ... 'default').
        options = f"backend_path|{qnn_lib_dir}/libQnnHtp.so htp_performance_mode|{htp_performance_mode}"
        argv += ["-i", options, "-C", NO_CPU_FALLBACK]
    if profile_prefix:
        argv += ["-p", profile_prefix]
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


ORT_LIBS_KEY = "onnxruntime_libs"
# bionic's linker before main (linker_main.cpp, linker.cpp), or a dlopen of ORT's provider libraries.
_NOT_LINKED = re.compile(r'CANNOT LINK EXECUTABLE "[^"]*": library "([^"]+)" not found')
_ORT_LIBRARY_MISSING = re.compile(r'library "(?:[^"]*/)?(libonnxruntime[\w.]*\.so)" not found')


# What a --build_shared_lib build links against, and what its shared QNN EP loads from that library's folder.
ORT_LIBRARY = "libonnxruntime.so"
QNN_EP_LIBRARIES = ("libonnxruntime_providers_shared.so", "libonnxruntime_providers_qnn.so")


def missing_ort_libraries(folder: Path, backend: str) -> list[str]:
    """The libraries a cell on ``backend`` needs that ``tools.onnxruntime_libs`` (``folder``) lacks."""
    needed = (ORT_LIBRARY, *(QNN_EP_LIBRARIES if backend == "ort-qnn" else ()))
    return [f"{name} ({why})" if why == "empty" else name
            for name in needed if (why := missing_or_empty(folder / name))]


def check_ort_libraries(config, backend: str, inventory_path: Path, line_of=lambda: None) -> None:
    """At plan load: a folder of ONNX Runtime libraries without what the cell's backend loads would fail every
    such cell on the phone ("CANNOT LINK EXECUTABLE", or the QNN EP not loaded), after the pushes.  ``line_of()``
    gives the inventory line of the key, read only for the message."""
    from harness.errors import UserError

    folder = config.tools.get(ORT_LIBS_KEY)
    missing = missing_ort_libraries(folder, backend) if folder is not None else []
    if missing:
        raise UserError(f"device {config.id}: tools.{ORT_LIBS_KEY} ({folder}) lacks {', '.join(missing)}, which "
                        f"onnxruntime_perf_test needs for {backend} cells.", path=inventory_path, line=line_of(),
                        fix="give the folder of your ONNX Runtime Android build's libraries (build.py "
                            "--android --build_shared_lib" + (" --use_qnn" if backend == "ort-qnn" else "") +
                            f"; they are in its build folder), or remove tools.{ORT_LIBS_KEY} for a binary that "
                            "links ONNX Runtime in.")


def ort_lib_folder(pushed: list[str]) -> str:
    """The folder (under REMOTE_ROOT) of the ONNX Runtime libraries pushed to these paths: named by them."""
    import hashlib

    return "ort-libs-" + hashlib.sha256("\n".join(pushed).encode()).hexdigest()[:16]


def used_ort_lib_folder(tools) -> str | None:
    """The folder push_ort_libraries makes for these tools, without pushing: what make_room must keep."""
    from harness.artifacts.manifest import sha256_of

    folder = tools.get(ORT_LIBS_KEY)
    libraries = sorted(folder.glob("*.so")) if folder is not None and folder.is_dir() else []
    if not libraries:
        return None
    return ort_lib_folder([f"{REMOTE_ROOT}/{sha256_of(local)}/{local.name}" for local in libraries])


def push_ort_libraries(device) -> str | None:
    """Push the .so files of ``tools.onnxruntime_libs`` into one folder on the phone (named by their contents);
    return the folder, or None when the inventory names none (a binary built without --build_shared_lib links
    ONNX Runtime in and needs none).  One folder, because ONNX Runtime loads its provider libraries
    (libonnxruntime_providers_shared.so, libonnxruntime_providers_qnn.so) from the folder libonnxruntime.so
    was loaded from, not from LD_LIBRARY_PATH."""
    folder = device.config.tools.get(ORT_LIBS_KEY)
    if folder is None:
        return None
    libraries = sorted(folder.glob("*.so")) if folder.is_dir() else []
    if not libraries:
        raise RunnerFailure("failed", f"tools.{ORT_LIBS_KEY} of device {device.id} ({folder}) is not a folder of "
                                      ".so files: give the folder of your ONNX Runtime Android build holding "
                                      "libonnxruntime.so (and, with --use_qnn, libonnxruntime_providers_*.so)")
    pushed = [(local.name, push_file(device, local)) for local in libraries]
    lib_dir = f"{REMOTE_ROOT}/{ort_lib_folder([remote for _, remote in pushed])}"
    device.pushed_folder(lib_dir)  # marked and touched: make_room counts it, least recently used first
    for name, remote in pushed:
        check_command(device.run(["cp", remote, f"{lib_dir}/{name}"], 60), f"cp of {name}")
    return lib_dir


def library_env(ort_lib_dir: str | None, qnn_lib_dir: str | None) -> dict[str, str] | None:
    """The loader paths: ONNX Runtime's libraries (linked at start) and the QNN SDK's (dlopened by the QNN EP,
    whose Skel the DSP loads from ADSP_LIBRARY_PATH)."""
    env = {}
    folders = [d for d in (ort_lib_dir, qnn_lib_dir) if d]
    if folders:
        env["LD_LIBRARY_PATH"] = ":".join(folders)
    if qnn_lib_dir:
        env["ADSP_LIBRARY_PATH"] = qnn_lib_dir
    return env or None


def check_run(result, logcat: str = "") -> None:
    """Fail the cell with the reason a phone's onnxruntime_perf_test gives: a library the linker could not find
    (named with the inventory key that brings it), an EP that did not take the graph, or any other failure."""
    if result.timed_out:
        check_command(result, "onnxruntime_perf_test")
    said = "\n".join((result.stdout, result.stderr, logcat))
    missing = _NOT_LINKED.search(result.stderr) or _ORT_LIBRARY_MISSING.search(result.stderr)
    if missing and result.exit_code:
        raise RunnerFailure("failed", f"onnxruntime_perf_test exited with code {result.exit_code}: {missing.group(0)}; "
                                      "this build links ONNX Runtime as shared libraries: set "
                                      f"tools.{ORT_LIBS_KEY} to the folder of your Android build holding "
                                      f"{missing.group(1)}", result.log())
    refused = next((line for line in said.splitlines() if CPU_FALLBACK_REFUSED in line), None)
    setup = next((line for line in said.splitlines() if SETUP_BACKEND_FAILED in line), None)
    if refused or setup:
        detail = " ".join(line.strip() for line in (setup, refused) if line)
        raise RunnerFailure("failed", "the QNN EP did not take the whole graph, and the CPU is not measured in its "
                                      f"place: {detail}", result.log() + _logcat_part(logcat))
    check_command(result, "onnxruntime_perf_test")


def _logcat_part(logcat: str) -> str:
    return "\n[logcat]\n" + logcat.strip() if logcat.strip() else ""


@dataclasses.dataclass(frozen=True)
class PerfTestOnPhone:
    """The tool on a phone with the libraries one backend loads, pushed once: every run of a cell (or of a
    pipeline's VAD stage, once per utterance) goes through :meth:`run`, so a QNN build is measured on the NPU
    or fails, never quietly on the CPU."""

    runner: str
    provider: str
    ort_lib_dir: str | None
    qnn_lib_dir: str | None

    def command(self, model_path: str, iterations: int, settings: RunSettings, test_data: bool,
                profile_prefix: str | None = None) -> list[str]:
        return build_command(self.runner, model_path, iterations, self.provider, settings.threads, self.qnn_lib_dir,
                             test_data=test_data, htp_performance_mode=settings.htp_performance_mode or "burst",
                             profile_prefix=profile_prefix)

    def run(self, device, argv: list[str], timeout_s: float):
        """Run the tool once and fail with its own reason (a QNN EP's is read from logcat)."""
        result, runner = run_reporting_pid(device, argv, timeout_s, library_env(self.ort_lib_dir, self.qnn_lib_dir))
        logcat = ""
        if self.provider == "qnn" and not result.timed_out:  # ORT's log lines (SetupBackend's) go to logcat on
            # Android, not to stderr: this run's own, so another process's "SetupBackend failed" fails no cell
            logcat = logcat_of(device, runner, f"{ORT_LOGCAT_TAG}:W")
        check_run(result, logcat)
        return result


def push_perf_test(device, backend: str) -> PerfTestOnPhone:
    """Push the tool, ONNX Runtime's libraries and, for ort-qnn, the QNN libraries (without them the QNN EP
    fails, or the tool quietly measures the CPU)."""
    from harness.runners.executor_runner import push_tool

    provider, qnn_dir = _PROVIDER_OF[backend], None
    runner = push_tool(device, "onnxruntime_perf_test")
    ort_dir = push_ort_libraries(device)
    if provider == "qnn":
        from harness.runners.qnn_executor_runner import push_qnn_libraries

        qnn_dir = push_qnn_libraries(device, with_executorch_backend=False)
    return PerfTestOnPhone(runner, provider, ort_dir, qnn_dir)


def _run_tool(device, model_path: str, artifact, settings: RunSettings, profile_prefix: str | None = None):
    """Push what the tool needs, run it once, and fail the cell with the tool's own reason."""
    tool = push_perf_test(device, artifact.backend)
    argv = tool.command(model_path, settings.iterations, settings, stage_test_data(device, model_path, artifact),
                        profile_prefix)
    return tool.run(device, argv, settings.timeout_s)


def warm_up_note(planned: int) -> str:
    """What the cell's warm-up was: PerformanceRunner::Run (performance_runner.cc) runs one inference with
    RunOneIteration(true /*isWarmup*/) before the timed ones, and no option of the tool (command_args_parser.cc)
    sets how many: the plan's warmup_iterations, stored with the cell, did not reach it."""
    return (f"warm-up: onnxruntime_perf_test's own single inference before the timed ones, not the plan's "
            f"warmup_iterations ({planned}): the tool has no option for more")


def measure(device, model_path: str, artifact, settings: RunSettings) -> Measurement:
    result = _run_tool(device, model_path, artifact, settings)
    try:
        measured = with_kernel_peak(parse(result.stdout), result)
    except ValueError as exc:
        raise RunnerFailure("failed", f"could not read onnxruntime_perf_test's summary ({exc})", result.log()) from None
    return dataclasses.replace(measured, notes=[*measured.notes, warm_up_note(settings.warmup_iterations)])


# ``-p PREFIX`` (command_args_parser.cc: "Specifies the profile name to enable profiling and dump the profile data
# to the file") becomes SessionOptions::EnableProfiling(PREFIX) in ort_test_session.cc, and ORT's profiler writes
# PREFIX_<date>_<time>.json when the session ends (the same file a host session's enable_profiling writes).
PROFILE_PREFIX = "ort"
PROFILE_GLOB = re.compile(rf"^{PROFILE_PREFIX}_.*\.json$")
# The tool runs the model once before the timed iterations ("First inference time cost"): left out, as a host
# profiling run leaves out its first inference.
PERF_TEST_WARMUPS = 1


def profile(device, model_path: str, artifact, settings: RunSettings) -> Profile:
    """One profiling run on the phone, after the cell's measured ones: the tool with ``-p`` in a folder of its own,
    its profile read back and parsed like a host session's (harness.profile.ort); each inference's latency is the
    session's own time of that run (the tool prints no per-inference latency)."""
    from harness.profile.ort import ort_run_durations, ort_run_totals, parse_ort_profile
    from harness.runners.phone_files import files_in, phone_folder, read_back

    profiled = dataclasses.replace(settings, iterations=min(settings.iterations, PROFILE_ITERATIONS_MAX))
    with phone_folder(device, "profile") as folder:
        _run_tool(device, model_path, artifact, profiled, profile_prefix=posixpath.join(folder, PROFILE_PREFIX))
        written = [name for name in files_in(device, folder) if PROFILE_GLOB.match(name)]
        if len(written) != 1:
            raise RunnerFailure("failed", f"onnxruntime_perf_test -p wrote {len(written)} profile files, not one "
                                          f"(in {folder}: {', '.join(written) or 'none'})")
        text = read_back(device, posixpath.join(folder, written[0]), "the ONNX Runtime profile").decode(
            "utf-8", errors="replace")
    try:
        operators = parse_ort_profile(text, PERF_TEST_WARMUPS)
        operators_ms = ort_run_totals(text, PERF_TEST_WARMUPS)
    except ValueError as exc:
        raise RunnerFailure("failed", f"could not read onnxruntime_perf_test's profile ({exc})") from None
    latency_ms = ort_run_durations(text, PERF_TEST_WARMUPS)
    return Profile(iterations=len(latency_ms), latency_ms=latency_ms, operators_ms=operators_ms, operators=operators)
