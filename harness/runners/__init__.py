"""Benchmark runners, by registry: one module per benchmark binary.

A runner module provides ``NAME``, ``supports(platform, artifact)``,
``measure(device, remote_path, artifact, settings) -> Measurement`` and a pure
``parse(text)``.  Adding a binary is one module and one line in ``RUNNERS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.runners.base import Measurement, RunnerFailure, RunSettings

RUNNERS: dict[str, str] = {
    "host-python": "harness.runners.host_python",
}

__all__ = ["RUNNERS", "Measurement", "RunSettings", "RunnerFailure", "runner_module", "select_runner"]


def runner_module(name: str) -> ModuleType:
    return importlib.import_module(RUNNERS[name])


def select_runner(platform: str, artifact) -> str | None:
    """The first registered runner that can measure ``artifact`` on ``platform``, or None."""
    for name in RUNNERS:
        if runner_module(name).supports(platform, artifact):
            return name
    return None
