"""The small interface every device platform implements: facts, push, run, thermals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Protocol, runtime_checkable

from pydantic import AfterValidator, Field

from harness.thermal.reading import ThermalSample  # re-exported: the Device protocol returns them
from harness.vocab import Backend
from harness.yamlconf import StrictModel


def known_platform(value: str) -> str:
    """A platform is known when the device registry (harness.devices.PLATFORMS) has it."""
    from harness.devices import PLATFORMS

    if value not in PLATFORMS:
        raise ValueError(f"unknown platform '{value}' (known: {', '.join(PLATFORMS)})")
    return value


PLATFORM_DESCRIPTION = "What kind of device this is: host, android or ios."
# How a lost cell's reason begins when another controller took its device over mid-run (the phone's lock): the
# run's summary counts it as held by another controller, not as a device gone away.
TAKEN_OVER = "another controller took over this phone's lock"


class DeviceConfig(StrictModel):
    """Keys every device entry has; each platform's ``Config`` subclasses this to add its own."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$",
                    description="The device's name in plans and reports (letters, digits, . _ -).")
    platform: Annotated[str, AfterValidator(known_platform)] = Field(description=PLATFORM_DESCRIPTION)
    soc: str | None = Field(None, description="The system-on-chip (e.g. SM8650); a phone's is checked against "
                                              "what it reports; default: what the device reports.")
    labels: list[str] = Field([], description="Free tags, shown by `harness devices`.")
    backends: list[Backend] = Field(min_length=1, description="The runtimes this device can run builds with.")

    def expand(self) -> list["DeviceConfig"]:
        """The devices this entry stands for now: itself, unless the platform has wildcards (Android's
        ``serial: '*'``); each platform's Config owns its own."""
        return [self]


@dataclass(frozen=True)
class CommandResult:
    """What one command on a device did.  ``exit_code`` is None when it was killed on timeout."""

    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    # The command's peak resident memory as the device's kernel accounted it (Android: toybox time -v), else None.
    peak_rss_mb: float | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    LOG_KEEP_CHARS = 64 * 1024  # per stream, in a cell's log: a runner that floods its output keeps its ends

    def log(self) -> str:
        """stdout and stderr together, as a failed cell's log (each kept to its head and tail)."""
        parts = [f"$ {' '.join(self.argv)}"]
        if self.stdout.strip():
            parts.append(clip(self.stdout.rstrip(), self.LOG_KEEP_CHARS))
        if self.stderr.strip():
            parts.append("[stderr]\n" + clip(self.stderr.rstrip(), self.LOG_KEEP_CHARS))
        return "\n".join(parts)


def clip(text: str, keep_chars: int) -> str:
    """``text`` whole when short, else its first quarter and last three quarters of ``keep_chars``."""
    if len(text) <= keep_chars:
        return text
    head, tail = keep_chars // 4, keep_chars - keep_chars // 4
    return f"{text[:head]}\n[... {len(text) - head - tail} characters left out ...]\n{text[-tail:]}"


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
    runner becomes a failed cell, never a hung night.  :class:`BaseDevice` gives the
    parts most platforms share (``config``, ``pushes``, ``notes``, ``prepare``).
    """

    id: str
    config: DeviceConfig
    pushes: list[dict]  # one record per push: path, bytes, seconds, skipped (content already there)
    notes: list[str]  # things the next cell's log should say (a fallback taken, a warning)

    def reachable(self) -> tuple[bool, str]:
        """Whether the device answers now, and a one-line reason when not."""

    def prepare(self) -> tuple[bool, str]:
        """Get a reachable device ready for a run (the iPhone installs its benchmark app here)."""

    def make_room(self, needed: set[str]) -> None:
        """Keep what earlier runs pushed within the device's storage cap, never removing ``needed`` (sha256s)."""

    def facts(self) -> DeviceFacts:
        """Model, SoC, OS, and anything else that explains a number later."""

    def push(self, local: Path, sha256: str) -> str:
        """Make ``local`` available on the device; return its path there."""

    def run(self, argv: list[str], timeout_s: float, env: dict[str, str] | None = None) -> CommandResult:
        """Run a command (argument list, never a pasted string) with a mandatory timeout."""

    def sample_thermals(self) -> list[ThermalSample]:
        """One cheap reading of temperatures and clocks (t_s left at 0; the sampler stamps it)."""

    def start_thermal_series(self) -> None:
        """A cell's thermal series begins: its first reading must include the slow ones a device takes only
        now and then (Android's thermal status), so that no cell, however short, goes without them."""

    def close(self) -> None:
        """Release connections."""


class BaseDevice:
    """Defaults for the optional parts of :class:`Device`; platform classes inherit it."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self.id = config.id
        self.pushes: list[dict] = []
        self.notes: list[str] = []
        # Set by reachable(): the device is not there now (off, rebooting) rather than misconfigured, so the cells
        # it could not start are "lost" (--resume measures them), not "failed".
        self.absent = False
        # Commands whose output passed what the device keeps (its head and tail kept, the middle dropped): a runner
        # that printed more iterations than that returns fewer than were asked, and its cell says why.
        self.outputs_cut = 0

    def prepare(self) -> tuple[bool, str]:
        return True, "nothing to prepare"

    def make_room(self, needed: set[str]) -> None:
        """Remove what earlier runs left on the device beyond its storage cap, keeping ``needed`` (sha256s)."""

    def start_thermal_series(self) -> None:
        pass  # every reading is complete

    def sample_battery(self) -> list[ThermalSample]:
        """One reading of the battery's draw (harness/thermal/energy.py); none where the device reports none."""
        return []

    def drain_notes(self) -> list[str]:
        """The notes gathered since the last call (they go into one cell's log)."""
        notes, self.notes = self.notes, []
        return notes
