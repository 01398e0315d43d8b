"""The on-device iOS benchmark app, driven through its job/result contract (``ios_contract``).

One cell is one job: the harness writes the job file into the app's container, launches
the app naming it, waits (killing it at the plan's timeout), pulls the result file and
validates it against the schema before anything from it is stored.  A result that
breaks the contract fails its cell with the reason; the rest of the run goes on.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from harness.thermal.reading import ThermalSample
from harness.runners.base import Measurement, RunnerFailure, RunSettings, check_command, push_corpus_audio, push_file
from harness.runners.ios_contract import JOB_SCHEMA, THERMAL_STATES, ContractError, parse_result, validate_job

NAME = "ios-benchmark-app"
TOOL = "ios_result"
PARSE_FIX = ("give the result.json the benchmark app wrote; its format is harness/runners/ios_contract/result.v1.schema.json (examples beside it).")
TASKS = ("latency", "transcribe")
JOBS_ROOT = "Documents/harness/jobs"
FORMATS = {".mlpackage": "mlpackage", ".mlmodelc": "mlmodelc", ".pte": "pte", ".tiktoken": "tiktoken", ".json": "json"}


def supports(platform: str, artifact) -> bool:
    return platform == "ios" and artifact.format in ("mlpackage", "mlmodelc", "pte")


def _job(task: str, models: list[dict], device, settings: RunSettings, **extra) -> dict:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    job_id = f"{stamp}-{device.id}-{uuid.uuid4().hex[:8]}"
    job = {"schema": JOB_SCHEMA, "job_id": job_id, "task": task, "models": models,
           "compute_units": device.config.compute_units, "warmup_iterations": settings.warmup_iterations,
           "iterations": settings.iterations, "thermal_period_s": 1.0,
           "result_path": f"{JOBS_ROOT}/{job_id}/result.json", **extra}
    return validate_job(job)


def _model_entry(role: str, remote: str, local: Path, sha256: str | None = None, inputs=None) -> dict:
    entry = {"role": role, "path": remote, "format": FORMATS[local.suffix]}
    if sha256:
        entry["sha256"] = sha256
    if inputs:
        entry["inputs"] = [i.model_dump() for i in inputs]
    return entry


def run_job(device, job: dict, timeout_s: float) -> tuple[dict, float]:
    """Put the job, launch the app on it, pull and validate the result; (result, launch epoch seconds)."""
    job_path = f"{JOBS_ROOT}/{job['job_id']}/job.json"
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / "job.json"
        local.write_text(json.dumps(job, indent=1))
        device.put(local, job_path)
    launched = time.time()
    result = device.run(["--harness-job", job_path], timeout_s, env={"HARNESS_JOB": job_path})
    check_command(result, "the benchmark app")
    text = device.pull(job["result_path"])
    if text is None:
        raise RunnerFailure("crashed", "the benchmark app ended without writing its result file (it probably crashed; "
                                       "'pymobiledevice3 crash ls' lists the phone's crash reports)", result.log())
    try:
        parsed = parse_result(text, job)
    except ContractError as exc:
        raise RunnerFailure("failed", f"the app's result file breaks the contract (result.v1.schema.json): {exc}",
                            f"{job['result_path']}:\n{text[:4000]}") from None
    if parsed["status"] == "failed":
        raise RunnerFailure("failed", f"the benchmark app reported a failure: {parsed['error']}", text[:4000])
    return parsed, launched


def _thermals(result: dict, launched_epoch_s: float) -> list[ThermalSample]:
    return [ThermalSample(launched_epoch_s + s["t_s"], "thermalState", "status", float(THERMAL_STATES.index(s["state"])),
                          "level") for s in result["thermal_state"]]


def _extra(result: dict) -> dict:
    extra = {"app_version": result["app"]["version"], "compute_units": result.get("compute_units"),
             "compile_ms": result.get("compile_ms"), "os_version": result["device"]["os_version"],
             "product_type": result["device"]["product_type"]}
    return {k: v for k, v in extra.items() if v is not None}


def _latency(result: dict, launched_epoch_s: float) -> Measurement:
    return Measurement(samples_ms=result["latency_ms"], warmup_ms=result.get("warmup_ms", []),
                       load_ms=result["load_ms"], peak_rss_mb=result.get("peak_memory_mb"), extra=_extra(result),
                       thermals_epoch=_thermals(result, launched_epoch_s))


def parse(text: str) -> Measurement:
    """A latency result file's text (result.v1.schema.json) -> Measurement; ValueError when it breaks the contract.

    Thermal times stay relative to the app's launch (no launch time is known outside a run)."""
    from harness.runners.ios_contract import ContractError, load_result

    try:
        result = load_result(text)
    except ContractError as exc:
        raise ValueError(f"not a benchmark app result: {exc}") from None
    if result["status"] != "ok" or "latency_ms" not in result:
        raise ValueError(f"not a successful latency result (status {result['status']})")
    return _latency(result, 0.0)


def measure(device, model_path: str, artifact, settings: RunSettings) -> Measurement:
    """One latency job on the single build."""
    job = _job("latency", [_model_entry("model", model_path, artifact.path, artifact.sha256, artifact.inputs)],
               device, settings)
    result, launched = run_job(device, job, settings.timeout_s)
    return _latency(result, launched)


def measure_chain(device, chain, settings: RunSettings) -> Measurement:
    """One transcription job: the chain's builds (and their companions) and the corpus audio, pushed once."""
    from harness.accuracy.corpus import read_manifest

    models = []
    for role, art in chain.parts.items():
        models.append(_model_entry(role, device.push(art.path, art.sha256), art.path, art.sha256))
        for companion_role, path in art.companions.items():
            models.append(_model_entry(companion_role, push_file(device, path), path))
    corpus = read_manifest(chain.corpus)
    utterances = corpus.utterances[: chain.limit or None]
    with tempfile.TemporaryDirectory() as scratch:
        audio = push_corpus_audio(device, corpus, utterances, Path(scratch))
    job = _job("transcribe", models, device, settings, audio=[{"id": u.id, "path": audio[u.id][0]} for u in utterances])
    job["iterations"] = 1  # each utterance once; warm-up is the app's own first pass
    result, launched = run_job(device, job, settings.timeout_s)
    texts = {u.id: u.text for u in utterances}
    records = [{"id": t["id"], "reference": texts[t["id"]], "hypothesis": t["text"].strip(), "tokens": t.get("tokens", 0),
                "mel_ms": None, "encoder_ms": t.get("encoder_ms"), "decoder_ms_per_token": t.get("decoder_ms_per_token"),
                "total_ms": t["latency_ms"], "audio_s": audio[t["id"]][1],
                "rtf": t["latency_ms"] / 1000 / audio[t["id"]][1] if audio[t["id"]][1] else None}
               for t in result["transcripts"]]
    return Measurement(samples_ms=[r["total_ms"] for r in records], transcripts=records,
                       warmup_ms=result.get("warmup_ms", []), load_ms=result["load_ms"],
                       peak_rss_mb=result.get("peak_memory_mb"), extra={**_extra(result), "utterances": len(records)},
                       thermals_epoch=_thermals(result, launched))
