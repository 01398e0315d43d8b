"""Parser for ``dumpsys thermalservice``: the thermal status and the HAL's current temperatures."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

STATUS_NAMES = ("NONE", "LIGHT", "MODERATE", "SEVERE", "CRITICAL", "EMERGENCY", "SHUTDOWN")
TYPE_NAMES = {0: "CPU", 1: "GPU", 2: "BATTERY", 3: "SKIN", 4: "USB_PORT", 5: "POWER_AMPLIFIER",
              6: "BCL_VOLTAGE", 7: "BCL_CURRENT", 8: "BCL_PERCENTAGE", 9: "NPU"}
_STATUS = re.compile(r"^\s*Thermal Status:\s*(\d+)", re.M)
_TEMP = re.compile(r"Temperature\{mValue=([-\d.]+), mType=(-?\d+), mName=([^,]+), mStatus=(\d+)\}")


@dataclass(frozen=True)
class Reading:
    name: str
    type: str
    temp_c: float
    status: str


@dataclass
class ThermalDump:
    status: int
    status_name: str
    temperatures: list[Reading] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def parse(text: str) -> ThermalDump:
    """Status, and the 'Current temperatures from HAL' block (the cached block when that is absent)."""
    m = _STATUS.search(text)
    if m is None:
        raise ValueError("no 'Thermal Status:' line: not a dumpsys thermalservice dump")
    status = int(m.group(1))
    current = text.split("Current temperatures from HAL:", 1)
    block = current[1].split("Current cooling devices", 1)[0] if len(current) == 2 else text
    readings = [Reading(name.strip(), TYPE_NAMES.get(int(t), f"TYPE_{t}"), float(v),
                        STATUS_NAMES[int(s)] if int(s) < len(STATUS_NAMES) else str(s))
                for v, t, name, s in _TEMP.findall(block)]
    name = STATUS_NAMES[status] if status < len(STATUS_NAMES) else str(status)
    return ThermalDump(status=status, status_name=name, temperatures=readings)
