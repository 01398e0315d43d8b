"""ExecuTorch's ``executor_runner`` (XNNPACK/portable): command and log parser.

Source: examples/portable/executor_runner/executor_runner.cpp (pytorch/executorch tags v1.0.0 to v1.4.0, read
from the repository at each tag 2026-12-07).  Its messages (the first two from v1.3.0 on; before it, only the
total):
``Model loaded in %f ms.``, ``Iteration %u of %u: %f ms`` (1-based, ``i + 1``, in v1.3.0 and v1.4.0, the
releases that print it: the parser ignores the index anyway), ``Model executed successfully %u time(s) in %f ms.``;
flags ``--model_path --num_executions --cpu_threads`` and ``--print_output none|summary|all``
(a string on main, default ``summary``; v1.0-1.2 have the bool ``--print_all_output`` instead).

Its timings are ET_LOG lines, which go to logcat (tag ``ExecuTorch``) when the binary
was built with the Android logging backend (``--preset android-arm64-v8a``) and to stderr
otherwise, as ``I 00:00:00.088912 executorch:executor_runner.cpp:309] Iteration 0 of 4:
17.3161 ms``; a Release build may compile them out.  The runner reads stdout, stderr and
logcat alike (:func:`harness.runners.base.run_et_binary`) and the parser finds the
messages wherever they sit in a line.  There is no warm-up flag: warm-ups are the first executions of
the measured process (:func:`measure`).
"""

from __future__ import annotations

import posixpath
import re
import tempfile
from dataclasses import replace
from pathlib import Path

from harness.profile.etdump import read_etdump
from harness.profile.records import PROFILE_ITERATIONS_MAX, Profile
from harness.runners.base import (NO_LOG_HINT, Measurement, RunnerFailure, RunSettings, assumed_flags_note,
                                  check_command, help_answer, push_file, run_et_binary, with_kernel_peak)

NAME = "android-executor-runner"
TOOL = "executor_runner"
# `harness parse executor_runner`: on a phone, ET_LOG lines may go to logcat rather than stdout
PARSE_FIX = "check the tool name; on Android, where ET_LOG writes to logcat, save 'adb logcat -d -s ExecuTorch:I' to the file."
TASK = "latency"

_LOADED = re.compile(r"Model loaded in ([\d.]+) ms")
_ITERATION = re.compile(r"Iteration (\d+) of (\d+): ([\d.]+) ms")
_TOTAL = re.compile(r"Model executed successfully (\d+) time\(s\) in ([\d.]+) ms")


def build_command(runner: str, model_path: str, iterations: int, threads: int | None = None,
                  flags: set[str] | None = None) -> list[str]:
    """``flags``: what this binary accepts (:func:`accepted_flags`); None assumes the current release.
    ``--print_output`` exists from v1.3.0 (v1.0-1.2 have ``--print_all_output``, off by default), and gflags
    exits 1 on a flag it does not know, so it is passed only where it exists."""
    argv = [runner, "--model_path", model_path, "--num_executions", str(iterations)]
    if flags is None or "print_output" in flags:
        argv += ["--print_output", "none"]
    if threads:
        argv += ["--cpu_threads", str(threads)]
    return argv


def parse(text: str) -> Measurement:
    """Per-iteration samples when the runner prints them; otherwise the total, as its mean (and say so)."""
    loaded = _LOADED.search(text)
    samples = [float(m.group(3)) for m in _ITERATION.finditer(text)]
    total = _TOTAL.search(text)
    if not samples and total is None:
        raise ValueError("no 'Model executed successfully' or 'Iteration i of n' line: did the runner run?")
    extra, notes, summary = {}, [], {}
    if total is not None:
        runs, total_ms = int(total.group(1)), float(total.group(2))
        extra.update(executions=runs, total_ms=total_ms, mean_ms=total_ms / runs if runs else None)
        if not samples and runs:
            notes.append(f"this runner version prints only a total: {runs} executions in {total_ms} ms; "
                         "each run's centre is its mean, and there is no P95")
            summary = {"mean_ms": total_ms / runs}
    return Measurement(samples_ms=samples, summary_ms=summary, load_ms=float(loaded.group(1)) if loaded else None,
                       extra=extra, notes=notes)


