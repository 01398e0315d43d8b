"""The device inventory (``devices.yaml``): which devices the lab has and what they can run."""

from harness.inventory.models import BACKENDS, DeviceConfig, Inventory, load_inventory

__all__ = ["BACKENDS", "DeviceConfig", "Inventory", "load_inventory"]
