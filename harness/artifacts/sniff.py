"""Recognise a model file by its bytes, not its name.

A ``.onnx`` that is really a ``.pte`` (or an HTML error page saved by a failed
download) should fail with a clear message before it reaches a runtime.
"""

from __future__ import annotations

from pathlib import Path

# ExecuTorch programs are flatbuffers whose file identifier (bytes 4..8) is "ET" + a
# two-digit schema version, e.g. b"ET12".
_PTE_MAGIC_PREFIX = b"ET"


def sniff_format(path: Path) -> str | None:
    """Return ``pte``, ``onnx``, ``mlpackage`` or ``mlmodelc`` by content, or None when unrecognised."""
    if path.is_dir():
        if (path / "Manifest.json").is_file():
            return "mlpackage"
        # A compiled Core ML model (what Xcode or MLModel.compileModel makes) always has this file.
        return "mlmodelc" if (path / "coremldata.bin").is_file() else None
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    if len(head) >= 8 and head[4:6] == _PTE_MAGIC_PREFIX and head[6:8].isdigit():
        return "pte"
    if _looks_like_onnx(path, head):
        return "onnx"
    return None


def _looks_like_onnx(path: Path, head: bytes) -> bool:
    # ONNX is a protobuf ModelProto; its first field is ir_version (field 1, varint: tag 0x08).
    # Parse the whole thing only when the first byte fits, so a big .pte is not parsed as protobuf.
    if not head or head[0] != 0x08:
        return False
    try:
        import onnx

        model = onnx.load_model(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - any parse failure means "not ONNX"
        return False
    return len(model.graph.node) > 0


def pte_backends(path: Path) -> list[str]:
    """Delegates named inside a .pte (their backend ids are stored as plain strings)."""
    ids = {
        b"XnnpackBackend": "xnnpack",
        b"QnnBackend": "qnn",
        b"CoreMLBackend": "coreml",
        b"MPSBackend": "mps",
    }
    data = path.read_bytes()
    return [name for marker, name in ids.items() if marker in data]


def pte_truncated(path: Path) -> str | None:
    """Why a .pte's bytes stop short of what its header promises, or None when they do not.

    ExecuTorch writes an extended header after the flatbuffer's identifier (``eh00``, its length, the
    program's size, where the segments start and how many bytes they take); a copy cut off mid-transfer
    is otherwise found only when the runner loads it on the phone."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(40)
    root_offset = int.from_bytes(head[0:4], "little")
    if root_offset >= size:
        return f"its flatbuffer root is at byte {root_offset}, past the end of the file ({size} bytes)"
    if head[8:12] != b"eh00" or len(head) < 32:
        return None
    header_len = int.from_bytes(head[12:16], "little")
    program_size = int.from_bytes(head[16:24], "little")
    segment_base = int.from_bytes(head[24:32], "little")
    segment_size = int.from_bytes(head[32:40], "little") if header_len >= 32 and len(head) >= 40 else 0
    needed = max(program_size, segment_base + segment_size if segment_base else 0)
    if needed > size:
        return f"its header says {needed} bytes, the file has {size}"
    return None
