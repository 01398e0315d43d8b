"""Files a runner writes on a phone for the controller (an operator profile, an ETDump): a folder made for them in
the controller's working folder, read back through the phone's shell, and removed again (the harness deletes only
what it created)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from harness.runners.base import RunnerFailure, check_command

# A file read back travels base64 on the shell's stdout, which the controller keeps up to 16 MiB
# (harness.devices.android.Device.OUTPUT_CAP_BYTES): 12 MiB of file is 16 MiB of base64.
READ_BACK_MAX_BYTES = 12 * 2**20


@contextmanager
def phone_folder(device, purpose: str) -> Iterator[str]:
    """A fresh folder on the phone (relative to the controller's working folder, where every command runs),
    removed when the block ends, whatever happened in it."""
    folder = f"{purpose}-{uuid.uuid4().hex[:12]}"
    check_command(device.run(["mkdir", "-p", folder], 30), f"mkdir for the {purpose}")
    try:
        yield folder
    finally:
        device.run(["rm", "-rf", folder], 60)


def files_in(device, folder: str) -> list[str]:
    """The names in a phone folder (toybox ls -1), sorted."""
    listed = device.run(["ls", "-1", folder], 30)
    check_command(listed, f"ls of {folder}")
    return sorted(name for name in listed.stdout.splitlines() if name.strip())


def read_back(device, path: str, what: str) -> bytes:
    """The bytes of a file the runner wrote on the phone.  A file too big to come back whole, or one that did not
    come back whole, fails the profiling run with its reason (never a cut file read as a whole one)."""
    size = device.run(["stat", "-c", "%s", path], 30)
    check_command(size, f"stat of {what}")
    size_bytes = int(size.stdout.strip() or 0)
    if size_bytes > READ_BACK_MAX_BYTES:
        raise RunnerFailure("failed", f"{what} on the phone is {size_bytes / 2**20:.1f} MiB, more than the "
                                      f"{READ_BACK_MAX_BYTES // 2**20} MiB the controller reads back: profile fewer "
                                      "iterations (plan key iterations)")
    encoded = device.run(["base64", path], 120)
    check_command(encoded, f"base64 of {what}")
    try:
        data = base64.b64decode("".join(encoded.stdout.split()), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if len(data) != size_bytes:
        raise RunnerFailure("failed", f"{what} did not come back whole from the phone ({len(data)} of "
                                      f"{size_bytes} bytes)", encoded.log())
    return data
