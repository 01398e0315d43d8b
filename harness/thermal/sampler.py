"""Background thermal sampling beside a running cell, and the cooldown gate before it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from harness.thermal.reading import ThermalSample

# Sensor names that describe the CPU on Linux and Android thermal zones ("soc_dts" is Intel's SoC sensor).
_CPU_WORDS = ("cpu", "tsens", "x86_pkg", "coretemp", "soc_dts")
# Zones that are not temperatures of the chip at all: on Qualcomm phones "soc" and "socd" are the battery's
# state of charge (a percentage, from the fuel gauge), beside ibat/vbat/bms zones.
_BATTERY_TYPES = ("soc", "socd")
_BATTERY_WORDS = ("batt", "bms", "ibat", "vbat")


def is_battery_zone(sensor: str) -> bool:
    """Whether a sensor (``"type (thermal_zoneN)"`` or a name) reads the battery, not the chip."""
    kind = sensor.split(" (", 1)[0].strip().lower()
    return kind in _BATTERY_TYPES or any(w in kind for w in _BATTERY_WORDS)


def hottest_cpu_c(samples: list[ThermalSample]) -> float | None:
    """The hottest CPU-like temperature in one reading (any chip temperature if none looks like a CPU)."""
    temps = [s for s in samples if s.kind == "temp" and not is_battery_zone(s.sensor)]
    cpu = [s.value for s in temps if any(w in s.sensor.lower() for w in _CPU_WORDS)]
    values = cpu or [s.value for s in temps]
    return max(values) if values else None


class ThermalSampler:
    """Calls ``device.sample_thermals()`` every ``period_s`` seconds on a daemon thread.

    Use as a context manager around the measured work; ``samples`` holds the series
    with ``t_s`` relative to the start.  A failing read is recorded once and sampling
    stops, rather than failing the measurement it is only there to explain.
    """

    def __init__(self, device, period_s: float) -> None:
        self.device = device
        self.period_s = period_s
        self.samples: list[ThermalSample] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="thermal-sampler", daemon=True)
        self._t0 = 0.0
        self.t0_epoch_s = 0.0  # wall clock at t_s = 0, to place runner-reported times on the series

    def _loop(self) -> None:
        while True:
            self._read_once()
            if self.error or self._stop.wait(self.period_s):
                return

    def _read_once(self) -> None:
        t_s = time.monotonic() - self._t0
        try:
            readings = self.device.sample_thermals()
        except Exception as exc:  # noqa: BLE001 - telemetry must not fail the cell
            self.error = f"thermal sampling stopped: {exc}"
            return
        self.samples.extend(replace(s, t_s=round(t_s, 3)) for s in readings)

    def __enter__(self) -> "ThermalSampler":
        # Devices without slow readings (and test stand-ins) need not know about series.
        getattr(self.device, "start_thermal_series", lambda: None)()
        self._t0 = time.monotonic()
        self.t0_epoch_s = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, self.period_s * 2))
        if not self.error:
            self._read_once()  # one reading at the end, so short cells still have a before/after


@dataclass(frozen=True)
class CooldownResult:
    waited_s: float
    start_temp_c: float | None
    end_temp_c: float | None
    reached: bool
    note: str


def wait_for_cooldown(device, max_temp_c: float, timeout_s: float, poll_s: float,
                      sleep=time.sleep, clock=time.monotonic) -> CooldownResult:
    """Block until the hottest CPU sensor is below ``max_temp_c`` or ``timeout_s`` passes."""
    started = clock()
    first = hottest_cpu_c(device.sample_thermals())
    if first is None:
        return CooldownResult(0.0, None, None, True, "no temperature sensors; cooldown skipped")
    temp = first
    while temp is not None and temp >= max_temp_c:
        if clock() - started >= timeout_s:
            return CooldownResult(clock() - started, first, temp, False,
                                  f"still {temp:.1f} C after {timeout_s:.0f} s (limit {max_temp_c:.1f} C)")
        sleep(poll_s)
        temp = hottest_cpu_c(device.sample_thermals())
    waited = clock() - started
    return CooldownResult(waited, first, temp, True, f"cooled from {first:.1f} C in {waited:.1f} s")


# A clock this far below the highest reading of the same CPU during the cell counts as throttled.
FREQ_DROP = 0.15


def throttled(samples: list[ThermalSample]) -> tuple[bool, str]:
    """Whether a cell ran throttled: a thermal status above NONE (0), or a CPU clock that fell."""
    status = [s for s in samples if s.kind == "status"]
    if status and max(s.value for s in status) > 0:
        return True, f"thermal status reached level {max(s.value for s in status):g} (above NONE)"
    by_cpu: dict[str, list[float]] = {}
    for s in samples:
        if s.kind == "freq":
            by_cpu.setdefault(s.sensor, []).append(s.value)
    for sensor, values in sorted(by_cpu.items()):
        # Only a fall after the clock was already high counts; a clock that ramps up is not throttling.
        peak_before = np.maximum.accumulate(values)
        drops = 1 - np.asarray(values) / peak_before
        if drops.max() > FREQ_DROP:
            return True, f"{sensor} fell {drops.max():.0%} below its earlier peak"
    return False, ""
