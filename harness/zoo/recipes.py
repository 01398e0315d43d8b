"""The reference build recipes."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from harness.zoo import Recipe

# Silero VAD takes 512-sample windows at 16 kHz (32 ms) with a recurrent state of (2, 1, 128).
VAD_INPUTS = [
    {"name": "input", "shape": [1, 512], "dtype": "float32", "fill": "random"},
    {"name": "state", "shape": [2, 1, 128], "dtype": "float32", "fill": "zeros"},
    {"name": "sr", "shape": [], "dtype": "int64", "value": 16000},
]


def _silero_vad_onnx(target: Path) -> dict:
    from harness.errors import UserError

    try:
        source = resources.files("silero_vad") / "data" / "silero_vad.onnx"
    except ModuleNotFoundError:
        raise UserError("the VAD build needs the 'silero-vad' package.", fix="pip install silero-vad") from None
    with resources.as_file(source) as path:
        shutil.copyfile(path, target)
    return {"model": "silero-vad", "stage": "vad", "backend": "ort-cpu", "quantization": "fp32",
            "inputs": VAD_INPUTS, "source": {"package": "silero-vad", "file": "data/silero_vad.onnx"},
            "recipe": {"steps": ["copied as shipped"]}}


def _mel_example():
    import torch

    from harness.zoo.mel import CHUNK_SAMPLES, LogMel

    return LogMel().eval(), (torch.zeros(1, CHUNK_SAMPLES),)


_MEL_FIELDS = {"model": "whisper-logmel", "stage": "mel", "quantization": "fp32",
               "source": {"definition": "harness.zoo.mel.LogMel (Whisper: 80 mels, n_fft 400, hop 160, 30 s)"}}


def _mel_onnx(target: Path) -> dict:
    from harness.zoo.export import export_onnx

    module, example = _mel_example()
    export_onnx(module, example, target, ["audio"], ["log_mel"])
    return {**_MEL_FIELDS, "backend": "ort-cpu", "recipe": {"steps": ["torch.onnx.export(dynamo=True)"]}}


def _mel_pte(target: Path) -> dict:
    from harness.zoo.export import export_pte_xnnpack

    module, example = _mel_example()
    export_pte_xnnpack(module, example, target)
    return {**_MEL_FIELDS, "backend": "xnnpack",
            "recipe": {"steps": ["torch.export", "to_edge_transform_and_lower(XnnpackPartitioner)"]}}


RECIPES = [
    Recipe("silero-vad-fp32", ".onnx", 1, ("silero-vad",), _silero_vad_onnx),
    Recipe("whisper-logmel-fp32", ".onnx", 1, ("torch", "onnx", "onnxscript"), _mel_onnx),
    Recipe("whisper-logmel-fp32-xnnpack", ".pte", 1, ("torch", "executorch"), _mel_pte),
]
