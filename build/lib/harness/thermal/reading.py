"""One reading of one sensor: what devices produce and the thermal package reads (a leaf module)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThermalSample:
    """One reading of one sensor.  ``value`` is in ``unit`` as read, converted only when known."""

    t_s: float  # seconds since the cell started
    sensor: str  # e.g. "cpu-0-0 (thermal_zone3)", "battery", "cpu0.freq"
    kind: str  # "temp" | "freq" | "status"
    value: float
    unit: str  # "C", "kHz", "level"
