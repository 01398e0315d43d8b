"""Energy per inference on a phone, from its battery's own current and voltage, sampled through each run.

Where the numbers come from: the kernel's power supply class, ``/sys/class/power_supply/battery/``
(Documentation/ABI/testing/sysfs-class-power): ``current_now`` in microamps, ``voltage_now`` in microvolts,
``status`` one of "Charging", "Discharging", "Not charging", "Full", "Unknown".

The sign of ``current_now`` is not the same on every phone: the kernel documents negative for a discharging
battery since Linux 5.10 (commit 05f94eb98907, "power: supply: document current direction"), whose message
says fuel gauges report it three ways (negative on discharge, positive on discharge, always positive).  So the
sign is never read: a reading counts only while ``status`` says "Discharging", and then the battery supplies
the whole phone, whatever the sign: power is ``|current_now| x voltage_now``.  A phone that is charging (or
full, or held at a charge limit on its cable) draws from the charger, and the battery's current says nothing
about the phone's draw: its runs are marked "energy not measured: charging" rather than reported wrong.

Per run: the mean power of the readings taken while the runner ran, minus the idle power read just before it
started, times the run's duration, divided by what it computed (inferences; tokens for an LLM; utterances for
a transcription).  A phone's runner is one process from load to exit, so the run's energy includes its load and
warm-ups: the figure says so (``span``).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from harness.thermal.reading import ThermalSample

BATTERY = "/sys/class/power_supply/battery"
BATTERY_FILES = [f"{BATTERY}/{name}" for name in ("status", "current_now", "voltage_now")]
POWER = "power"  # a reading while discharging: the phone's draw in mW
NOT_DISCHARGING = "battery not discharging"  # a reading while charging, full or not charging: no draw to read
DISCHARGING = "Discharging"
CHARGING = "Charging"
UW_PER_MW = 1000.0


def battery_samples(grep_text: str) -> list[ThermalSample]:
    """The battery's reading from ``grep -s -H . FILE...`` over :data:`BATTERY_FILES`: one power sample (mW) while
    discharging, one "not discharging" sample (its status in the sensor name) otherwise, none when the phone has
    no such files or their values are not numbers."""
    values: dict[str, str] = {}
    for line in grep_text.splitlines():
        path, sep, value = line.partition(":")
        if sep and path.startswith(BATTERY + "/"):
            values[path.rsplit("/", 1)[1]] = value.strip()
    status = values.get("status")
    if status is None:
        return []
    if status != DISCHARGING:
        return [ThermalSample(0.0, f"battery ({status})", NOT_DISCHARGING, 0.0, "")]
    try:
        current_ua, voltage_uv = int(values["current_now"]), int(values["voltage_now"])
    except (KeyError, ValueError):
        return []
    return [ThermalSample(0.0, "battery", POWER, abs(current_ua) * voltage_uv / 1e6 / UW_PER_MW, "mW")]


@dataclass(frozen=True)
class RunEnergy:
    """The energy of one run (or a cell: the median of its runs), or why it was not measured."""

    mj_per_unit: float | None  # millijoules per ``unit``; None when not measured
    unit: str  # "inference", "token" (LLM cells) or "utterance" (transcription cells)
    idle_mw: float | None = None  # the phone's draw just before the runner started
    active_mw: float | None = None  # the mean draw while it ran
    units: int = 0  # what the run's energy was divided by
    span: str = "whole run (load and warm-ups included)"
    not_measured: str = ""  # why not ("charging", "battery Full", "no reading during the run")
    runs: int = 1  # runs measured (a cell's figure)
    runs_tried: int = 1  # runs that tried: a run with no draw above idle is not in the median

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunEnergy":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def text(self) -> str:
        """As a table cell shows it: "3.21 mJ/inference" or "energy not measured: charging"."""
        if self.mj_per_unit is None:
            return f"energy not measured: {self.not_measured}"
        shown = f"{self.mj_per_unit:.3g} mJ/{self.unit}"
        if self.runs < self.runs_tried:  # the median of fewer runs than were measured: say so, not in silence
            shown += f" ({self.runs} of {self.runs_tried} runs)"
        return shown


def _not_measured(unit: str, why: str, idle_mw: float | None = None) -> RunEnergy:
    return RunEnergy(None, unit, idle_mw=idle_mw, not_measured=why)


def run_energy(idle: list[ThermalSample], series: list[ThermalSample], units: int, unit: str) -> RunEnergy | None:
    """A run's energy per ``unit`` from the idle readings taken before it and the sampler's series through it
    (``t_s`` from the runner's start; the last reading is taken after it ended).  None when the device reports no
    battery at all (a host, an iPhone, a phone without /sys/class/power_supply/battery)."""
    battery = [s for s in [*idle, *series] if s.kind in (POWER, NOT_DISCHARGING)]
    if not battery:
        return None
    states = [s.sensor.partition("(")[2].rstrip(")") for s in battery if s.kind == NOT_DISCHARGING]
    if states:
        return _not_measured(unit, "charging" if CHARGING in states else f"battery {states[0]}")
    idle_mw = [s.value for s in idle if s.kind == POWER]
    if not idle_mw:
        return _not_measured(unit, "no idle reading before the run")
    power = [s for s in series if s.kind == POWER]
    end_s = max((s.t_s for s in series), default=0.0)
    during = [s.value for s in power if s.t_s < end_s] or [s.value for s in power]
    if not during or end_s <= 0 or units <= 0:
        return _not_measured(unit, "no battery reading during the run", statistics.fmean(idle_mw))
    idle_w, active = statistics.fmean(idle_mw), statistics.fmean(during)
    if active <= idle_w:
        return _not_measured(unit, "no draw above idle", idle_w)
    mj = (active - idle_w) * end_s / units  # mW x s = mJ
    return RunEnergy(mj, unit, idle_mw=idle_w, active_mw=active, units=units)


def cell_energy(runs: list[RunEnergy]) -> RunEnergy | None:
    """A cell's energy: the median of its measured runs; when none was measured, why the first was not."""
    if not runs:
        return None
    measured = [r for r in runs if r.mj_per_unit is not None]
    if not measured:
        return runs[0]
    median = lambda key: statistics.median(getattr(r, key) for r in measured)  # noqa: E731
    return RunEnergy(median("mj_per_unit"), measured[0].unit, idle_mw=median("idle_mw"),
                     active_mw=median("active_mw"), units=measured[0].units, span=measured[0].span,
                     runs=len(measured), runs_tried=len(runs))
