"""Host programs standing in for the phone's benchmark binaries.

Each really runs the pushed model on the host CPU (ExecuTorch runtime / onnxruntime,
through the host worker) and prints what the real binary prints.  Run as
``python -m harness.sim.fake_runners NAME ARGS...``.

Lines the real binary writes through ET_LOG (which Android sends to logcat, tag
``ExecuTorch``) are printed with the :data:`LOGCAT` prefix; the simulated shell moves
them to the phone's logcat and leaves the rest on stdout.  Lines a library logs to logcat in every build
(ONNX Runtime's) carry their own tag and priority (:data:`TAGGED_LOGCAT_LINE`).  A binary's stand-in may list the
shared libraries it is linked against; :func:`link` refuses to start it without them, as bionic's linker does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import posixpath
import re
import sys
import time
from pathlib import Path


def measure(*args):
    """The host worker's measurement (imported on first use: a runner on "silicon" never needs numpy)."""
    from harness.runners.host_worker import measure as host_measure

    return host_measure(*args)


LOGCAT = "<<logcat>> "  # not a control character: str.splitlines() would split on one
# A line a library sends to logcat in every build, with its own tag and priority (ONNX Runtime's AndroidLogSink).
TAGGED_LOGCAT_LINE = re.compile(r"<<logcat:([\w.-]+):([VDIWEF])>> (.*)\n")


class GflagsParser(argparse.ArgumentParser):
    """Flags the way gflags treats them: an unknown flag is an error that exits 1, not argparse's 2."""

    def error(self, message: str):
        unknown = message.split(":", 1)[-1].split()
        flag = unknown[0].lstrip("-") if unknown else message
        print(f"ERROR: unknown command line flag '{flag}'", file=sys.stderr)
        sys.exit(1)


# pytorch/executorch commit c26a4e38fd ("feat: add benchmark arg", Dec 2025): whisper's main.cpp with --benchmark,
# a pull request's commit that no branch or release contains; a phone can carry a runner built from it.
WHISPER_BENCHMARK_PR = "c26a4e38fd"


def version() -> tuple[int, ...]:
    """The upstream release this simulated binary plays (the phone sets it per binary; see phone.DEFAULT_VERSIONS);
    a commit label (a build from an unreleased commit) plays the newest release, 1.4."""
    label = os.environ.get("HARNESS_SIM_VERSION", "1.4")
    return tuple(int(x) for x in label.split(".")) if label.replace(".", "").isdigit() else (1, 4)


def on_silicon(iterations: int) -> dict | None:
    """With HARNESS_SIM_SILICON_MS set, the phone's own chip "runs" the model: each inference waits that long
    (+-5%), and the controller's CPU stays free, as in a real lab.  None otherwise (the model really runs)."""
    wait_ms = os.environ.get("HARNESS_SIM_SILICON_MS")
    if wait_ms is None:
        return None
    import random

    def one() -> float:
        ms = float(wait_ms) * random.uniform(0.95, 1.05)
        time.sleep(ms / 1000)
        return ms

    load_ms = one()
    samples = [one() for _ in range(iterations)]
    return {"load_ms": load_ms, "first_inference_ms": samples[0], "samples_ms": samples}


def log(message: str) -> None:
    """An ET_LOG(Info, ...) line: to logcat on the simulated phone."""
    print(LOGCAT + message, flush=True)


def executor_runner(argv: list[str]) -> int:
    """examples/portable/executor_runner/executor_runner.cpp: ``--print_output`` from v1.3.0, before it
    ``--print_all_output`` (a bool, off by default)."""
    p = GflagsParser()
    p.add_argument("--model_path", required=True)
    p.add_argument("--num_executions", type=int, default=1)
    p.add_argument("--cpu_threads", type=int, default=0)
    if version() >= (1, 3):
        p.add_argument("--print_output", default="none")
    else:
        p.add_argument("--print_all_output", default="false")
    p.add_argument("--etdump_path", default="model.etdump")  # every release read (v1.0.0-v1.4.0)
    a = p.parse_args(argv)
    log(f"Model file {a.model_path} is loaded.")
    if built_with_event_tracer():
        return _traced_executions(a)
    r = on_silicon(a.num_executions) or measure("pte", a.model_path, None, 0, a.num_executions, a.cpu_threads or None, 0)
    per_iteration = version() >= (1, 3)  # "Model loaded in" and "Iteration i of n" lines from v1.3.0 (L468, L526)
    if per_iteration:
        log(f"Model loaded in {r['load_ms']:.6f} ms.")
    log("Using method forward")
    # The first inference is part of the real runner's loop; fold it in as iteration 1.
    samples = [r["first_inference_ms"]] + r["samples_ms"][1:]
    for i, ms in enumerate(samples, start=1):
        if per_iteration:
            log(f"Iteration {i} of {len(samples)}: {ms:.6f} ms")
    log(f"Model executed successfully {len(samples)} time(s) in {sum(samples):.6f} ms.")
    return 0


