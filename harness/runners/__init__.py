"""Benchmark runners, by registry: one module per benchmark binary.

A runner module provides ``NAME``, ``TASK`` ("latency" or "transcribe"; or ``TASKS``, several of "latency",
"transcribe" and "pipeline"), ``supports(platform, artifact)``,
``measure(device, remote_path, artifact, settings) -> Measurement`` (``measure_chain`` for transcription and
for a voice pipeline: a chain with ``vad`` and ``llm`` parts)
and a pure ``parse(text) -> Measurement`` over one invocation's output, which ``harness parse TOOL``
exposes under the module's ``TOOL`` name.  Adding a binary is one module and one line in ``RUNNERS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.runners.base import Measurement, RunnerFailure, RunSettings

RUNNERS: dict[str, str] = {
    "host-python": "harness.runners.host_python",
    "host-transcribe": "harness.runners.host_transcribe",
    "host-llm": "harness.runners.host_llm",
    "android-executor-runner": "harness.runners.executor_runner",
    "android-qnn-executor-runner": "harness.runners.qnn_executor_runner",
    "android-onnxruntime-perf-test": "harness.runners.onnxruntime_perf_test",
    "android-llama-main": "harness.runners.llama_main",
    "android-whisper-runner": "harness.runners.whisper_runner",
    "android-pipeline": "harness.runners.android_pipeline",
    "ios-benchmark-app": "harness.runners.ios_app",
}

__all__ = ["RUNNERS", "Measurement", "RunSettings", "RunnerFailure", "parsers", "runner_module", "select_runner"]


def runner_module(name: str) -> ModuleType:
    return importlib.import_module(RUNNERS[name])


def parsers() -> dict[str, ModuleType]:
    """Every runner's output parser, by the ``TOOL`` name `harness parse` takes."""
    return {module.TOOL: module for module in map(runner_module, RUNNERS)}


def select_runner(platform: str, artifact, task: str = "latency") -> str | None:
    """The first registered runner that can do ``task`` with ``artifact`` on ``platform``, or None."""
    for name in RUNNERS:
        module = runner_module(name)
        tasks = getattr(module, "TASKS", (getattr(module, "TASK", "latency"),))  # a runner may do both tasks
        if task in tasks and module.supports(platform, artifact):
            return name
    return None
