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
started, times a duration, divided by what was computed in it.  Two spans are possible, and each figure says which
(``span``):

* the **measured loop** (``span`` "measured loop"): where a run's measured iterations are one stretch at the end
  of its last runner process (executor_runner, qnn_executor_runner: load, warm-ups, then the measured iterations,
  then exit), the loop is taken as the last *sum of the measured iterations' times* seconds before the runner
  returned.  When at least :data:`MIN_LOOP_READINGS` battery readings fall inside that window, the figure is their
  mean draw above idle times that sum, divided by the measured iterations: the energy of one inference, with the
  load and warm-ups left out.
* the **whole run** (``span`` "whole run (load and warm-ups included)"), otherwise: the mean draw of every reading
  while the runner ran, above idle, times the run's duration, divided by everything its processes computed
  (warm-ups included; tokens for an LLM; utterances for a transcription).  ``span_why`` says why the measured
  loop was not used (too few readings in a short loop; a runner that starts a process per utterance or per
  generation, whose measured work is not one stretch).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, replace

from harness.thermal.reading import ThermalSample
from harness.words import counted

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


WHOLE_RUN = "whole run (load and warm-ups included)"  # a figure's span: every reading while the runner ran
MEASURED_LOOP = "measured loop"  # a figure's span: the readings inside the measured iterations only
# Readings inside the measured loop needed for its own figure: one reading is one instant (a moment of a spike, or
# the loop's first millisecond), two see the loop at least a sampling period apart; fewer fall back to the whole run.
MIN_LOOP_READINGS = 2


@dataclass(frozen=True)
class RunWork:
    """What a run computed, for its energy to be divided by (harness.run.cell says it from the runner's figures)."""

    unit: str  # "inference", "token" (LLM cells) or "utterance" (transcription cells)
    units: int  # every unit the run's processes computed, warm-ups included (the whole-run figure's divisor)
    measured_units: int = 0  # the measured iterations (the measured-loop figure's divisor)
    measured_s: float = 0.0  # their summed time: the last stretch of the run's last process
    not_one_stretch: str = ""  # why the measured iterations are not one stretch at the end of the run, if not


@dataclass(frozen=True)
class RunEnergy:
    """The energy of one run (or a cell: the median of its runs), or why it was not measured."""

    mj_per_unit: float | None  # millijoules per ``unit``; None when not measured
    unit: str  # "inference", "token" (LLM cells) or "utterance" (transcription cells)
    idle_mw: float | None = None  # the phone's draw just before the runner started
    active_mw: float | None = None  # the mean draw over the span
    units: int = 0  # what the span's energy was divided by
    span: str = WHOLE_RUN  # MEASURED_LOOP or WHOLE_RUN: what the figure covers
    not_measured: str = ""  # why not ("charging", "battery Full", "no reading during the run")
    runs: int = 1  # runs measured (a cell's figure)
    runs_tried: int = 1  # runs that tried: a run with no draw above idle is not in the median
    span_why: str = ""  # a whole-run figure: why the measured loop's was not used
    readings: int = 0  # the battery readings the figure averages

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunEnergy":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def measured_loop(self) -> bool:
        return self.span == MEASURED_LOOP

    @property
    def text(self) -> str:
        """As a table cell shows it: "3.21 mJ/inference", "3.21 mJ/inference (whole run)" or "energy not measured:
        charging"."""
        if self.mj_per_unit is None:
            return f"energy not measured: {self.not_measured}"
        shown = f"{self.mj_per_unit:.3g} mJ/{self.unit}"
        if not self.measured_loop:  # load and warm-ups are in it: never shown as if they were not
            shown += " (whole run)"
        if self.runs < self.runs_tried:  # the median of fewer runs than were measured: say so, not in silence
            shown += f" ({self.runs} of {self.runs_tried} runs)"
        return shown


def _not_measured(unit: str, why: str, idle_mw: float | None = None) -> RunEnergy:
    return RunEnergy(None, unit, idle_mw=idle_mw, not_measured=why)


# Readings before the runner returned needed for a whole-run figure: the first is taken as the runner starts (the
# phone still idle), so a run shorter than one sampling period has no reading of its draw at all.
MIN_RUN_READINGS = 2


