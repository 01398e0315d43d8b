"""A run's cells and transcripts as tables (``harness export --what cells|transcripts``): the figures the report shows,
computed by the report's own code (harness.report.model), one row per cell or per utterance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.extras import require
from harness.report.model import CellView, ChainView, build_report_data, chain_view
from harness.store import CellRecord, Store
from harness.store.db import cell_energy_of

if TYPE_CHECKING:
    import pandas as pd

RUN_LEVEL = "run-level"  # P50/P95: geometric mean of each run's percentile, interval across runs (a latency cell)
PER_UTTERANCE = "per utterance"  # P50/P95 over the utterances' totals, interval from order statistics (a chain)


def _identity(cell: CellRecord) -> dict[str, Any]:
    a = cell.artifact
    return {"run_id": cell.run_id, "device_id": cell.device_id, "cell_key": cell.cell_key, "task": cell.task,
            "runner": cell.runner, "model": a["model"], "stage": a["stage"], "format": a["format"],
            "backend": a["backend"], "quantization": a["quantization"], "artifact_sha256": a["sha256"],
            "size_bytes": a["size_bytes"],
            "chain": (cell.extra.get("chain") or {}).get("name") if cell.task == "transcribe" else None}


def _interval(prefix: str, interval) -> dict[str, float | None]:
    return {f"{prefix}_ci_low_ms": interval.low if interval else None,
            f"{prefix}_ci_high_ms": interval.high if interval else None}


def _energy(cell: CellRecord) -> dict[str, Any]:
    e = cell_energy_of(cell)
    return {"energy_mj_per_unit": e.mj_per_unit if e else None, "energy_unit": e.unit if e else None,
            "energy_span": e.span if e and e.mj_per_unit is not None else None,
            "energy_span_why": e.span_why if e else None, "energy_idle_mw": e.idle_mw if e else None,
            "energy_active_mw": e.active_mw if e else None, "energy_runs": e.runs if e else None,
            "energy_runs_tried": e.runs_tried if e else None, "energy_not_measured": e.not_measured if e else None}


def _common(cell: CellRecord) -> dict[str, Any]:
    """What every cell row has, whatever its kind: status, counts, memory, energy, heat."""
    return {"status": cell.status, "reason": cell.reason, "runs_planned": cell.runs_planned,
            "runs_done": cell.runs_done, "warmup_iterations": cell.warmup_iterations, "iterations": cell.iterations,
            "load_ms": cell.load_ms, "first_inference_ms": cell.first_inference_ms, "peak_rss_mb": cell.peak_rss_mb,
            "rss_before_load_mb": cell.extra.get("rss_before_load_mb"), **_energy(cell), "throttled": cell.throttled,
            "started_at": cell.started_at, "finished_at": cell.finished_at}


def _latency_row(view: CellView) -> dict[str, Any]:
    s, cov = view.summary, view.coverage
    return {**_identity(view.cell), **_common(view.cell), "percentiles": RUN_LEVEL if s else None,
            "runs": s.runs if s else None, "measured_samples": s.n if s else None,
            "summary_only": s.summary_only if s else None, "p50_ms": s.p50_ms if s else None,
            **_interval("p50", s.p50_ci if s else None), "p95_ms": s.p95_ms if s else None,
            **_interval("p95", s.p95_ci if s else None),
            "p90_ms_pooled": s.p90_ms if s else None, "p99_ms_pooled": s.p99_ms if s else None,
            "mean_ms_pooled": s.mean_ms if s else None, "std_ms_pooled": s.std_ms if s else None,
            "cv_pooled": s.cv if s else None, "detectable_ratio": view.detectable_ratio,
            "budget_name": view.budget_name, "budget_ms": view.budget_ms, "verdict": view.verdict,
            "flags": "; ".join(view.flags),
            "coverage_backend": cov.intended if cov else None, "coverage_time_share": cov.time_share if cov else None,
            "coverage_operator_share": cov.operator_share if cov else None,
            "coverage_fallback": cov.fallback if cov else None,
            "coverage_fallback_time_share": cov.fallback_time_share if cov else None}


def _chain_row(view: ChainView) -> dict[str, Any]:
    timing = view.timing
    return {**_identity(view.cell), **_common(view.cell), "percentiles": PER_UTTERANCE,
            "measured_samples": len(view.cell.transcripts), "p50_ms": timing["total_ms"],
            "p95_ms": timing["p95_total_ms"], **_interval("p95", view.p95_ci),
            "budget_name": "asr" if view.budget_ms is not None else None, "budget_ms": view.budget_ms,
            "verdict": view.verdict, "utterances": len(view.score.utterances),
            "reference_words": view.score.words, "wer": view.score.wer}


def cells_frame(store: Store, run_id: str) -> pd.DataFrame:
    """One row per cell of a run, with the summary the report shows for it: a latency cell's run-level P50/P95 and
    intervals, a transcription chain's per-utterance P50/P95 and WER; status, memory, energy, coverage, identity."""
    pd = require("pandas", "export", "harness export")
    data = build_report_data(store, run_id)
    rows = sorted([*((v.cell.cell_id, _latency_row(v)) for v in data.cells),
                   *((v.cell.cell_id, _chain_row(v)) for v in data.chains)], key=lambda pair: pair[0])  # plan order
    return pd.DataFrame([[row.get(c) for c in CELL_COLUMNS] for _, row in rows], columns=list(CELL_COLUMNS))


