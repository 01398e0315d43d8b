"""Benchmark runners, by registry: one module per benchmark binary.

A runner module provides ``NAME``, ``TASK`` ("latency" or "transcribe"; or ``TASKS``, both), ``supports(platform, artifact)``,
``measure(device, remote_path, artifact, settings) -> Measurement`` and a pure
``parse(text)``.  Adding a binary is one module and one line in ``RUNNERS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.runners.base import Measurement, RunnerFailure, RunSettings

RUNNERS: dict[str, str] = {
    "host-python": "harness.runners.host_python",
    "host-transcribe": "harness.runners.host_transcribe",
    "android-executor-runner": "harness.runners.executor_runner",
    "android-qnn-executor-runner": "harness.runners.qnn_executor_runner",
    "android-onnxruntime-perf-test": "harness.runners.onnxruntime_perf_test",
    "android-llama-main": "harness.runners.llama_main",
    "android-whisper-runner": "harness.runners.whisper_runner",
    "ios-benchmark-app": "harness.runners.ios_app",
}

__all__ = ["RUNNERS", "Measurement", "RunSettings", "RunnerFailure", "runner_module", "select_runner"]


def runner_module(name: str) -> ModuleType:
    return importlib.import_module(RUNNERS[name])


def select_runner(platform: str, artifact, task: str = "latency") -> str | None:
    """The first registered runner that can do ``task`` with ``artifact`` on ``platform``, or None."""
    for name in RUNNERS:
        module = runner_module(name)
        tasks = getattr(module, "TASKS", (getattr(module, "TASK", "latency"),))  # a runner may do both tasks
        if task in tasks and module.supports(platform, artifact):
            return name
    return None
