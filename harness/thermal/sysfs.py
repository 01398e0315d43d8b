"""Linux sysfs thermal zones and CPU clocks, shared by the host and Android.

The parsers are pure functions over text (``type``/``temp`` pairs, frequencies) so the
same code reads a local ``/sys`` and the output of one ``grep -H`` on a phone.
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


def tagged_samples(text: str) -> list[ThermalSample]:
    """The output of ``grep -s -H . FILE...`` over zone ``type``/``temp`` files and ``scaling_cur_freq`` files:
    each value arrives with its own file name, so a zone that cannot be read (disabled, or an offline CPU)
    drops out alone instead of shifting every later value onto the wrong sensor."""
    zones: dict[str, dict[str, str]] = {}
    freqs: dict[str, str] = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        parts = path.strip("/").split("/")
        if not sep or len(parts) < 2:
            continue
        if parts[:3] == ["sys", "class", "thermal"] and len(parts) == 5 and parts[4] in ("type", "temp"):
            zones.setdefault(parts[3], {})[parts[4]] = value
        elif parts[:5] == ["sys", "devices", "system", "cpu", "cpufreq"] and parts[-1] == "scaling_cur_freq":
            freqs["cpu" + parts[5].removeprefix("policy")] = value  # a policy is named for its first CPU
        elif parts[:4] == ["sys", "devices", "system", "cpu"] and parts[-1] == "scaling_cur_freq":
            freqs[parts[4]] = value
    pairs = [(z, f["type"], f["temp"]) for z, f in sorted(zones.items()) if "type" in f and "temp" in f]
    return zone_samples(pairs) + freq_samples(sorted(freqs.items()))


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