def built_with_event_tracer() -> bool:
    """Whether this binary's stand-in says it was built with the event tracer (sandbox.stand_in)."""
    from harness.sim.sandbox import EVENT_TRACER

    binary = os.environ.get("HARNESS_SIM_BINARY", "")
    return bool(binary) and on_phone(binary).is_file() and EVENT_TRACER in on_phone(binary).read_text()


def _traced_executions(a) -> int:
    """executor_runner.cpp built with ET_EVENT_TRACER_ENABLED: after the executions the ETDump goes to
    --etdump_path (fopen "w+"; where that fails, ET_LOG "Failed to open ETDump file at %s." and ET_CHECK_MSG
    aborts: SIGABRT, 134)."""
    log("Using method forward")
    samples, etdump = traced_run(a.model_path, a.num_executions)
    for i, ms in enumerate(samples, start=1):
        if version() >= (1, 3):
            log(f"Iteration {i} of {len(samples)}: {ms:.6f} ms")
    log(f"Model executed successfully {len(samples)} time(s) in {sum(samples):.6f} ms.")
    if not write_on_phone(a.etdump_path, etdump):
        log(f"Failed to open ETDump file at {a.etdump_path}.")
        return 134
    log(f"ETDump written to file '{a.etdump_path}'.")
    return 0


def traced_run(model: str, executions: int) -> tuple[list[float], bytes]:
    """The program run ``executions`` times through ExecuTorch's runtime on this CPU with its event tracer on (an
    ETDumpGen, as the phone binaries use): each execution's ms, and ExecuTorch's own ETDump of them."""
    import tempfile

    import numpy as np
    from executorch.extension.pybindings import portable_lib

    from harness.runners.host_worker import pte_inputs

    module = portable_lib._load_for_executorch(model, enable_etdump=True, debug_buffer_size=0)
    inputs = pte_inputs(module.method_meta("forward"), None, np.random.default_rng(0), [])
    samples = []
    for _ in range(executions):
        started = time.perf_counter()
        module.forward(inputs)
        samples.append((time.perf_counter() - started) * 1000)
    with tempfile.TemporaryDirectory() as scratch:
        written = Path(scratch) / "etdump.etdp"
        module.write_etdump_result_to_file(str(written))
        return samples, written.read_bytes()


# Hexagon versions by SoC, from Qualcomm's QNN SDK layout (lib/hexagon-vNN) as ExecuTorch's Qualcomm docs
# (docs/source/backends-qualcomm.md) name them; written here apart from the runner module's own table.
_SIM_HTP = {"SM8550": "V73", "SM8650": "V75", "SM8750": "V79", "SM8850": "V81"}


def phone_env(name: str) -> str:
    """A variable of the phone's environment for this binary (VAR=value before the command)."""
    return os.environ.get(f"HARNESS_SIM_ENV_{name}", "")


def _on_path(library: str, variable: str, separator: str) -> bool:
    return any(on_phone(folder).joinpath(library).is_file() for folder in phone_env(variable).split(separator) if folder)


def links_qnn_backend(binary_name: str) -> bool:
    """A runner built with ExecuTorch's QNN backend links libqnn_executorch_backend.so: before main, Android's
    linker needs it on LD_LIBRARY_PATH (else bionic's message on stderr, and exit 1)."""
    if _on_path("libqnn_executorch_backend.so", "LD_LIBRARY_PATH", ":"):
        return True
    print(f'CANNOT LINK EXECUTABLE "{binary_name}": library "libqnn_executorch_backend.so" not found: '
          "needed by main executable", file=sys.stderr)
    return False


def qnn_libraries_load() -> bool:
    """The QNN backend dlopens libQnnHtp.so (and the SoC's Stub) from LD_LIBRARY_PATH, and the DSP loads the
    SoC's Skel from ADSP_LIBRARY_PATH (';'-separated); False after the error is logged."""
    version = _SIM_HTP.get(os.environ.get("HARNESS_SIM_SOC", ""), "V75")
    for library in ("libQnnHtp.so", f"libQnnHtp{version}Stub.so"):
        if not _on_path(library, "LD_LIBRARY_PATH", ":"):
            log(f'[ERROR] [Qnn ExecuTorch]: Cannot Open QNN library {library}, with error: dlopen failed: '
                f'library "{library}" not found')
            return False
    if not _on_path(f"libQnnHtp{version}Skel.so", "ADSP_LIBRARY_PATH", ";"):
        log(f"[ERROR] [Qnn ExecuTorch]: (simulated) the DSP found no libQnnHtp{version}Skel.so on ADSP_LIBRARY_PATH")
        return False
    return True


