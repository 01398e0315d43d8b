"""Measure .pte and .onnx on the host through the Python runtimes, in a child process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.artifacts import Artifact
from harness.profile import OperatorTime, Profile
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


def _payload(text: str) -> dict:
    """The worker's last ``HARNESS_RESULT {json}`` line."""
    payload = None
    for line in text.splitlines():
        if line.startswith(RESULT_PREFIX):
            payload = json.loads(line[len(RESULT_PREFIX):])
    if payload is None:
        raise ValueError("no HARNESS_RESULT line in the worker's output")
    return payload


def parse(text: str) -> Measurement:
    """The worker's ``HARNESS_RESULT {json}`` line -> Measurement (the last such line wins)."""
    payload = _payload(text)
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


def etrecord_of(artifact: Artifact) -> Path | None:
    """The ETRecord exported beside a .pte (``<name>.etrecord``), which maps its calls to source ops; None without."""
    found = artifact.path.with_suffix(".etrecord")
    return found if artifact.format == "pte" and found.is_file() else None


def parse_profile(text: str) -> Profile:
    """A profiling run's ``HARNESS_RESULT`` line -> Profile."""
    data = _payload(text)["profile"]
    operators = [OperatorTime(**record) for record in data["operators"]]
    for r in operators:  # the store keeps names as text and times as numbers: anything else is a broken profile
        if not (isinstance(r.name, str) and isinstance(r.backend, str) and isinstance(r.op_type, str)
                and isinstance(r.calls, int) and all(isinstance(v, (int, float)) for v in (r.total_ms, r.median_ms))):
            raise ValueError(f"a profiled operator with a missing or mistyped field: {r}")
    return Profile(iterations=data["iterations"], latency_ms=data["latency_ms"], operators_ms=data["operators_ms"],
                   operators=operators, notes=data.get("notes", []))


def profile(device, model_path: str, artifact: Artifact, settings: RunSettings) -> Profile:
    """One profiling run (a process of its own, after the cell's measured runs): the runtime's operator profiler on."""
    require_host_runtime(artifact.format)
    etrecord = etrecord_of(artifact)
    measured = build_command(model_path, artifact, settings)
    argv = [sys.executable, "-m", "harness.runners.host_profile_worker", *measured[3:],
            *(["--etrecord", str(etrecord)] if etrecord else [])]
    return run_worker(device, argv, settings.timeout_s, "the profiling run", parse_profile)
