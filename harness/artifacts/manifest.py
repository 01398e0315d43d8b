"""Artifact manifests: what a build is (model, stage, format, backend, quantization).

A manifest sits beside its model as ``<model-file>.manifest.yaml`` (or ``.json``).
Every field is optional in the file; whatever is missing is inferred from the file
itself and listed in ``Artifact.inferred`` so the report can say what was guessed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.artifacts.sniff import pte_backends, pte_truncated, sniff_format
from harness.errors import UserError
from harness.extras import require
from harness.textfile import check_regular
from harness.validation import MAX_TENSOR_ELEMENTS, Bytes, Dimension, Float
from harness.vocab import BACKENDS, Backend
from harness.yamlconf import PathText, StrictModel, load_data, validate

Stage = Literal["vad", "mel", "asr-encoder", "asr-decoder", "asr", "llm", "tts", "other", "unknown"]
Format = Literal["pte", "onnx", "mlpackage", "mlmodelc"]
Quantization = Literal["fp32", "fp16", "bf16", "int8", "int4", "unknown"]
DType = Literal["float32", "float16", "int64", "int32", "int8", "uint8", "bool"]

SUFFIX_FORMATS = {".pte": "pte", ".onnx": "onnx", ".mlpackage": "mlpackage", ".mlmodelc": "mlmodelc"}
MANIFEST_SUFFIXES = (".manifest.yaml", ".manifest.yml", ".manifest.json")
ORT_PREFIX = "ort-"  # ONNX Runtime execution providers: the backends of .onnx builds


class InputSpec(StrictModel):
    """One model input, for models whose shapes are dynamic or whose values matter.

    Silero VAD, for example, needs ``sr`` to be exactly 16000: ``{name: sr, shape: [],
    dtype: int64, value: 16000}``.
    """

    name: str | None = None
    shape: list[Dimension] = Field(default_factory=list)
    dtype: DType = "float32"
    fill: Literal["random", "zeros", "ones"] = "random"
    value: Float | None = None

    @model_validator(mode="after")
    def _fits_in_memory(self) -> "InputSpec":
        elements = 1
        for dim in self.shape:
            elements *= dim
        if elements > MAX_TENSOR_ELEMENTS:
            raise ValueError(f"shape {self.shape} is {elements} elements, more than {MAX_TENSOR_ELEMENTS} "
                             "(no phone benchmark feeds an input that large); check the dimensions")
        return self


class Manifest(StrictModel):
    """The manifest file as written; every field may be left out."""

    model: str | None = None
    stage: Stage | None = None
    format: Format | None = None
    # One backend, or for an ONNX build a list: the same file measured with each execution provider (ort-cpu and
    # ort-qnn, say), one cell per backend.
    backend: Backend | list[Backend] | None = None
    quantization: Quantization | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size_bytes: Bytes | None = None
    inputs: list[InputSpec] | None = None
    recipe: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    # Files a runner needs beside the model, by role, relative to the manifest's folder:
    # ``tokenizer`` for llama_main and the Whisper runner, ``processor`` (the audio front-end .pte) for Whisper.
    companions: dict[str, PathText] | None = None

    @field_validator("backend", mode="before")
    @classmethod
    def _one_backend_alone(cls, value: Any) -> Any:
        """Names checked here: a typo gets one message, not one per form the field may take (name or list)."""
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        unknown = [name for name in names if isinstance(name, str) and name not in BACKENDS]
        if unknown:
            raise ValueError(f"unknown backend '{unknown[0]}' (known: {', '.join(BACKENDS)})")
        return value


@dataclass(frozen=True)
class Artifact:
    """A build, fully described: the manifest's fields with the gaps inferred."""

    path: Path
    sha256: str
    size_bytes: int
    model: str
    stage: str
    format: str
    backend: str
    quantization: str
    inputs: list[InputSpec] | None = None
    recipe: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    manifest_path: Path | None = None
    inferred: list[str] = field(default_factory=list)
    companions: dict[str, Path] = field(default_factory=dict)
    # Every backend the manifest lists for this file (``backend`` is the one this Artifact is measured on).
    backends: tuple[str, ...] = ()

    def for_each_backend(self) -> list["Artifact"]:
        """This build once per backend its manifest lists (once, when it names one)."""
        return [replace(self, backend=backend) for backend in self.backends] or [self]

    @property
    def label(self) -> str:
        """Short human name: ``whisper-tiny.en asr-encoder int8 xnnpack``."""
        return f"{self.model} {self.stage} {self.quantization} {self.backend}"

    def manifest_dict(self) -> dict[str, Any]:
        """What is stored: the complete manifest, inputs as plain data."""
        return {
            "model": self.model, "stage": self.stage, "format": self.format,
            "backend": self.backend, "quantization": self.quantization,
            "sha256": self.sha256, "size_bytes": self.size_bytes,
            "inputs": [i.model_dump() for i in self.inputs] if self.inputs else None,
            "recipe": self.recipe, "source": self.source,
            "companions": {role: path.name for role, path in self.companions.items()} or None,
        }