def transcripts_frame(store: Store, run_id: str) -> pd.DataFrame:
    """One row per utterance of a run's transcription cells: what was said and heard, the per-utterance times the
    runner stored, and the word errors the report counts (after its normalisation)."""
    pd = require("pandas", "export", "harness export")
    run = store.run(run_id)
    rows = []
    for cell in store.cells(run_id):
        if cell.task != "transcribe" or not cell.transcripts:
            continue
        view = chain_view(cell, run.budgets)
        for stored, score in zip(cell.transcripts, view.score.utterances):
            row = {**_identity(cell), "status": cell.status, **stored,
                   "reference_words": score.words, "substitutions": score.substitutions, "deletions": score.deletions,
                   "insertions": score.insertions, "errors": score.errors, "utterance_wer": score.wer}
            rows.append([row.get(c) for c in UTTERANCE_COLUMNS])
    return pd.DataFrame(rows, columns=list(UTTERANCE_COLUMNS))


IDENTITY = ("run_id", "device_id", "cell_key", "task", "runner", "model", "stage", "format", "backend",
            "quantization", "artifact_sha256", "size_bytes", "chain")
# The columns of a cells export, in order (docs/reports-nightly.md says what each holds); a row leaves empty what
# its kind of cell has not (a chain has no run-level interval, a latency cell no WER).
CELL_COLUMNS = (*IDENTITY, "status", "reason", "verdict", "budget_name", "budget_ms", "flags",
                "runs_planned", "runs_done", "runs", "warmup_iterations", "iterations", "measured_samples",
                "summary_only", "percentiles", "p50_ms", "p50_ci_low_ms", "p50_ci_high_ms", "p95_ms", "p95_ci_low_ms",
                "p95_ci_high_ms", "p90_ms_pooled", "p99_ms_pooled", "mean_ms_pooled", "std_ms_pooled", "cv_pooled",
                "detectable_ratio", "utterances", "reference_words", "wer", "load_ms", "first_inference_ms",
                "peak_rss_mb", "rss_before_load_mb", "energy_mj_per_unit", "energy_unit", "energy_span",
                "energy_span_why", "energy_idle_mw", "energy_active_mw", "energy_runs", "energy_runs_tried",
                "energy_not_measured", "coverage_backend", "coverage_time_share", "coverage_operator_share",
                "coverage_fallback", "coverage_fallback_time_share", "throttled", "started_at", "finished_at")
# An utterance's stored columns (the transcripts table, harness/store/schema.sql), then its word errors as scored.
UTTERANCE_COLUMNS = (*IDENTITY, "status", "utt_id", "reference", "hypothesis", "tokens", "audio_s",
                     "mel_ms", "encoder_ms", "decoder_ms_per_token", "total_ms", "rtf", "vad_ms", "llm_ms",
                     "pipeline_ms", "speech_s", "continuation", "reference_words", "substitutions", "deletions",
                     "insertions", "errors", "utterance_wer")