QNN_DELEGATE_ID = b"QnnBackend\0\0\0\0"  # the tests' QNN programs: an XNNPACK program's delegate id, rewritten
XNNPACK_DELEGATE_ID = b"XnnpackBackend"


def program_flatbuffer(model_path: str) -> bytes:
    """The part of a .pte that names its delegates: the flatbuffer before its segments (the extended header "eh00"
    at byte 8 gives its size from the file's start, a little-endian uint64 at byte 16), or the whole file when it
    has no such header (executorch/exir/_serialize/_program.py, _ExtendedHeader).  A delegate's id is a string in the
    flatbuffer; its payload (the weights, most of a Whisper program's 230 MB) lives in the segments after it."""
    with open(model_path, "rb") as fh:
        head = fh.read(24)
        if head[8:12] != b"eh00":
            return head + fh.read()
        return head + fh.read(max(int.from_bytes(head[16:24], "little") - len(head), 0))


def on_htp(binary_name: str, model_path: str) -> str | bytes | None:
    """A program as the phone's HTP would run it, or None when its QNN libraries cannot be found (the error said).
    This machine has no HTP and cannot export a QNN program: the tests' QNN programs are XNNPACK programs with
    their delegate id rewritten (QNN_DELEGATE_ID), and once the libraries a runner on the phone needs for it are
    found (links_qnn_backend, qnn_libraries_load), the simulated HTP runs the XNNPACK program it was on the
    host CPU, from its rewritten bytes.  Any other program comes back as its path, for the runtime to load from the
    file as the phone's runner does (reading all of it first cost a Whisper transcription ~0.5-1.5 s)."""
    if QNN_DELEGATE_ID not in program_flatbuffer(model_path):
        return model_path
    if not (links_qnn_backend(binary_name) and qnn_libraries_load()):
        return None
    return Path(model_path).read_bytes().replace(QNN_DELEGATE_ID, XNNPACK_DELEGATE_ID)


@contextlib.contextmanager
def htp_program_file(binary_name: str, model_path: str):
    """on_htp for a runner that loads its program by path (TextLLMRunner): the program itself, or, for a QNN
    program, the one the simulated HTP runs, in a folder of the host's own removed when the block ends (nothing is
    left on the phone); None when its QNN libraries were not found."""
    import tempfile

    try:
        data = on_htp(binary_name, model_path)
    except OSError:
        data = model_path  # the runner's own load says what is wrong with the path
    if not isinstance(data, bytes):
        yield data
        return
    with tempfile.TemporaryDirectory() as scratch:  # the host's: fake runners run on the host
        runnable = Path(scratch) / Path(model_path).name
        runnable.write_bytes(data)
        yield str(runnable)


def qnn_executor_runner(argv: list[str]) -> int:
    """examples/qualcomm/executor_runner/qnn_executor_runner.cpp.  Before main, Android's linker needs
    libqnn_executorch_backend.so on LD_LIBRARY_PATH; the QNN backend then dlopens libQnnHtp.so (and its Stub)
    from there, and the DSP loads the SoC's Skel from ADSP_LIBRARY_PATH (';'-separated)."""
    if not links_qnn_backend("qnn_executor_runner"):
        return 1
    p = GflagsParser()
    p.add_argument("--model_path", required=True)
    p.add_argument("--iteration", type=int, default=1)
    p.add_argument("--warm_up", type=int, default=0)
    p.add_argument("--htp_performance_mode", type=int, default=0)
    p.add_argument("--output_folder_path", default="outputs")
    p.add_argument("--etdump_path", default="etdump.etdp")
    a = p.parse_args(argv)
    if not qnn_libraries_load():
        return 1
    # A QNN program runs on the phone's HTP, which this machine does not have: only "silicon" times it.
    r = on_silicon(a.iteration) or measure("pte", a.model_path, None, a.warm_up, a.iteration, None, 0)
    total = sum(r["samples_ms"])
    # No input list: upstream runs once, warms up, then times the iterations as one ET_LOG line.
    log("Input list not provided. Inputs prepared with default values set.")
    log("Model executed successfully.")
    log(f"Perform {a.warm_up} inferences for warming up")
    log(f"{a.iteration} inferences took {total:.6f} ms, avg {total / a.iteration:.6f} ms")
    # v1.1.0-v1.4.0 (~L725-735 at v1.4.0): built as backends/qualcomm/scripts/build.sh builds it (event tracer
    # on), it then writes its etdump to --etdump_path (default "etdump.etdp", relative to the working folder)
    # with an unchecked fopen: where it cannot write, fwrite gets a NULL FILE* and the process dies of SIGSEGV.
    log(f"Write etdump to {a.etdump_path}, Size = 4096")
    if not write_on_phone(a.etdump_path, b"\0" * 4096):
        return 139
    return 0


