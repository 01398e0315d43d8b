"""ExecuTorch's ``qnn_executor_runner`` (Qualcomm QNN HTP): libraries, command, and output parser.

Formats from examples/qualcomm/executor_runner/qnn_executor_runner.cpp (pytorch/executorch main, the
revision with BackendOptions and ``--htp_performance_mode``): without an input list the runner executes
once, warms up ``--warm_up`` times, then times ``--iteration`` executions as one ET_LOG line,
``"%d inferences took %f ms, avg %f ms"``; with an input list it logs ``"%d inference took ..."`` per
input and ``"Total %d inference took %f ms, avg %f ms"`` at the end.  ET_LOG goes to logcat or
stderr depending on the build, so both are read.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.devices.android import REMOTE_ROOT

from harness.vocab import HTP_PERFORMANCE_MODES
from harness.runners.base import (NO_LOG_HINT, Measurement, RunnerFailure, RunSettings, missing_or_empty,
                                  run_et_binary, with_kernel_peak)

NAME = "android-qnn-executor-runner"
TOOL = "qnn_executor_runner"
TASK = "latency"

# Hexagon Tensor Processor version by Snapdragon SoC.
HTP_VERSION = {"SM8550": "v73", "SM8650": "v75", "SM8750": "v79", "SM8850": "v81"}
_TOTAL = re.compile(r"Total (\d+) inference took ([\d.]+) ms, avg ([\d.]+) ms")  # with an input list
_NO_LIST = re.compile(r"(\d+) inferences took ([\d.]+) ms, avg ([\d.]+) ms")  # without one (the harness's way)


def qnn_libraries(soc: str) -> list[str]:
    """The QNN SDK files a phone with this SoC needs, relative to the SDK root (``$QNN_SDK_ROOT``), laid out as
    the SDK ships them and as ExecuTorch's docs push them (docs/source/backends-qualcomm.md): the Android-side
    libraries in ``lib/aarch64-android/``, the DSP-side Skel in ``lib/hexagon-vNN/unsigned/``."""
    version = HTP_VERSION.get(soc.upper())
    if version is None:
        raise ValueError(f"unknown Snapdragon SoC {soc}: known {', '.join(HTP_VERSION)}")
    v = version.upper()
    android = "lib/aarch64-android"
    return [f"{android}/libQnnHtp.so", f"{android}/libQnnHtp{v}Stub.so", f"{android}/libQnnHtpPrepare.so",
            f"{android}/libQnnSystem.so", f"lib/hexagon-{version}/unsigned/libQnnHtp{v}Skel.so"]


def qnn_files(config, with_executorch_backend: bool) -> list[Path]:
    """The local files a QNN cell of this device pushes; ValueError says what is missing or empty, every file at
    once (a person fixing them one run at a time needed five runs).  One rule for the plan's check at load
    (check_qnn_libraries) and the push.  With no ``soc`` in the inventory yet (it is read from the phone when
    the phone is opened), only the SoC-independent libraries can be checked."""
    tools, soc = config.tools, config.soc or ""
    sdk = tools.get("qnn_sdk")
    if sdk is None:
        raise ValueError(f"device {config.id} has no tools.qnn_sdk: the QNN SDK root (the folder holding "
                         "lib/aarch64-android and lib/hexagon-vNN)")
    names = qnn_libraries(soc) if soc else [rel for rel in qnn_libraries("SM8650") if "v75" not in rel.lower()]
    files = [Path(sdk) / rel for rel in names]
    if with_executorch_backend:
        backend = tools.get("qnn_executorch_backend")
        if backend is None:
            raise ValueError(f"device {config.id} has no tools.qnn_executorch_backend: the "
                             "libqnn_executorch_backend.so of your ExecuTorch Android build "
                             "(build-android/backends/qualcomm/)")
        files.append(Path(backend))
    wrong = [f"{local} ({why})" for local in files if (why := missing_or_empty(local))]
    if wrong:
        htp = f" (HTP {HTP_VERSION[soc.upper()]})" if soc else ""
        raise ValueError(f"QNN files missing or empty for {soc.upper() or 'device ' + config.id}{htp}: "
                         f"{', '.join(wrong)} (is tools.qnn_sdk the SDK root, and is the inventory's soc the phone's?)")
    return files


def check_qnn_libraries(config, backend: str, inventory_path: Path, line_of=lambda: None) -> None:
    """At plan load: without its QNN libraries every qnn / ort-qnn cell of the device failed after the night had
    started.  ``line_of()`` gives the inventory line of the device's tools, read only for the message."""
    from harness.errors import UserError

    try:
        qnn_files(config, with_executorch_backend=backend == "qnn")
    except ValueError as exc:
        raise UserError(f"{exc}; every {backend} cell of device {config.id} needs them.", path=inventory_path,
                        line=line_of(), fix="name the QNN SDK root as tools.qnn_sdk (and, for qnn, your "
                                            "ExecuTorch build's libqnn_executorch_backend.so as "
                                            "tools.qnn_executorch_backend) in the inventory.") from None


