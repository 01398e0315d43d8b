"""Shared fixtures: real, small exported models (torch.export + XNNPACK, torch.onnx), built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write


class TinyNet:
    """Two linear layers: big enough to take measurable time, small enough to export in seconds."""

    @staticmethod
    def make():
        import torch

        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64)).eval()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A folder with tiny.pte (XNNPACK), tiny.onnx, and nothing else."""
    import torch

    from harness.zoo.export import export_onnx, export_pte_xnnpack

    out = tmp_path_factory.mktemp("models")
    module, example = TinyNet.make(), (torch.randn(1, 256),)
    export_pte_xnnpack(module, example, out / "tiny.pte")
    export_onnx(module, example, out / "tiny.onnx", ["x"], ["y"])
    return out


@pytest.fixture
def host_inventory(tmp_path) -> Path:
    return write(tmp_path / "devices.yaml", """
        devices:
          - id: host
            platform: host
            backends: [portable, xnnpack, ort-cpu]
        """)


@pytest.fixture(scope="session")
def small_zoo(tmp_path_factory):
    """A real subset of the zoo: VAD (both), mel, ONNX encoder+decoder FP32 and INT8, INT8 .pte encoder, INT4 Core ML."""
    from harness.zoo import build_all

    out = tmp_path_factory.mktemp("builds")
    only = ["silero-vad-fp32", "silero-vad-int8", "whisper-logmel-fp32", "whisper-tiny.en-encoder-int8",
            "whisper-tiny.en-decoder-int8", "whisper-tiny.en-encoder-int8-xnnpack", "whisper-tiny.en-encoder-int4-coreml"]
    return out, build_all(out, only=only)
