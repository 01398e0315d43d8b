"""A controller host joining the lab: which of its devices answer, and the ``ray start`` that advertises them.

A node advertises one custom resource per device that answers now (from its own inventory,
``serial: '*'`` entries expanded to the phones attached), each of capacity 1, so the lab
never runs two runs on one phone at once.  The node's inventory also stays the truth for
what is local to that host (adb port, runner binaries, SDK paths): the driver's entry for a
device is replaced by the node's own when the node knows the device.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from harness.errors import UserError
from harness.extras import install_command
from harness.lab import device_resource
from harness.plan import CellSpec

INVENTORY_ENV = "HARNESS_LAB_INVENTORY"  # set for the node's Ray workers by 'harness lab join'


def answering_devices(inventory_path: Path) -> list[tuple[str, bool, str]]:
    """(device id, answers, why) for every device of this host's inventory, wildcards expanded."""
    from harness.devices import probe
    from harness.inventory import load_inventory

    out = []
    for config in load_inventory(inventory_path).devices:
        try:
            expanded = config.expand()
        except UserError as exc:
            out.append((config.id, False, str(exc)))
            continue
        out += [(entry.id, *probe(entry)) for entry in expanded]
    return out


def resources_for(device_ids: list[str]) -> dict[str, float]:
    return {device_resource(d): 1.0 for d in device_ids}


def ray_start_argv(address: str | None, resources: dict[str, float], port: int = 6379,
                   extra: list[str] | None = None) -> list[str]:
    """``ray start`` for a head (``address`` None) or for a node joining ``address``."""
    exe = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if exe is None:
        raise UserError("Ray is not installed on this host.", fix=install_command("lab"))
    where = ["--head", f"--port={port}"] if address is None else [f"--address={address}"]
    return [exe, "start", *where, f"--resources={json.dumps(resources, sort_keys=True)}", *(extra or [])]


def join_env(inventory_path: Path) -> dict[str, str]:
    """The environment ``ray start`` runs in: its workers read this host's inventory from it."""
    return {**os.environ, INVENTORY_ENV: str(inventory_path.resolve())}


def node_config(spec: CellSpec, inventory: str | None) -> CellSpec:
    """The cell with the node's own inventory entry for its device, when the node has one."""
    if not inventory:
        return spec
    from harness.inventory import load_inventory

    for config in load_inventory(Path(inventory)).devices:
        for entry in config.expand():
            if entry.id == spec.device.id:
                return replace(spec, device=entry)
    return spec
