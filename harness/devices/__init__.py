"""Device platforms, by registry.

Adding a platform is one module here (with a ``Config`` model and a ``Device``
class) and one line in ``PLATFORMS``.  Modules are imported lazily so that a host
run never pays for importing the Android or iPhone stacks.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.devices.base import CommandResult, Device, ThermalSample

PLATFORMS: dict[str, str] = {
    "host": "harness.devices.host",
    "android": "harness.devices.android",
    "ios": "harness.devices.ios",
}

__all__ = ["PLATFORMS", "CommandResult", "Device", "ThermalSample", "config_model", "open_device", "platform_module",
           "probe"]


def platform_module(platform: str) -> ModuleType:
    """The module implementing ``platform``."""
    from harness.errors import UserError

    try:
        name = PLATFORMS[platform]
    except KeyError:
        raise UserError(
            f"platform '{platform}' is not supported by this version of harness "
            f"(supported: {', '.join(PLATFORMS)}).",
            fix="use one of the supported platforms or upgrade harness.",
        ) from None
    return importlib.import_module(name)


def config_model(platform: str):
    """The pydantic model of the inventory keys a platform accepts."""
    return platform_module(platform).Config


def open_device(config) -> Device:
    """Instantiate the device driver for an inventory entry."""
    return platform_module(config.platform).Device(config)


def probe(config) -> tuple[bool, str]:
    """Whether the device of an inventory entry answers now, and why not; it is closed again either way."""
    from harness.errors import UserError

    try:
        device = open_device(config)
        try:
            return device.reachable()
        finally:
            device.close()
    except UserError as exc:
        return False, str(exc)