def manifest_path_for(model_path: Path) -> Path | None:
    """The manifest beside ``model_path``, if there is one."""
    for suffix in MANIFEST_SUFFIXES:
        candidate = model_path.with_name(model_path.name + suffix)
        if candidate.exists():  # a FIFO or a folder under a manifest's name is refused, not read as no manifest
            check_regular(candidate, "manifests", fix="make the manifest a regular file beside its build.")
            return candidate
    return None


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a directory's files (names and bytes, in sorted order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    """Bytes of a file, or of all files in a directory (an .mlpackage or .mlmodelc)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


_STAGE_WORDS = [
    # "logmel" before "whisper": whisper-logmel is the ASR chain's front end (stage mel), not the ASR itself.
    ("vad", "vad"), ("mel", "mel"), ("logmel", "mel"), ("preprocess", "mel"), ("encoder", "asr-encoder"),
    ("decoder", "asr-decoder"), ("whisper", "asr"), ("llama", "llm"), ("llm", "llm"), ("tts", "tts"),
]
_QUANT_WORDS = [("int4", "int4"), ("8da4w", "int4"), ("q4", "int4"), ("int8", "int8"), ("q8", "int8"),
                ("fp16", "fp16"), ("bf16", "bf16"), ("fp32", "fp32")]


def _word_match(name: str, table: list[tuple[str, str]]) -> str | None:
    words = _words_found(name, table)
    return words[0][1] if words else None


def _words_found(name: str, table: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every (word, value) of ``table`` the name holds, in the table's order."""
    lowered = name.lower()
    return [(word, value) for word, value in table if re.search(rf"(^|[^a-z0-9]){re.escape(word)}", lowered)]


def _stage_from_name(path: Path) -> str:
    """The stage the name's words say.  ``whisper`` (asr) yields to a more specific ASR word (whisper-logmel is the
    front end, whisper-encoder the encoder); two other stages in one name are refused rather than one picked."""
    found = _words_found(path.name, _STAGE_WORDS)
    stages = {value for _, value in found}
    if stages & {"mel", "asr-encoder", "asr-decoder"}:
        stages.discard("asr")
    if len(stages) > 1:
        said = ", ".join(f"'{word}' ({value})" for word, value in found if value in stages)
        raise UserError(f"the name holds words of more than one stage: {said}; the harness cannot tell which "
                        "stage this build is.", path=path,
                        fix=f"write stage: in a manifest beside it ({path.name}.manifest.yaml), or rename it "
                            "with one stage word.")
    return stages.pop() if stages else "unknown"


_INT8_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
             "QLinearMatMul", "QLinearConv", "DynamicQuantizeMatMul", "QAttention"}
_INT4_OPS = {"MatMulNBits", "GatherBlockQuantized"}


