"""What a runner returns and how it fails.

A runner module knows one benchmark binary: how to build its command, and how to
parse what it prints (a pure function from text to a :class:`Measurement`).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from harness.devices.base import CommandResult


@dataclass(frozen=True)
class Measurement:
    """Every timing a runner got from one cell, in milliseconds; nothing aggregated away."""

    samples_ms: list[float]
    warmup_ms: list[float] = field(default_factory=list)
    load_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_mb: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    transcripts: list[dict] = field(default_factory=list)  # transcription cells: one record per utterance


@dataclass(frozen=True)
class RunSettings:
    """How much to run: the plan's numbers for one cell."""

    warmup_iterations: int
    iterations: int
    timeout_s: float
    threads: int | None = None
    seed: int = 0


class RunnerFailure(Exception):
    """The benchmark did not produce a measurement; ``status`` is failed, timeout or crashed."""

    def __init__(self, status: str, reason: str, log: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.log = log


def check_command(result: CommandResult, what: str) -> None:
    """Raise a RunnerFailure that names timeouts and signals (exit 139 is a SIGSEGV on a shell)."""
    if result.timed_out:
        raise RunnerFailure("timeout", f"{what} did not finish within {result.duration_s:.0f} s and was killed",
                            result.log())
    code = result.exit_code
    if code is None or code == 0:
        return
    signum = -code if code < 0 else code - 128 if code > 128 else None
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        raise RunnerFailure("crashed", f"{what} was killed by {name} (exit {code})", result.log())
    raise RunnerFailure("failed", f"{what} exited with code {code}", result.log())
