"""The voice pipeline in the report: per-utterance stage times, the P95 a user waits, memory, INT4 vs INT8.

Everything comes from the stored per-utterance rows of pipeline chains (transcripts with ``pipeline_ms``).
Intervals are distribution-free order-statistic intervals over utterances (harness.stats.quantile): they
say how well this run's utterances pin down the quantile, not how the next night will vary (one process
measured them all); a run with too few utterances for a bound says so instead of guessing one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.report.model import _PRECISION, ChainView
from harness.report.verdict import against_budget, budget_status, memory_status
from harness.stats import Interval, per_utterance_p50, per_utterance_p95
from harness.stats.quantile import quantile_interval

STAGES = ("vad_ms", "mel_ms", "encoder_ms", "decoding_ms", "llm_ms")
STAGE_LABELS = {"vad_ms": "VAD", "mel_ms": "log-mel", "encoder_ms": "encoder", "decoding_ms": "decoding",
                "llm_ms": "LLM next word"}


@dataclass
class PipelineView:
    chain: ChainView
    totals_ms: np.ndarray  # per utterance, in utterance order
    stage_medians_ms: dict[str, float]  # each stage's median over utterances (the bar's segments)
    p95_ms: float
    p95_ci: Interval | None
    budget_ms: float | None
    verdict: str
    peak_rss_mb: float | None
    memory_budget_mb: float | None
    no_speech: int  # utterances where the VAD found nothing (no ASR, no LLM)

    @property
    def p50_ms(self) -> float | None:
        return per_utterance_p50(self.totals_ms)

    @property
    def name(self) -> str:
        return self.chain.chain.get("name", "")

    @property
    def row_anchor(self) -> str:
        """The pipeline's row in the pipeline table."""
        return f"row-pipeline-{self.chain.cell.cell_id}"

    @property
    def shares(self) -> list[tuple[str, float, float]]:
        """(stage, median ms, share of the summed medians) for the table."""
        total = sum(self.stage_medians_ms.values()) or 1.0
        return [(STAGE_LABELS[k], v, v / total) for k, v in self.stage_medians_ms.items()]

    @property
    def memory_verdict(self) -> str:
        """Peak memory with every stage loaded against ``pipeline_memory_mb`` (harness.report.verdict's rule)."""
        return memory_status(self.peak_rss_mb, self.memory_budget_mb)

    @property
    def memory_against_budget(self) -> str:
        """"982 MB vs budget 100 MB" beside the memory verdict, as a latency verdict shows its P95 beside its budget
        (a verdict beside "< 100 MB" alone read as if the peak were under it)."""
        return against_budget(self.peak_rss_mb, self.memory_budget_mb, "MB")


@dataclass
class PipelineDiff:
    """B − A per utterance (A the higher precision) and its median; ``ci`` is None: the pipelines were not measured
    side by side."""

    device_id: str
    a: PipelineView
    b: PipelineView
    median_diff_ms: float
    ci: Interval | None
    p95_a_ms: float
    p95_b_ms: float


def _stage_times(row: dict) -> dict[str, float]:
    mel, enc = row.get("mel_ms") or 0.0, row.get("encoder_ms") or 0.0
    return {"vad_ms": row.get("vad_ms") or 0.0, "mel_ms": mel, "encoder_ms": enc,
            "decoding_ms": max((row.get("total_ms") or 0.0) - mel - enc, 0.0), "llm_ms": row.get("llm_ms") or 0.0}


def pipeline_view(chain: ChainView, budgets: dict) -> PipelineView | None:
    """The pipeline figures of a transcription cell, or None when it ran ASR alone."""
    rows = [t for t in chain.cell.transcripts if t.get("pipeline_ms") is not None]
    if not rows:
        return None
    totals = np.asarray([t["pipeline_ms"] for t in rows], dtype=float)
    stages = [_stage_times(t) for t in rows]
    medians = {k: float(np.median([s[k] for s in stages])) for k in STAGES}
    p95 = per_utterance_p95(totals)
    ci, _ = quantile_interval(totals, 0.95)
    budget = budgets.get("pipeline")
    return PipelineView(chain=chain, totals_ms=totals, stage_medians_ms=medians, p95_ms=p95, p95_ci=ci,
                        budget_ms=budget, verdict=budget_status(p95, ci, budget),
                        peak_rss_mb=chain.cell.peak_rss_mb, memory_budget_mb=budgets.get("pipeline_memory_mb"),
                        no_speech=sum(1 for t in rows if not t.get("speech_s")))


def compare_pipelines(views: list[PipelineView]) -> list[PipelineDiff]:
    """Each pair of pipelines on one device over the same utterances, higher precision first (by the ASR's
    quantization, then the LLM's): the whole pipeline's difference per utterance."""
    def rank(v: PipelineView) -> tuple:
        c = v.chain.chain
        return tuple(_PRECISION.get((c.get(role) or {}).get("quantization"), 9) for role in ("encoder", "model", "llm"))

    out = []
    by_device: dict[str, list[PipelineView]] = {}
    for v in views:
        by_device.setdefault(v.chain.cell.device_id, []).append(v)
    for device_id, group in by_device.items():
        group.sort(key=rank)
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                ids_a = [t["utt_id"] for t in a.chain.cell.transcripts]
                if ids_a != [t["utt_id"] for t in b.chain.cell.transcripts] or len(a.totals_ms) != len(b.totals_ms):
                    continue
                # No interval: the two pipelines ran one after the other, not alternately (harness.report.quant.
                # chains_one_after_another), so an utterance's two times are not a pair in time.
                diffs = b.totals_ms - a.totals_ms
                out.append(PipelineDiff(device_id, a, b, float(np.median(diffs)), None, a.p95_ms, b.p95_ms))
    return out