def push_qnn_libraries(device, with_executorch_backend: bool) -> str:
    """Push the SoC's QNN libraries (and ExecuTorch's QNN backend library, which comes from the ExecuTorch
    Android build, not the SDK) into one folder on the phone; return the folder."""
    from harness.runners.base import push_file

    soc = device.config.soc or ""
    try:
        files = qnn_files(device.config, with_executorch_backend)
        qnn_libraries(soc)  # the SoC is known by now (read from the phone): an unknown one has no libraries
    except ValueError as exc:
        raise RunnerFailure("failed", str(exc)) from None
    lib_dir = f"{REMOTE_ROOT}/{qnn_lib_folder(soc)}"
    device.pushed_folder(lib_dir)  # marked and touched: make_room counts it, least recently used first
    for local in files:
        device.run(["cp", push_file(device, local), f"{lib_dir}/{local.name}"], 60)
    return lib_dir


def library_env(lib_dir: str) -> dict[str, str]:
    """Where the loader finds the QNN libraries (and ExecuTorch's QNN backend library), and the DSP the Skel."""
    return {"LD_LIBRARY_PATH": lib_dir, "ADSP_LIBRARY_PATH": lib_dir}


def push_libraries_for(device, artifact) -> dict[str, str] | None:
    """For an ExecuTorch runner of a chain's part (whisper_runner, llama_main): a qnn build's libraries pushed as
    for qnn_executor_runner, and the environment that finds them; None for a build on any other backend (its
    runner loads nothing more)."""
    if artifact.backend != "qnn":
        return None
    return library_env(push_qnn_libraries(device, with_executorch_backend=True))


def qnn_lib_folder(soc: str) -> str:
    """The folder (under REMOTE_ROOT) of the QNN libraries for a SoC: one per HTP version."""
    return "qnn-" + HTP_VERSION[soc.upper()]


def build_command(runner: str, model_path: str, iterations: int, warmup: int, lib_dir: str,
                  performance_mode: str = "burst") -> tuple[list[str], dict[str, str]]:
    """argv and environment (the loader and the DSP must find the pushed QNN libraries).  ``performance_mode``:
    the plan's HTP power mode by name, passed as ExecuTorch's number (``--htp_performance_mode``, 0-8)."""
    argv = [runner, "--model_path", model_path, "--iteration", str(iterations), "--warm_up", str(warmup),
            "--htp_performance_mode", str(HTP_PERFORMANCE_MODES[performance_mode])]
    return argv, library_env(lib_dir)


def parse(text: str, inference_speed_txt: str | None = None) -> Measurement:
    """The runner's total line; ``inference_speed.txt`` (average ms) as a cross-check when given."""
    m = _TOTAL.search(text) or _NO_LIST.search(text)
    if m is None:
        raise ValueError("no 'N inferences took X ms, avg Y ms' (or 'Total N inference took ...') line")
    runs, total_ms, avg_ms = int(m.group(1)), float(m.group(2)), float(m.group(3))
    extra = {"executions": runs, "total_ms": total_ms, "mean_ms": avg_ms}
    if inference_speed_txt is not None and inference_speed_txt.strip():
        extra["inference_speed_txt_ms"] = float(inference_speed_txt.split()[0])
    return Measurement(samples_ms=[], summary_ms={"mean_ms": avg_ms}, extra=extra,
                       notes=["qnn_executor_runner reports an average per invocation only: each run's centre is "
                              "its mean, and there is no P95"])


def supports(platform: str, artifact) -> bool:
    return platform == "android" and artifact.format == "pte" and artifact.backend == "qnn"


def measure(device, model_path: str, artifact, settings: RunSettings) -> Measurement:
    """Push the QNN libraries for the phone's SoC into one folder, then run with the loader paths set."""
    from harness.runners.executor_runner import push_tool

    lib_dir = push_qnn_libraries(device, with_executorch_backend=True)
    runner = push_tool(device, "qnn_executor_runner")
    argv, env = build_command(runner, model_path, settings.iterations, settings.warmup_iterations, lib_dir,
                              settings.htp_performance_mode or "burst")
    said = run_et_binary(device, argv, settings.timeout_s, "qnn_executor_runner", env=env)
    try:
        return with_kernel_peak(parse(said.text), said.result)
    except ValueError as exc:
        raise RunnerFailure("failed", f"could not read qnn_executor_runner's output ({exc}); {NO_LOG_HINT}",
                            said.log()) from None
