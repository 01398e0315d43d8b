"""Transcribe a corpus through a chain of .onnx / .pte builds on the host, in a child process; with a VAD and an
LLM in the chain, run the voice pipeline per utterance (see host_transcribe_worker)."""

from __future__ import annotations

import json
import sys

from harness.runners.base import Measurement, RunnerFailure, check_command, push_companion, require_host_runtime
from harness.runners.host_transcribe_worker import DONE, UTT_PREFIX

NAME = "host-transcribe"
TOOL = "host_transcribe_worker"
TASKS = ("transcribe", "pipeline")


def supports(platform: str, artifact) -> bool:
    return platform == "host" and artifact.format in ("pte", "onnx")


def build_command(paths: dict[str, str], corpus: str, limit: int | None, threads: int | None) -> list[str]:
    """``paths`` by role: mel, encoder, decoder (a split chain) or model and processor (a bundle); and for a
    pipeline vad, llm and llm_tokenizer."""
    argv = [sys.executable, "-m", "harness.runners.host_transcribe_worker", "--corpus", corpus]
    for role, path in paths.items():
        argv += [f"--{role.replace('_', '-')}", path]
    if limit:
        argv += ["--limit", str(limit)]
    if threads:
        argv += ["--threads", str(threads)]
    return argv


def parse(text: str) -> Measurement:
    """Worker output -> one sample and one transcript per utterance; ``extra["complete"]``: it reached the end."""
    records = [json.loads(line[len(UTT_PREFIX):]) for line in text.splitlines() if line.startswith(UTT_PREFIX)]
    done = [line.strip()[len(DONE):].strip() for line in text.splitlines() if line.strip().startswith(DONE)]
    if not records and not done:
        raise ValueError(f"no '{UTT_PREFIX}' line: not the transcription worker's output")
    memory = json.loads(done[-1]) if done and done[-1] else {}
    # A pipeline's sample is the utterance's whole VAD + ASR + LLM time; ASR alone, the transcription's.
    key = "pipeline_ms" if records and "pipeline_ms" in records[0] else "total_ms"
    return Measurement(samples_ms=[r[key] for r in records], transcripts=records, peak_rss_mb=memory.get("peak_rss_mb"),
                       extra={"utterances": len(records), "complete": bool(done)})


def measure_chain(device, chain, settings) -> Measurement:
    """Push the three builds, transcribe, and report per-utterance totals as the cell's samples."""
    for art in chain.parts.values():
        require_host_runtime(art.format)
    paths = {role: device.push(art.path, art.sha256) for role, art in chain.parts.items()}
    if "model" in paths:  # a bundle brings its preprocessor program
        paths["processor"] = push_companion(device, chain.parts["model"], "processor")
    if "llm" in paths:  # a pipeline's LLM brings its tokenizer
        paths["llm_tokenizer"] = push_companion(device, chain.parts["llm"], "tokenizer")
    result = device.run(build_command(paths, str(chain.corpus.resolve()), chain.limit, settings.threads),
                        timeout_s=settings.timeout_s)
    check_command(result, "the transcription worker")
    try:
        measured = parse(result.stdout)
    except ValueError:
        measured = None
    if measured is None or not measured.extra["complete"] or not measured.transcripts:
        raise RunnerFailure("failed", "the transcription worker stopped before the end of the corpus", result.log())
    measured.extra.pop("complete")
    return measured
