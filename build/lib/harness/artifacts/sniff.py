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