def on_phone(device_path: str) -> Path:
    """A path as the phone names it (relative: to the binary's working folder), in the simulated phone's storage."""
    absolute = posixpath.normpath(posixpath.join(os.environ.get("HARNESS_SIM_CWD", "/"), device_path))
    return Path(os.environ.get("HARNESS_SIM_ROOT", "/")) / absolute.lstrip("/")


def write_on_phone(device_path: str, data: bytes) -> bool:
    """Write a file where the binary would: only /data is writable on the phone (the sandbox's / is read-only)."""
    absolute = posixpath.normpath(posixpath.join(os.environ.get("HARNESS_SIM_CWD", "/"), device_path))
    target = on_phone(absolute)
    if not absolute.startswith("/data/") or not target.parent.is_dir():
        return False
    target.write_bytes(data)
    return True


def perf_test_feeds(model: str, session, generate: bool, free_dims: dict[str, int]) -> dict | None:
    """The tool's inputs, as onnxruntime/test/perftest reads them: with ``-I`` made up, each free dimension 1
    unless ``-f name:value`` names it (an unnamed one cannot be named); without, onnx_test_runner's
    ``test_data_set_*/input_*.pb`` beside the model, matched to the inputs by name.  None: no test data."""
    import numpy as np

    from harness.runners.host_worker import ORT_DTYPES

    if generate:
        rng, feeds = np.random.default_rng(), {}
        for arg in session.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else free_dims.get(d, 1) if isinstance(d, str) else 1
                     for d in arg.shape]
            dtype = np.dtype(ORT_DTYPES[arg.type])
            feeds[arg.name] = (rng.standard_normal(shape).astype(dtype) if dtype.kind == "f"
                               else rng.integers(0, 100, shape).astype(dtype))
        return feeds
    from onnx import load_tensor, numpy_helper

    sets = sorted(Path(model).parent.glob("test_data_set_*"))
    if not sets:
        return None
    tensors = [load_tensor(str(pb)) for pb in sorted(sets[0].glob("input_*.pb"))]
    return {t.name: numpy_helper.to_array(t) for t in tensors}


def needed_libraries() -> list[str]:
    """The shared libraries this binary is linked against: its stand-in's NEEDED lines (its DT_NEEDED)."""
    from harness.sim.sandbox import NEEDED

    binary = os.environ.get("HARNESS_SIM_BINARY", "")
    if not binary or not on_phone(binary).is_file():
        return []
    return [line[len(NEEDED):].strip() for line in on_phone(binary).read_text().splitlines() if line.startswith(NEEDED)]


def link(binary_name: str) -> tuple[dict[str, str], int]:
    """Android's linker before main: each needed library from LD_LIBRARY_PATH (the phone's system folders hold
    none of a benchmark's).  Returns where each was found, and 0; or 1 after bionic's message when one is not
    found: linker_main.cpp ``__linker_error("CANNOT LINK EXECUTABLE \"%s\": %s", argv0, ...)`` with linker.cpp's
    ``library "%s" not found: needed by main executable``, then exit(EXIT_FAILURE)."""
    found = {}
    for library in needed_libraries():
        folder = next((d for d in phone_env("LD_LIBRARY_PATH").split(":") if d and on_phone(d).joinpath(library).is_file()),
                      None)
        if folder is None:
            argv0 = os.environ.get("HARNESS_SIM_BINARY") or binary_name
            print(f'CANNOT LINK EXECUTABLE "{argv0}": library "{library}" not found: needed by main executable',
                  file=sys.stderr)
            return found, 1
        found[library] = folder
    return found, 0


# onnxruntime/test/perftest/main.cc: main() catches what escapes (a session that cannot be created), prints
# ex.what() on stderr and returns -1; a failed run prints "Run failed:..." with printf and returns -1 too.
# A phone's shell sees -1 as 255.
ORT_FAILED = 255
ORT_LOG_TAG = "onnxruntime"  # ORT's Android log sink tags each line with its category (android_log_sink.cc)
# inference_session.cc, when session.disable_cpu_ep_fallback is 1 and nodes were left to the CPU EP.
CPU_FALLBACK_REFUSED = ("This session contains graph nodes that are assigned to the default CPU EP, but fallback "
                        "to CPU EP has been explicitly disabled by the user.")
