"""Measure .pte and .onnx on the host through the Python runtimes, in a child process."""

from __future__ import annotations

import json
import sys

from harness.artifacts import Artifact
from harness.runners.base import Measurement, RunSettings, require_host_runtime, run_worker
from harness.wire import RESULT_PREFIX

NAME = "host-python"
TOOL = "host_worker"
TASK = "latency"


def supports(platform: str, artifact: Artifact) -> bool:
    # Bundled ASR programs have no forward method: they are transcribed, not timed as one call; LLM programs
    # keep a KV cache and need a tokenizer: host_llm measures them through ExecuTorch's LLM runner.
    return platform == "host" and artifact.format in ("pte", "onnx") and artifact.stage not in ("asr", "llm")


def build_command(model_path: str, artifact: Artifact, settings: RunSettings) -> list[str]:
    inputs = [spec.model_dump() for spec in artifact.inputs] if artifact.inputs else None
    return [
        sys.executable, "-m", "harness.runners.host_worker",
        "--model", model_path, "--format", artifact.format,
        "--inputs-json", json.dumps(inputs),
        "--warmup", str(settings.warmup_iterations), "--iterations", str(settings.iterations),
        "--seed", str(settings.seed),
        # Only a plan's own thread count is passed, as every runner does: unset, the runtime keeps its default.
        *(["--threads", str(settings.threads)] if settings.threads else []),
    ]


def parse(text: str) -> Measurement:
    """The worker's ``HARNESS_RESULT {json}`` line -> Measurement (the last such line wins)."""
    payload = None
    for line in text.splitlines():
        if line.startswith(RESULT_PREFIX):
            payload = json.loads(line[len(RESULT_PREFIX):])
    if payload is None:
        raise ValueError("no HARNESS_RESULT line in the worker's output")
    return Measurement(
        samples_ms=payload["samples_ms"], warmup_ms=payload["warmup_ms"], load_ms=payload["load_ms"],
        first_inference_ms=payload["first_inference_ms"], peak_rss_mb=payload["peak_rss_mb"],
        extra={"rss_before_load_mb": payload["rss_before_load_mb"],
               **{k: payload[k] for k in ("measured_start_epoch_s", "measured_end_epoch_s", "pid", "ppid") if k in payload}},
        notes=payload.get("notes", []),
    )


def measure(device, model_path: str, artifact: Artifact, settings: RunSettings) -> Measurement:
    require_host_runtime(artifact.format)
    return run_worker(device, build_command(model_path, artifact, settings), settings.timeout_s, "the host worker", parse)
