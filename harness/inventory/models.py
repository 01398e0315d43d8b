"""Inventory models and loader.

Each entry names a platform; the platform's module (``harness.devices.<platform>``)
owns the model of the keys that platform accepts, so adding a platform adds its
keys without touching this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from harness.errors import UserError
from harness.yamlconf import StrictModel, all_problems, load_data, validate

# The device model lives with the devices (each platform subclasses it); the backend vocabulary in a
# leaf module.  Re-exported here for the inventory's readers.
from harness.devices.base import DeviceConfig, known_platform  # noqa: E402
from harness.vocab import BACKENDS  # noqa: E402


class _Entry(StrictModel):
    """Just enough of an entry to find its platform before validating the rest."""

    model_config = StrictModel.model_config | {"extra": "allow"}
    platform: Annotated[str, AfterValidator(known_platform)]


class _File(StrictModel):
    devices: list[dict]


class Inventory(StrictModel):
    """The validated inventory: devices by id, in file order."""

    path: Path
    devices: list[DeviceConfig]

    def get(self, device_id: str) -> DeviceConfig:
        for device in self.devices:
            if device.id == device_id:
                return device
        known = ", ".join(d.id for d in self.devices) or "none"
        raise UserError(
            f"no device '{device_id}' in the inventory (known: {known}).",
            path=self.path, fix="add it to the inventory or correct the id in the plan.",
        )


def load_inventory(path: Path) -> Inventory:
    """Read ``devices.yaml``; every entry is validated by its platform's own model."""
    from harness.devices import config_model

    data, lines = load_data(path)
    if data is None:
        raise UserError("the inventory is empty.", path=path, fix="list at least one device under 'devices:'.")
    raw = validate(_File, data, path, lines)
    devices: list[DeviceConfig] = []
    problems: list[UserError] = []
    for i, entry in enumerate(raw.devices):  # every entry checked, so that one message lists every problem
        prefix = ("devices", i)
        try:
            platform = validate(_Entry, entry, path, lines, prefix=prefix).platform
            devices.append(validate(config_model(platform), entry, path, lines, prefix=prefix))
        except UserError as exc:
            problems.append(exc)
    if problems:
        raise all_problems(problems)
    seen: set[str] = set()
    for i, device in enumerate(devices):
        if device.id in seen:
            raise UserError(
                f"devices[{i}].id: '{device.id}' is used twice.", path=path,
                line=lines.get(("devices", i, "id")), fix="give every device its own id.",
            )
        seen.add(device.id)
    return Inventory(path=path, devices=devices)