# onnxruntime/core/providers/qnn: the libraries a shared QNN EP is made of (build.py --use_qnn, whose default
# is shared_lib, with --build_shared_lib), loaded from the folder libonnxruntime.so was loaded from.
QNN_PROVIDER_LIBRARIES = ("libonnxruntime_providers_shared.so", "libonnxruntime_providers_qnn.so")


def ort_log(severity: str, location: str, message: str) -> None:
    """A line through ORT's logger on Android: to logcat, never stderr (make_platform_default_log_sink.cc picks
    AndroidLogSink under __ANDROID__), formatted by android_log_sink.cc: " [E:onnxruntime:LOGID, FILE:LINE
    FUNC] message" (the logger id is empty in the QNN EP's lines, as in onnxruntime issue 21157's log)."""
    print(f"<<logcat:{ORT_LOG_TAG}:{severity}>>  [{severity}:onnxruntime:, {location}] {message}", flush=True)


class PerfTestParser(argparse.ArgumentParser):
    """Bad arguments end as main.cc says: "See 'onnxruntime_perf_test --help'." on stderr and -1 (255)."""

    def error(self, message: str):
        print(f"{message}\nSee 'onnxruntime_perf_test --help'.", file=sys.stderr)
        sys.exit(ORT_FAILED)


def qnn_ep_takes_graph(backend: str, linked: dict[str, str], no_fallback: bool) -> int | None:
    """The QNN EP's setup, as onnxruntime does it on a phone.  None: the session may be created (on the NPU, or,
    with fallback allowed, wholly on the CPU after "QNN SetupBackend failed" went to logcat: exit 0).  A code:
    what the tool exits with, its error printed."""
    if "libonnxruntime.so" in linked:  # a shared ORT: the QNN EP is a provider library beside it
        folder = linked["libonnxruntime.so"]
        for library in QNN_PROVIDER_LIBRARIES:
            if not on_phone(folder).joinpath(library).is_file():
                print(f'dlopen failed: library "{folder}/{library}" not found', file=sys.stderr)
                return ORT_FAILED
    found = on_phone(backend).is_file() if backend.startswith("/") else _on_path(backend, "LD_LIBRARY_PATH", ":")
    if not found:  # dlopen: a path as given, a bare name from LD_LIBRARY_PATH
        # qnn_backend_manager.cc GetQnnInterfaceProvider: ORT_RETURN_IF(... "Unable to load backend, error: ",
        # error_msg, " ", DlError()); qnn_execution_provider.cc GetCapability: LOGS(logger, ERROR) << "QNN
        # SetupBackend failed " << rt.ErrorMessage(), and no node is claimed.
        ort_log("E", "qnn_execution_provider.cc:591 GetCapability",
                "QNN SetupBackend failed qnn_backend_manager.cc:56 GetQnnInterfaceProvider Unable to load backend, "
                f'error:  dlopen failed: library "{backend}" not found')
        return _cpu_fallback(no_fallback)
    version = _SIM_HTP.get(os.environ.get("HARNESS_SIM_SOC", ""), "V75")
    if not (_on_path(f"libQnnHtp{version}Stub.so", "LD_LIBRARY_PATH", ":")
            and _on_path(f"libQnnHtp{version}Skel.so", "ADSP_LIBRARY_PATH", ";")):
        # The backend loaded but cannot reach this chip's DSP (another SoC's Stub and Skel): the line of
        # onnxruntime issue 21157's log, from qnn_backend_manager.cc InitializeBackend.
        ort_log("E", "qnn_execution_provider.cc:591 GetCapability",
                "QNN SetupBackend failed qnn_backend_manager.cc:334 InitializeBackend Failed to initialize backend")
        return _cpu_fallback(no_fallback)
    return None


def _cpu_fallback(no_fallback: bool) -> int | None:
    """The QNN EP claimed no node: the CPU EP takes the graph (None: the tool goes on, and exits 0), unless
    session.disable_cpu_ep_fallback is 1: then session creation fails (inference_session.cc logs the error and
    returns it; main.cc prints it on stderr and returns -1)."""
    if not no_fallback:
        return None
    ort_log("E", "inference_session.cc Initialize", CPU_FALLBACK_REFUSED)  # its line number not read
    print(CPU_FALLBACK_REFUSED, file=sys.stderr)
    return ORT_FAILED


