"""The small interface every device platform implements: facts, push, run, thermals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CommandResult:
    """What one command on a device did.  ``exit_code`` is None when it was killed on timeout."""

    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def log(self) -> str:
        """stdout and stderr together, as a failed cell's log."""
        parts = [f"$ {' '.join(self.argv)}"]
        if self.stdout.strip():
            parts.append(self.stdout.rstrip())
        if self.stderr.strip():
            parts.append("[stderr]\n" + self.stderr.rstrip())
        return "\n".join(parts)


@dataclass(frozen=True)
class ThermalSample:
    """One reading of one sensor.  ``value`` is in ``unit`` as read, converted only when known."""

    t_s: float  # seconds since the cell started
    sensor: str  # e.g. "cpu-0-0 (thermal_zone3)", "battery", "cpu0.freq"
    kind: str  # "temp" | "freq" | "status"
    value: float
    unit: str  # "C", "kHz", "level"


@dataclass(frozen=True)
class DeviceFacts:
    """Facts measured from the device at the start of a run (not copied from the inventory)."""

    device_id: str
    platform: str
    simulated: bool
    facts: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Device(Protocol):
    """A device the harness can measure on.

    Every command goes through :meth:`run`, which always takes a timeout: a hung
    runner becomes a failed cell, never a hung night.
    """

    id: str

    def reachable(self) -> tuple[bool, str]:
        """Whether the device answers now, and a one-line reason when not."""

    def facts(self) -> DeviceFacts:
        """Model, SoC, OS, and anything else that explains a number later."""

    # Optional: ``prepare() -> tuple[bool, str]`` gets a reachable device ready for a run (the iPhone
    # installs its benchmark app there); the engine calls it when a platform defines it.

    def push(self, local: Path, sha256: str) -> str:
        """Make ``local`` available on the device; return its path there."""

    def run(self, argv: list[str], timeout_s: float, env: dict[str, str] | None = None) -> CommandResult:
        """Run a command (argument list, never a pasted string) with a mandatory timeout."""

    def sample_thermals(self) -> list[ThermalSample]:
        """One cheap reading of temperatures and clocks (t_s left at 0; the sampler stamps it)."""

    def close(self) -> None:
        """Release connections."""
