"""The ADB transport's wire format (device side): 24-byte headers, then a payload.

Header fields (little-endian uint32): command, arg0, arg1, payload length, payload
checksum (byte sum; may be 0 once version 0x01000001 is agreed), command ^ 0xffffffff.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

A_CNXN, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_AUTH = (
    0x4E584E43, 0x4E45504F, 0x59414B4F, 0x45534C43, 0x45545257, 0x48545541)
VERSION = 0x01000001  # "skip checksum" version
MAX_PAYLOAD = 256 * 1024
HEADER = struct.Struct("<6I")


@dataclass(frozen=True)
class Message:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    def pack(self) -> bytes:
        return HEADER.pack(self.command, self.arg0, self.arg1, len(self.data), sum(self.data) & 0xFFFFFFFF,
                           self.command ^ 0xFFFFFFFF) + self.data


def read_message(recv_exact) -> Message:
    """Read one message with ``recv_exact(n) -> bytes`` (raises EOFError when the peer is gone)."""
    command, arg0, arg1, length, _checksum, magic = HEADER.unpack(recv_exact(HEADER.size))
    if magic != command ^ 0xFFFFFFFF:
        raise ValueError(f"bad ADB header magic for command {command:#x}")
    return Message(command, arg0, arg1, recv_exact(length) if length else b"")


# shell protocol v2 packet ids
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN = 0, 1, 2, 3, 4


def shell_packet(kind: int, data: bytes) -> bytes:
    return bytes([kind]) + struct.pack("<I", len(data)) + data