def profile_on(options, prefix: str) -> None:
    """``-p PREFIX``: ort_test_session.cc calls SessionOptions::EnableProfiling(PREFIX), so ONNX Runtime's own
    profiler writes its JSON (PREFIX_<date>_<time>.json) where the phone's path says (relative: the working
    folder).  A prefix outside the phone's writable storage gets no file, as the profiler's ofstream fails."""
    absolute = posixpath.normpath(posixpath.join(os.environ.get("HARNESS_SIM_CWD", "/"), prefix))
    if absolute.startswith("/data/") and on_phone(absolute).parent.is_dir():
        options.enable_profiling = True
        options.profile_file_prefix = str(on_phone(absolute))


def onnxruntime_perf_test(argv: list[str]) -> int:
    """A perf_test built as onnxruntime's build.py does for Android: with --build_shared_lib it needs
    libonnxruntime.so at start (its stand-in lists it as NEEDED; cmake/onnxruntime_unittests.cmake links
    onnxruntime_perf_test to onnxruntime when onnxruntime_BUILD_SHARED_LIB), and with -e qnn a shared QNN EP
    beside it (qnn_ep_takes_graph).  Session config entries come as -C "key|value ..." (command_args_parser.cc).
    Inputs as perf_test_feeds says; the model really runs on the host CPU through onnxruntime."""
    linked, failed = link("onnxruntime_perf_test")
    if failed:
        return failed
    p = PerfTestParser()
    p.add_argument("-e", default="cpu")
    p.add_argument("-m", default="times")
    p.add_argument("-r", type=int, default=1000)
    p.add_argument("-x", type=int, default=0)
    p.add_argument("-i", default="")
    p.add_argument("-C", default="")
    p.add_argument("-f", action="append", default=[])
    p.add_argument("-I", action="store_true")
    p.add_argument("-s", action="store_true")
    p.add_argument("-p", default="")
    p.add_argument("model")
    a = p.parse_args(argv)
    import numpy as np
    import onnxruntime as ort

    session_config = dict(pair.split("|", 1) for pair in a.C.split() if "|" in pair)
    if a.e == "qnn":
        options = dict(pair.split("|", 1) for pair in a.i.split() if "|" in pair)
        failed = qnn_ep_takes_graph(options.get("backend_path", "libQnnHtp.so"), linked,
                                    session_config.get("session.disable_cpu_ep_fallback") == "1")
        if failed is not None:
            return failed

    options = ort.SessionOptions()
    if a.x:
        options.intra_op_num_threads = a.x
    if a.p:
        profile_on(options, a.p)
    started = time.perf_counter()
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    created_s = time.perf_counter() - started
    free_dims = {k: int(v) for pair in " ".join(a.f).split() for k, v in [pair.rsplit(":", 1)]}
    feeds = perf_test_feeds(a.model, session, a.I, free_dims)
    if feeds is None:
        print(f"there is no test data for model {Path(a.model).parent.name}")
        return 1
    try:
        started = time.perf_counter()
        session.run(None, feeds)  # the warm-up run
        first_ms = (time.perf_counter() - started) * 1000
        times = []
        for _ in range(a.r):
            started = time.perf_counter()
            session.run(None, feeds)
            times.append(time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - ORT's own error text, as the tool prints it
        print(f"Run failed:{exc}")  # main.cc RunPerfTest: printf("Run failed:%s\n", ...); return -1
        return ORT_FAILED
    if a.p:
        session.end_profiling()  # as the tool's session does when it ends: the JSON is written now
    import resource

    s = np.asarray(times)
    total_label = "Average inference time cost total" if version() >= (1, 20) else "Average inference time cost"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"Session creation time cost: {created_s:.6f} s")
    print(f"First inference time cost: {int(first_ms)} ms")
    print(f"Total inference time cost: {s.sum():.6f} s")
    print(f"Total inference requests: {a.r}")
    print(f"{total_label}: {s.mean() * 1000:.6f} ms")
    print(f"Peak working set size: {peak} bytes")
    if version() >= (1, 20):  # current builds repeat the summary compactly
        print(f"Avg CPU usage:0\nPeak working set size:{peak}\nRuns:{a.r}")
    for label, q in (("Min", 0), ("Max", 100), ("P50", 50), ("P90", 90), ("P95", 95), ("P99", 99), ("P999", 99.9)):
        print(f"{label} Latency: {np.percentile(s, q):.6f} s")
    return 0


def _now_ms() -> float:
    return time.time() * 1000


