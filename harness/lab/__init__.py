"""A lab across several controller hosts, joined by Ray (the optional ``lab`` extra).

Each controller host runs a Ray node that advertises the phones plugged into it as custom
resources, one per device id (:mod:`harness.lab.node`).  ``harness run PLAN --lab ADDRESS``
sends each device's runs to the node holding that device, ships the builds it needs
(:mod:`harness.lab.files`), and streams every finished run back to the one store on the
driver (:mod:`harness.lab.ray_lab`).  Nothing here is imported unless ``--lab`` is given.
"""

RESOURCE_PREFIX = "harness-device:"


def device_resource(device_id: str) -> str:
    """The Ray custom resource a controller node advertises for a device plugged into it."""
    return RESOURCE_PREFIX + device_id


def measurer(address: str):
    """The engine's ``measure`` for a lab at ``address``: each device's runs on the node that holds it."""

    def measure(todo):
        from harness.lab.ray_lab import measure_on_lab

        return measure_on_lab(todo, address)

    return measure
