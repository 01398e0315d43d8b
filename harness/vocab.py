"""Shared vocabulary: the execution backends a device can offer and a build can target.

A leaf module (it imports nothing from harness), so that inventory, devices, artifacts and
runners can all use it without depending on one another.  A closed list, so a typo
("xnpack") is caught when the file is read, not after a night of skipped cells.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

BACKENDS = (
    "portable",  # ExecuTorch portable kernels, no delegate
    "xnnpack",  # ExecuTorch XNNPACK delegate (CPU)
    "qnn",  # ExecuTorch Qualcomm QNN delegate (HTP/NPU)
    "coreml",  # Core ML (.mlpackage, or ExecuTorch's Core ML delegate)
    "mps",  # ExecuTorch MPS delegate
    "ort-cpu",  # onnxruntime, CPU execution provider
    "ort-xnnpack",
    "ort-qnn",
    "ort-nnapi",
    "ort-coreml",
)
# Backends that run on an accelerator: an LLM build there is held to the NPU budget.
NPU_BACKENDS = frozenset({"qnn", "coreml", "ort-qnn", "ort-coreml", "ort-nnapi"})


def _known_backend(value: str) -> str:
    if value not in BACKENDS:
        raise ValueError(f"unknown backend '{value}' (known: {', '.join(BACKENDS)})")
    return value


Backend = Annotated[str, AfterValidator(_known_backend)]


# The HTP (Hexagon NPU) power modes both QNN paths offer, under ONNX Runtime's QNN EP option names
# (``htp_performance_mode``), with ExecuTorch's numbers for qnn_executor_runner's ``--htp_performance_mode``
# (QnnExecuTorchHtpPerformanceMode, backends/qualcomm/serialization/qc_schema.py, v1.0.0-v1.4.0).
HTP_PERFORMANCE_MODES = {"default": 0, "sustained_high_performance": 1, "burst": 2, "high_performance": 3,
                         "power_saver": 4, "low_power_saver": 5, "high_power_saver": 6, "low_balanced": 7,
                         "balanced": 8}
QNN_BACKENDS = frozenset({"qnn", "ort-qnn"})


def _known_htp_mode(value: str) -> str:
    if value not in HTP_PERFORMANCE_MODES:
        raise ValueError(f"unknown HTP performance mode '{value}' (known: {', '.join(HTP_PERFORMANCE_MODES)})")
    return value


HtpPerformanceMode = Annotated[str, AfterValidator(_known_htp_mode)]