def supports(platform: str, artifact) -> bool:
    # LLM and bundled ASR programs need their own runners (a prompt, or audio and a tokenizer).
    return (platform == "android" and artifact.format == "pte" and artifact.backend in ("xnnpack", "portable")
            and artifact.stage not in ("llm", "asr"))


def measure(device, model_path: str, artifact, settings: RunSettings) -> Measurement:
    """Warm-ups and measured iterations in one process where the release prints each iteration (v1.3.0 on, the
    releases with ``--print_output``): the first executions, the ones that pack XNNPACK's weights and fault the
    program's pages in, are the warm-ups.  Older releases print only a total, so their warm-ups stay a process
    of their own before the measured one (each measured process then starts cold; the cell says so)."""
    runner = push_tool(device, "executor_runner")
    flags, assumed = _flags(device, runner, settings)
    warmups = settings.warmup_iterations
    in_process = flags is None or "print_output" in flags
    try:
        if warmups and not in_process:
            warm = device.run(build_command(runner, model_path, warmups, settings.threads, flags), settings.timeout_s)
            check_command(warm, "executor_runner (warm-up)")
        executions = settings.iterations + (warmups if in_process else 0)
        said = run_et_binary(device, build_command(runner, model_path, executions, settings.threads, flags),
                             settings.timeout_s, "executor_runner")
        try:
            measured = parse(said.text)
        except ValueError as exc:
            raise RunnerFailure("failed", f"could not read executor_runner's log ({exc}); {NO_LOG_HINT}",
                                said.log()) from None
        if in_process:
            measured = _without_warmups(measured, warmups, said)
    except RunnerFailure as failure:
        raise _saying_assumed(failure, assumed) from None
    if assumed:
        measured.notes.append(assumed)
    if warmups and not in_process:
        measured.notes.append("warm-ups ran in a process of their own (this release prints only a total), "
                              "so each measured process started cold")
    return with_kernel_peak(measured, said.result)


# What the harness passes when a binary's --help told no flags: the current release's (build_command, flags None).
CURRENT_RELEASE_FLAGS = "v1.3.0 on (--print_output)"
_UNKNOWN_FLAG = "unknown command line flag"  # gflags' "ERROR: unknown command line flag 'NAME'", then exit 1


def _flags(device, runner: str, settings: RunSettings) -> tuple[set[str] | None, str]:
    """The binary's flags, and the line each of its cells carries when its --help told none ("" otherwise)."""
    answer = help_answer(device, runner, settings.timeout_s)
    if answer.flags is not None:
        return answer.flags, ""
    return None, assumed_flags_note(TOOL, answer, CURRENT_RELEASE_FLAGS)


def _saying_assumed(failure: RunnerFailure, assumed: str) -> RunnerFailure:
    """``failure`` with the assumed flags said in its log, and in its reason when a flag was refused: an older
    release that hangs on --help and rejects --print_output fails for that assumption, not for its build."""
    if not assumed:
        return failure
    reason = failure.reason
    if _UNKNOWN_FLAG in reason:
        reason = f"{reason} ({assumed.removeprefix(f'{TOOL}: ')})"
    return RunnerFailure(failure.status, reason, f"{assumed}\n{failure.log}")


def _without_warmups(measured: Measurement, warmups: int, said) -> Measurement:
    """The first ``warmups`` executions of the process as its warm-ups; the runner's total counts them too."""
    if len(measured.samples_ms) <= warmups:
        raise RunnerFailure("failed", f"executor_runner printed {len(measured.samples_ms)} iterations, not more than "
                                      f"the {warmups} warm-ups", said.log())
    samples = measured.samples_ms[warmups:]
    extra = {**measured.extra, "executions": len(samples), "total_ms": sum(samples),
             "mean_ms": sum(samples) / len(samples)}
    return replace(measured, samples_ms=samples, warmup_ms=measured.samples_ms[:warmups], extra=extra,
                   notes=[*measured.notes, f"the first {warmups} executions of the process were its warm-ups"])