def llama_main(argv: list[str]) -> int:
    """ExecuTorch's own LLM runner, not an imitation: examples/models/llama/main.cpp's flags (gflags) around
    ``TextLLMRunner``, the C++ runner ``llama_main`` wraps, through its Python bindings.  The runner itself
    prints the generated text and the ``PyTorchObserver`` line to stdout and its ET_LOG lines to stderr,
    exactly as the binary does; the program must be a real ExecuTorch LLM export (KV cache, metadata)."""
    p = GflagsParser()
    for flag, default in (("--model_path", "llama2.pte"), ("--tokenizer_path", "tokenizer.bin"),
                          ("--prompt", "The answer to the ultimate question is"), ("--data_path", "")):
        p.add_argument(flag, default=default)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seq_len", type=int, default=128)
    p.add_argument("--cpu_threads", type=int, default=-1)
    p.add_argument("--num_bos", type=int, default=0)
    p.add_argument("--num_eos", type=int, default=0)
    p.add_argument("--warmup", type=lambda v: v.lower() not in ("false", "0"), nargs="?", const=True, default=False)
    a = p.parse_args(argv)
    from harness.runners.host_llm_worker import _runner_module
    from harness.runtime import set_executorch_threads

    llm = _runner_module()
    set_executorch_threads(a.cpu_threads if a.cpu_threads > 0 else None)
    with htp_program_file("llama_main", a.model_path) as model_path:
        if model_path is None:  # its QNN libraries were not found: the loader or the backend said so
            return 1
        try:
            runner = llm.TextLLMRunner(model_path, a.tokenizer_path, a.data_path or None)
            if a.warmup:
                runner.generate(a.prompt, llm.GenerationConfig(seq_len=a.seq_len, temperature=a.temperature,
                                                               warming=True))
                runner.reset()
            runner.generate(a.prompt, llm.GenerationConfig(seq_len=a.seq_len, temperature=a.temperature,
                                                           num_bos=a.num_bos, num_eos=a.num_eos))
        except RuntimeError:
            log("Failed to create llama runner")  # main.cpp's message; the runner's own reasons went to stderr
            return 1
    sys.stdout.flush()
    return 0


# examples/models/whisper/main.cpp (094363b) hard-codes the decoder's first token: "All Whisper models from
# HuggingFace now use the v3 tokenizer format where token 50257 = <|endoftext|> and token 50258 =
# <|startoftranscript|>".  True of multilingual vocabularies; in English-only ones 50258 is <|en|>.
WHISPER_START_TOKEN = 50258