def _onnx_quantization(path: Path) -> tuple[str, ...]:
    """What the graph allows its quantization to be, the likeliest first; empty when it shows nothing (no
    weights).  Quantized ONNX graphs carry tell-tale operators (int4 weights: MatMulNBits, or 4-bit weights
    behind DequantizeLinear); their absence means float, of the weights' type."""
    import onnx

    model = onnx.load_model(str(path), load_external_data=False)
    ops = {node.op_type for node in model.graph.node}
    weights = {init.data_type for init in model.graph.initializer}
    dequantizes_4bit = "DequantizeLinear" in ops and bool(weights & {onnx.TensorProto.INT4, onnx.TensorProto.UINT4})
    int8_ops = _INT8_OPS - {"DequantizeLinear"} if dequantizes_4bit else _INT8_OPS
    quantized = (("int4",) if ops & _INT4_OPS or dequantizes_4bit else ()) + (("int8",) if ops & int8_ops else ())
    if quantized:
        return quantized
    floats = {onnx.TensorProto.FLOAT: "fp32", onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16"}
    return tuple(name for kind, name in floats.items() if kind in weights)


def _onnx_quantization_guess(path: Path) -> str:
    """The graph decides; the name only picks among what the graph allows (fp16 in a graph holding float32 and
    float16 weights).  A name the graph contradicts is refused: a build labelled fp32 that is int8 (or the
    reverse) would be compared with the wrong builds all night."""
    graph = _onnx_quantization(path)
    named = _words_found(path.name, _QUANT_WORDS)
    if named and graph and named[0][1] not in graph:
        word, said = named[0]
        shows = " or ".join(graph)
        raise UserError(f"the name says '{word}' ({said}) but the graph is {shows} (its operators and weights).",
                        path=path, fix=f"rename the file without '{word}' (or with {graph[0]}), or write "
                                       f"quantization: in a manifest beside it ({path.name}.manifest.yaml).")
    if named:
        return named[0][1]
    return graph[0] if graph else "fp32"


def _infer(path: Path, fmt: str, manifest: Manifest) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    inferred: list[str] = []

    def put(key: str, given: Any, guess: Any) -> None:
        values[key] = given if given is not None else guess
        if given is None:
            inferred.append(key)

    # Only the format suffix goes: a dot inside the name belongs to it (whisper-tiny.en-encoder-int8.onnx).
    put("model", manifest.model, path.name.removesuffix(path.suffix))
    put("stage", manifest.stage, _stage_from_name(path) if manifest.stage is None else None)
    if fmt == "pte":
        delegates = pte_backends(path) if manifest.backend is None else []
        backend_guess = delegates[0] if delegates else "portable"
        quant_guess = _word_match(path.name, _QUANT_WORDS) or "unknown"
    elif fmt == "onnx":
        backend_guess = "ort-cpu"
        quant_guess = _onnx_quantization_guess(path) if manifest.quantization is None else None
    else:
        backend_guess = "coreml"
        quant_guess = _word_match(path.name, _QUANT_WORDS) or "unknown"
    put("backend", manifest.backend, backend_guess)
    put("quantization", manifest.quantization, quant_guess)
    return values, inferred


def _listed_backends(listed: list[str], fmt: str, manifest_path: Path, line: int | None) -> tuple[str, ...]:
    """A list of backends: only an ONNX file runs unchanged under several (ONNX Runtime's execution providers);
    a .pte is built for its delegates and a Core ML model for Core ML."""
    if fmt != "onnx":
        raise UserError(f"backend: a list ({', '.join(listed)}) is for ONNX builds, and this is a {fmt}, built for "
                        "one backend.", path=manifest_path, line=line, fix="name the one backend it was built for.")
    if not listed or len(set(listed)) != len(listed):
        raise UserError(f"backend: the list [{', '.join(listed)}] is empty or names a backend twice.",
                        path=manifest_path, line=line, fix="list each backend to measure the file on once.")
    return tuple(listed)


def _check_pte_delegates(path: Path, backend: str, manifest_path: Path, line: int | None) -> None:
    """A manifest's backend must be what the .pte runs on: its delegates (or none, for ``portable``).  Otherwise
    the cells are labelled with one backend and measure another (or a QNN runner fails on the phone)."""
    if backend.startswith(ORT_PREFIX):
        raise UserError(f"backend: {backend} is an ONNX Runtime backend, and this is a .pte.", path=manifest_path,
                        line=line, fix=f"ort-* backends are for .onnx builds: write the backend the .pte was "
                                       f"exported for ({_pte_backend_named(path)}), or measure an .onnx export.")
    delegates = pte_backends(path)
    if backend == "portable" and not delegates or backend in delegates:
        return
    found = f"delegates to {', '.join(delegates)}" if delegates else "has no delegate (portable kernels only)"
    right = _pte_backend_named(path)
    raise UserError(f"backend: the manifest says {backend} but the .pte {found}.", path=manifest_path, line=line,
                    fix=f"write backend: {right} in the manifest, or export the model again for {backend} "
                        f"(the manifest describes another build).")


def _pte_backend_named(path: Path) -> str:
    delegates = pte_backends(path)
    return delegates[0] if delegates else "portable"



def _check_onnx_backends(backends: list[str], manifest_path: Path, line: int | None) -> None:
    """An .onnx build runs under ONNX Runtime, on one of its execution providers (ort-*); ExecuTorch's backends
    (qnn, xnnpack, ...) run .pte files.  Refused here, not when no runner is found for the cell mid-night."""
    for backend in backends:
        if not backend.startswith(ORT_PREFIX):
            raise UserError(f"backend: {backend} is a .pte backend (ExecuTorch), and this is an .onnx build.",
                            path=manifest_path, line=line,
                            fix=f"for ONNX write ort-{backend} (ONNX Runtime's {backend} execution provider)."
                                if f"ort-{backend}" in BACKENDS else
                                f"write one of {', '.join(b for b in BACKENDS if b.startswith(ORT_PREFIX))}.")


def load_artifact(path: Path) -> Artifact:
    """Check a model file, read its manifest, and infer what the manifest leaves out."""
    if not path.exists():
        raise UserError("model file not found.", path=path, fix="check the path in the plan (it is relative to the plan file).")
    check_regular(path, "builds", folders=True, fix="export or copy the build to a file (a package to a folder).")
    expected = SUFFIX_FORMATS.get(path.suffix)
    if expected is None:
        raise UserError(
            f"unknown model suffix '{path.suffix}'.", path=path,
            fix=f"use one of {', '.join(SUFFIX_FORMATS)}.",
        )
    if expected == "onnx":  # its content is read with the onnx package, which the light install leaves out
        require("onnx", "onnx", f"{path}: reading an .onnx build")
    actual = sniff_format(path)
    if actual != expected:
        what = f"a {actual} file" if actual else "not a model file this harness can read"
        raise UserError(
            f"the file is named {path.suffix} but its content is {what}.", path=path,
            fix=(f"rename it to {path.stem}.{actual}." if actual
                 else "re-export the model; the file may be truncated or an error page saved by a failed download."),
        )
    cut_short = pte_truncated(path) if actual == "pte" else None
    if cut_short:
        raise UserError(f"the .pte is truncated: {cut_short}.", path=path,
                        fix="copy or export it again (a transfer or an export was interrupted).")
    manifest_path = manifest_path_for(path)
    manifest = Manifest()
    if manifest_path is not None:
        data, lines = load_data(manifest_path)
        manifest = validate(Manifest, data or {}, manifest_path, lines)
        if manifest.format is not None and manifest.format != actual:
            raise UserError(
                f"format: the manifest says {manifest.format} but the file is {actual}.",
                path=manifest_path, line=lines.get(("format",)), fix="correct the manifest.",
            )
    digest = sha256_of(path)
    if manifest.sha256 is not None and manifest.sha256 != digest:
        raise UserError(
            f"sha256 in the manifest ({manifest.sha256[:12]}…) does not match the model file ({digest[:12]}…): "
            "the manifest describes another build.",
            path=manifest_path, fix="rebuild the model or regenerate its manifest.",
        )
    backends: tuple[str, ...] = ()
    if isinstance(manifest.backend, list):
        backends = _listed_backends(manifest.backend, actual, manifest_path, lines.get(("backend",)))
        manifest = manifest.model_copy(update={"backend": backends[0]})
    if actual == "onnx" and manifest.backend is not None:
        _check_onnx_backends(list(backends) or [manifest.backend], manifest_path, lines.get(("backend",)))
    if actual == "pte" and manifest.backend is not None:
        _check_pte_delegates(path, manifest.backend, manifest_path, lines.get(("backend",)))
    values, inferred = _infer(path, actual, manifest)
    companions = {}
    for role, rel in (manifest.companions or {}).items():
        companion = manifest_path.parent / rel
        if not companion.resolve().is_relative_to(manifest_path.parent.resolve()):
            # A companion is pushed to the device with the build: it must not name files from elsewhere.
            raise UserError(f"companions.{role}: '{rel}' leaves the manifest's folder.",
                            path=manifest_path, line=lines.get(("companions", role)),
                            fix="copy the file beside the manifest and name it without '..', links or absolute paths.")
        if not companion.exists():
            raise UserError(f"companions.{role}: '{rel}' does not exist (looked in {manifest_path.parent}).",
                            path=manifest_path, line=lines.get(("companions", role)),
                            fix="build or copy the file there, or correct the path.")
        check_regular(companion, "companions", fix="copy the companion to a file beside the manifest.")
        companions[role] = companion
    if manifest_path is None:
        inferred = ["manifest"] + inferred
    return Artifact(
        path=path, sha256=digest, size_bytes=size_of(path), format=actual,
        inputs=manifest.inputs, recipe=manifest.recipe, source=manifest.source,
        manifest_path=manifest_path, inferred=inferred, companions=companions, backends=backends, **values,
    )