# executor_runner.cpp (v1.0.0-v1.4.0): ``--etdump_path`` (default "model.etdump"), written after the executions only
# by a build with ET_EVENT_TRACER_ENABLED (EventTraceManager); other builds accept the flag and write nothing.
EVENT_TRACER_HINT = ("build it with the event tracer (cmake -DEXECUTORCH_BUILD_DEVTOOLS=ON "
                     "-DEXECUTORCH_ENABLE_EVENT_TRACER=ON) to get operator profiles on the phone")
ETDUMP_NAME = "run.etdump"


def profile(device, model_path: str, artifact, settings: RunSettings) -> Profile:
    """One profiling run on the phone, after the cell's measured ones: warm-ups and up to PROFILE_ITERATIONS_MAX
    executions in one process, the ETDump read as :func:`etdump_profile` says, the warm-ups left out.  Each
    inference's latency is the runner's own "Iteration i of n" line (v1.3.0 on; none before)."""
    runner = push_tool(device, "executor_runner")
    flags, _ = _flags(device, runner, settings)  # the cell's measured runs said what was assumed
    if flags is not None and "etdump_path" not in flags:
        raise RunnerFailure("failed", f"this executor_runner has no --etdump_path flag; {EVENT_TRACER_HINT}")
    warmups, iterations = settings.warmup_iterations, min(settings.iterations, PROFILE_ITERATIONS_MAX)
    argv = build_command(runner, model_path, warmups + iterations, settings.threads, flags)
    result, said = etdump_profile(device, argv, None, settings.timeout_s, artifact, warmups, "executor_runner")
    samples = [float(m.group(3)) for m in _ITERATION.finditer(said.text)][warmups:]
    return replace(result, latency_ms=samples) if len(samples) == result.iterations else result


def etdump_profile(device, argv: list[str], env: dict[str, str] | None, timeout_s: float, artifact, skip_runs: int,
                   what: str):
    """Run an ExecuTorch runner with ``--etdump_path`` in a fresh folder on the phone, read the ETDump back and
    read it with ExecuTorch's Inspector as on the host (with the build's ETRecord when one sits beside the .pte),
    the first ``skip_runs`` executions left out.  Returns the Profile (no latencies: the caller has them, or not)
    and what the runner said."""
    from harness.runners.host_python import etrecord_of
    from harness.runners.phone_files import files_in, phone_folder, read_back

    with phone_folder(device, "profile") as folder:
        etdump = posixpath.join(folder, ETDUMP_NAME)
        said = run_et_binary(device, [*argv, "--etdump_path", etdump], timeout_s, f"{what} (profiling run)", env=env)
        if ETDUMP_NAME not in files_in(device, folder):
            raise RunnerFailure("failed", f"{what} wrote no ETDump: {EVENT_TRACER_HINT}", said.log())
        data = read_back(device, etdump, "the ETDump")
    notes: list[str] = []
    etrecord = etrecord_of(artifact)
    with tempfile.TemporaryDirectory(prefix="harness-etdump-") as scratch:
        local = Path(scratch) / ETDUMP_NAME
        local.write_bytes(data)
        try:
            operators, operators_ms = read_etdump(local, str(etrecord) if etrecord else None, skip_runs, notes)
        except Exception as exc:  # noqa: BLE001 - the Inspector's own error on a damaged or foreign ETDump
            raise RunnerFailure("failed", f"could not read the ETDump of {what} ({type(exc).__name__}: "
                                          f"{str(exc)[:200]})", said.log()) from None
    if not operators:
        raise RunnerFailure("failed", f"the ETDump of {what} holds no operator events: {EVENT_TRACER_HINT}",
                            said.log())
    return Profile(iterations=len(operators_ms), operators_ms=operators_ms, operators=operators, notes=notes), said


def push_tool(device, name: str) -> str:
    """Push a user-supplied benchmark binary named in the inventory's ``tools``; return its path on the phone."""
    tool = device.config.tools.get(name)
    if tool is None:
        raise RunnerFailure("failed", f"device {device.id} has no tools.{name} in the inventory "
                                      f"(the path of an arm64 {name} build to push)")
    remote = push_file(device, tool)
    device.run(["chmod", "755", remote], 30)
    return remote
