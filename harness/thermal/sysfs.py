"""Linux sysfs thermal zones and CPU clocks, shared by the host and Android.

The parsers are pure functions over text (``type``/``temp`` pairs, frequencies) so the
same code reads a local ``/sys`` and the output of one ``cat`` on a phone.
"""

from __future__ import annotations

from pathlib import Path

from harness.thermal.reading import ThermalSample

THERMAL_ROOT = Path("/sys/class/thermal")
CPUFREQ_ROOT = Path("/sys/devices/system/cpu")


def millidegrees_to_c(raw: str) -> float | None:
    """sysfs reports millidegrees Celsius; some vendors report degrees. Return degrees, or None."""
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    # A phone or PC is never above 200 C; larger numbers are millidegrees.
    return value / 1000.0 if abs(value) > 200 else value


def zone_samples(zones: list[tuple[str, str, str]]) -> list[ThermalSample]:
    """``[(zone_dir_name, type, temp_text)]`` -> temperature samples in C (unreadable zones dropped)."""
    out = []
    for zone, kind, temp in zones:
        temp_c = millidegrees_to_c(temp)
        if temp_c is not None:
            out.append(ThermalSample(0.0, f"{kind.strip()} ({zone})", "temp", temp_c, "C"))
    return out


def freq_samples(freqs: list[tuple[str, str]]) -> list[ThermalSample]:
    """``[(cpu_name, scaling_cur_freq_text)]`` -> clock samples in kHz."""
    out = []
    for cpu, text in freqs:
        try:
            out.append(ThermalSample(0.0, f"{cpu}.freq", "freq", float(text.strip()), "kHz"))
        except ValueError:
            continue
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def read_local() -> list[ThermalSample]:
    """Read this machine's sysfs; an empty list where the kernel exposes none (VMs, containers)."""
    zones = []
    for zone in sorted(THERMAL_ROOT.glob("thermal_zone*")):
        kind, temp = _read(zone / "type"), _read(zone / "temp")
        if kind is not None and temp is not None:
            zones.append((zone.name, kind, temp))
    freqs = []
    for cpu in sorted(CPUFREQ_ROOT.glob("cpu[0-9]*")):
        text = _read(cpu / "cpufreq" / "scaling_cur_freq")
        if text is not None:
            freqs.append((cpu.name, text))
    return zone_samples(zones) + freq_samples(freqs)
