"""ExecuTorch's ``executor_runner`` (XNNPACK/portable): command and log parser.

On Android its log lines go to logcat under the tag ``ExecuTorch``, not stdout; on a
host they are printed with ET_LOG's prefix.  The parser looks for the messages
wherever they sit in a line, so both work.  There is no warm-up flag: warm-ups are
a separate invocation.
"""

from __future__ import annotations

import re

from harness.runners.base import Measurement, RunnerFailure, RunSettings, check_command, push_file

NAME = "android-executor-runner"
TASK = "latency"

_LOADED = re.compile(r"Model loaded in ([\d.]+) ms")
_ITERATION = re.compile(r"Iteration (\d+) of (\d+): ([\d.]+) ms")
_TOTAL = re.compile(r"Model executed successfully (\d+) time\(s\) in ([\d.]+) ms")


def build_command(runner: str, model_path: str, iterations: int, threads: int | None = None) -> list[str]:
    argv = [runner, "--model_path", model_path, "--num_executions", str(iterations), "--print_output", "none"]
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
    """Warm-up invocation, clear logcat, measured invocation, read the ExecuTorch log."""
    runner = push_tool(device, "executor_runner")
    if settings.warmup_iterations:
        warm = device.run(build_command(runner, model_path, settings.warmup_iterations, settings.threads),
                          settings.timeout_s)
        check_command(warm, "executor_runner (warm-up)")
    device.run(["logcat", "-c"], 30)
    result = device.run(build_command(runner, model_path, settings.iterations, settings.threads), settings.timeout_s)
    check_command(result, "executor_runner")
    log = device.run(["logcat", "-d", "-s", "ExecuTorch:I"], 60).stdout
    try:
        return parse(log)
    except ValueError as exc:
        raise RunnerFailure("failed", f"could not read executor_runner's log ({exc})", log) from None


def push_tool(device, name: str) -> str:
    """Push a user-supplied benchmark binary named in the inventory's ``tools``; return its path on the phone."""
    tool = device.config.tools.get(name)
    if tool is None:
        raise RunnerFailure("failed", f"device {device.id} has no tools.{name} in the inventory "
                                      f"(the path of an arm64 {name} build to push)")
    remote = push_file(device, tool)
    device.run(["chmod", "755", remote], 30)
    return remote