def whisper_runner(argv: list[str]) -> int:
    """ExecuTorch's Whisper runner: examples/models/whisper/main.cpp (094363b) around ``AsrRunner::transcribe``
    (extension/asr/runner/runner.cpp, 03d27e7), ported step for step onto ExecuTorch's Python runtime and the
    runner's own C++ tokenizer (pytorch_tokenizers' HFTokenizer), written from those sources alone.

    Audio through ``load_wav_audio_data`` (a WAV or an abort); the preprocessor program; ``encoder`` once, then
    ``text_decoder(token, encoder_out, cache_position)`` from token 50258, greedy, each new token's text
    printed as it comes (special tokens included: ``decode(prev, cur)`` does not skip them) until an EOS id;
    a token the tokenizer cannot decode is logged and skipped.  Every release, v1.1.0 to v1.4.0, ends with
    ``print_report(stats_)``, a PyTorchObserver line on stdout (extension/asr/runner/runner.cpp L374 at v1.3.0,
    seq2seq_runner.cpp L365 at v1.4.0), and has no ``--benchmark``; only a build of the unmerged commit
    c26a4e38fd has that flag, which adds ET_LOG timings."""
    p = GflagsParser()
    for flag, default in (("--model_path", "model.pte"), ("--data_path", ""), ("--tokenizer_path", "."),
                          ("--processor_path", ""), ("--audio_path", "")):
        p.add_argument(flag, default=default)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max_new_tokens", type=int, default=128)
    observer = True
    if os.environ.get("HARNESS_SIM_VERSION") == WHISPER_BENCHMARK_PR:
        p.add_argument("--benchmark", action="store_true")
    a = p.parse_args(argv)
    benchmark = getattr(a, "benchmark", False)
    if not a.audio_path:
        log("audio_path flag must be provided.")
        return 1
    with open(a.audio_path, "rb") as fh:
        head = fh.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":  # ET_CHECK_MSG: the message, then abort()
        print(f"F 00:00:00.000000 executorch:wav_loader.h:200] WAV header not detected in file: {a.audio_path}",
              file=sys.stderr)
        return 134
    import soundfile
    import torch
    from pytorch_tokenizers import CppHFTokenizer

    from harness.runtime import import_executorch_runtime

    audio = soundfile.read(a.audio_path, dtype="float32")[0]  # PCM16 / 32768, as wav_loader.h scales it
    log(f"First 2 values of audio data: {audio[0]:f}, {audio[1]:f}")
    runtime = import_executorch_runtime().Runtime.get()
    try:
        features = runtime.load_program(a.processor_path).load_method("forward").execute([torch.from_numpy(audio)])[0]
    except (RuntimeError, ValueError):
        log("Failed to load preprocessor module.")
        return 1
    load_start = _now_ms()
    try:
        program_source = on_htp("whisper_runner", a.model_path)
        if program_source is None:  # its QNN libraries were not found: the loader or the backend said so
            return 1
        program = runtime.load_program(program_source)
    except (RuntimeError, ValueError, OSError):
        log("Failed to load Whisper model.")
        return 1
    names = set(program.method_names)
    if not {"encoder", "text_decoder"} <= names:
        log(f"Required methods not found. encoder={int('encoder' in names)}, text_decoder={int('text_decoder' in names)}")
        log("Failed to load Whisper model.")
        return 1
    encoder, decoder = program.load_method("encoder"), program.load_method("text_decoder")
    tokenizer = CppHFTokenizer()
    try:
        tokenizer.load(a.tokenizer_path)  # a tokenizer.json, or a folder holding one
    except RuntimeError:
        log(f"Failed to create tokenizer from {a.tokenizer_path}")
        log("Failed to load Whisper model.")
        return 1
    eos = {tokenizer.eos_tok()}
    if "get_eos_ids" in names:  # llm_runner_helper's get_eos_ids: the program's own list wins
        eos = {int(t) for t in program.load_method("get_eos_ids").execute([])}
    load_end = _now_ms()
    if benchmark:
        load_ms = load_end - load_start
        log(f"Model load time: {load_ms:.2f} ms ({load_ms / 1000:.2f} seconds)")
    log(f"Using decoder_start_token_id={WHISPER_START_TOKEN}")
    inference_start = _now_ms()
    encoded = encoder.execute([features])
    if len(encoded) != 1:
        log(f"Encoder returned {len(encoded)} outputs; expected a single tensor.")
        log("Transcription failed.")
        return 1
    prompt_end = _now_ms()
    tokens, position, first_token_ms = [WHISPER_START_TOKEN], 0, None
    while len(tokens) - 1 < a.max_new_tokens:
        logits = decoder.execute([torch.tensor([[tokens[-1]]]), encoded[0], torch.tensor([position])])[0].reshape(-1)
        if a.temperature > 0:
            nxt = int(torch.multinomial(torch.softmax(logits.float() / a.temperature, -1), 1))
        else:
            nxt = int(logits.argmax())
        first_token_ms = first_token_ms or _now_ms()
        previous = tokens[-1]
        tokens.append(nxt)
        position += 1
        try:
            sys.stdout.write(tokenizer.decode(nxt))  # decode(prev, cur) looks only at cur
            sys.stdout.flush()
        except RuntimeError:
            log(f"Tokenizer failed to decode token pair ({previous}, {nxt}) with error 8")  # DecodeFailure
        if nxt in eos:
            break
    inference_end = _now_ms()
    print("", flush=True)
    generated = len(tokens) - 1
    if observer:
        stats = {"prompt_tokens": 0, "generated_tokens": generated, "model_load_start_ms": load_start,
                 "model_load_end_ms": load_end, "inference_start_ms": inference_start,
                 "inference_end_ms": inference_end, "prompt_eval_end_ms": prompt_end,
                 "first_token_ms": first_token_ms, "aggregate_sampling_time_ms": 0,
                 "SCALING_FACTOR_UNITS_PER_SECOND": 1000}
        print(f"PyTorchObserver {json.dumps(stats)}", flush=True)
    if benchmark:
        inference_ms = inference_end - inference_start
        log(f"Inference time: {inference_ms:.2f} ms ({inference_ms / 1000:.2f} seconds)")
        log(f"Generated tokens: {generated}")
        log(f"Tokens per second: {generated * 1000 / inference_ms:.2f}")
    return 0


RUNNERS = {"executor_runner": executor_runner, "qnn_executor_runner": qnn_executor_runner,
           "onnxruntime_perf_test": onnxruntime_perf_test, "llama_main": llama_main, "whisper_runner": whisper_runner}

if __name__ == "__main__":
    sys.exit(RUNNERS[sys.argv[1]](sys.argv[2:]))
