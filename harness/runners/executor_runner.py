"""ExecuTorch's ``executor_runner`` (XNNPACK/portable): command and log parser.

On Android its log lines go to logcat under the tag ``ExecuTorch``, not stdout; on a
host they are printed with ET_LOG's prefix.  The parser looks for the messages
wherever they sit in a line, so both work.  There is no warm-up flag: warm-ups are
a separate invocation.
"""

from __future__ import annotations

import re

from harness.runners.base import Measurement

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
    extra, notes = {}, []
    if total is not None:
        runs, total_ms = int(total.group(1)), float(total.group(2))
        extra.update(executions=runs, total_ms=total_ms, mean_ms=total_ms / runs if runs else None)
        if not samples:
            notes.append(f"this runner version prints only a total: {runs} executions in {total_ms} ms; "
                         "the mean stands in for per-iteration samples")
            samples = [total_ms / runs] if runs else []
    return Measurement(samples_ms=samples, load_ms=float(loaded.group(1)) if loaded else None, extra=extra, notes=notes)