def run_energy(idle: list[ThermalSample], series: list[ThermalSample], work: RunWork,
               ended_s: float | None = None, period_s: float | None = None) -> RunEnergy | None:
    """A run's energy per unit from the idle readings taken before it and the sampler's series through it
    (``t_s`` from the runner's start; the last reading is taken after it ended), over its measured loop when enough
    readings fall in it, else over the whole run.  ``ended_s``: when the runner returned, on the series' timeline
    (default: the last reading's time).  ``period_s``: the sampling period, named when a run was too short for it.
    None when the device reports no battery at all (a host, an iPhone, a phone without
    /sys/class/power_supply/battery)."""
    unit = work.unit
    battery = [s for s in [*idle, *series] if s.kind in (POWER, NOT_DISCHARGING)]
    if not battery:
        return None
    states = [s.sensor.partition("(")[2].rstrip(")") for s in battery if s.kind == NOT_DISCHARGING]
    if states:
        return _not_measured(unit, "charging" if CHARGING in states else f"battery {states[0]}")
    idle_mw = [s.value for s in idle if s.kind == POWER]
    if not idle_mw:
        return _not_measured(unit, "no idle reading before the run")
    idle_w = statistics.fmean(idle_mw)
    power = [s for s in series if s.kind == POWER]
    last_s = max((s.t_s for s in series), default=0.0)
    loop, why = _loop_readings(power, work, last_s if ended_s is None else ended_s)
    if loop:
        active = statistics.fmean(loop)
        if active <= idle_w:
            return _not_measured(unit, "no draw above idle in the measured loop", idle_w)
        mj = (active - idle_w) * work.measured_s / work.measured_units  # mW x s = mJ
        return RunEnergy(mj, unit, idle_mw=idle_w, active_mw=active, units=work.measured_units, span=MEASURED_LOOP,
                         readings=len(loop))
    during = [s.value for s in power if s.t_s < last_s]
    if not power or last_s <= 0 or work.units <= 0:
        return _not_measured(unit, "no battery reading during the run", idle_w)
    if len(during) < MIN_RUN_READINGS:  # only the reading at the runner's start: "no draw above idle" misled
        return _not_measured(unit, _too_few_readings(last_s if ended_s is None else ended_s, period_s), idle_w)
    active = statistics.fmean(during)
    if active <= idle_w:
        return _not_measured(unit, "no draw above idle", idle_w)
    mj = (active - idle_w) * last_s / work.units  # mW x s = mJ
    return RunEnergy(mj, unit, idle_mw=idle_w, active_mw=active, units=work.units, span_why=why,
                     readings=len(during))


def _too_few_readings(run_s: float, period_s: float | None) -> str:
    every = f", one reading every {period_s:g} s" if period_s else ""
    return f"too few battery readings during the run ({run_s:.3g} s run{every})"


def _loop_readings(power: list[ThermalSample], work: RunWork, ended_s: float) -> tuple[list[float], str]:
    """The draws read inside the measured loop (the last ``measured_s`` seconds before ``ended_s``), or none and why
    the whole run stands in for it."""
    if work.not_one_stretch:
        return [], work.not_one_stretch
    if work.measured_units <= 0 or work.measured_s <= 0:
        return [], "no measured iteration times"
    start_s = ended_s - work.measured_s
    inside = [s.value for s in power if start_s <= s.t_s < ended_s]
    if len(inside) < MIN_LOOP_READINGS:
        return [], (f"{counted(len(inside), 'battery reading')} in the {work.measured_s:.3g} s measured loop "
                    f"(at least {MIN_LOOP_READINGS} needed)")
    return inside, ""


def cell_energy(runs: list[RunEnergy]) -> RunEnergy | None:
    """A cell's energy: the median of its measured runs, of those measured over their loop when any was (a median
    never mixes the two spans); when none was measured, why the first was not (0 of the runs that tried)."""
    if not runs:
        return None
    measured = [r for r in runs if r.mj_per_unit is not None]
    if not measured:  # the first's why, counted as what it is: none of the runs that tried measured
        return replace(runs[0], runs=0, runs_tried=len(runs))
    measured = [r for r in measured if r.measured_loop] or measured
    median = lambda key: statistics.median(getattr(r, key) for r in measured)  # noqa: E731
    return RunEnergy(median("mj_per_unit"), measured[0].unit, idle_mw=median("idle_mw"),
                     active_mw=median("active_mw"), units=measured[0].units, span=measured[0].span,
                     runs=len(measured), runs_tried=len(runs), span_why=measured[0].span_why,
                     readings=sum(r.readings for r in measured))
