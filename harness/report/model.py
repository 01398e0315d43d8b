"""What a report shows, computed from the store: per-cell summaries and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


from harness.plan.budgets import budget_for
from harness.profile import CellOperator, merged
from harness.profile.records import NESTING, profiled_total_ms, top_level
from harness.profile.coverage import Coverage, coverage
from harness.report.verdict import (Headline, Tile, budget_status, headline, p95_against_budget, report_checks,
                                    tiles)
from harness.run.engine import AA_SUFFIX, REF_SUFFIX
from harness.stats import Interval, LatencySummary, per_utterance_p50, per_utterance_p95, percentile, summarize
from harness.store import CellRecord, RunRecord, Store
from harness.store.db import PROFILING_FAILURE_KEY, cell_energy_of
from harness.store.state import RunState, run_state
from harness.thermal.energy import RunEnergy


# Runner figures worth a line under a cell (from its stored extra), with their labels.
FIGURES = [("total_ms_median", "generation (median) ms"), ("prefill_tokens_per_s_median", "prefill tok/s"),
           ("decode_tokens_per_s_median", "decode tok/s"), ("prompt_tokens", "prompt tokens"),
           ("generated_tokens", "generated tokens"), ("compile_ms", "Core ML compile ms"),
           ("compute_units", "compute units"), ("app_version", "app"), ("product_type", "device"),
           ("os_version", "iOS")]
TOP_OPERATORS_SHOWN = 5  # per cell: a short table; the store keeps every operator
NOT_PROFILED = ("no operator profile for this cell: it had no profiling run (plan key profile_runs, 0 turns it "
                "off), its runner has no operator profiler, or it failed")
# Beside "profiled total X ms vs cell P50 Y ms": what the first figure is, and why the two differ either way.
PROFILED_TOTAL_MEANING = ("The profiled total is the median, over the profiling runs' inferences, of the summed time "
                          "of the operators in one inference. It can sit above the P50 (the profiler adds its own "
                          "overhead at every node) or below it (time spent outside operators: input copies, the "
                          "runtime's own work between nodes, waiting for a delegate).")


@dataclass
class CellView:
    cell: CellRecord
    summary: LatencySummary | None
    budget_name: str | None = None
    budget_ms: float | None = None
    verdict: str = "no budget"  # harness.report.verdict.budget_status, or failed
    flags: list[str] = field(default_factory=list)
    plot_svg: str = ""  # inline <svg>, escaped by harness.report.svg
    thermal_svg: str = ""  # inline <svg>, escaped by harness.report.svg

    @property
    def anchor(self) -> str:
        return f"cell-{self.cell.cell_id}"

    @cached_property
    def operators(self) -> list[CellOperator]:
        """The cell's operators over its profiling runs, slowest first (none when it was not profiled)."""
        return merged(self.cell.profiles)

    @cached_property
    def coverage(self) -> Coverage | None:
        return coverage(self.cell.profiles, self.cell.artifact["backend"])

    @property
    def top_operators(self) -> list[tuple[CellOperator, float]]:
        """The slowest operators with each one's share of the profiled time per inference."""
        return operator_rows(self.operators)[:TOP_OPERATORS_SHOWN]

    @property
    def profiled_against_p50(self) -> str | None:
        """"profiled total 0.61 ms vs cell P50 0.56 ms": whether the profile's operators are the measured time."""
        total_ms = profiled_total_ms(self.cell.profiles)
        if total_ms is None or self.summary is None:
            return None
        return f"profiled total {op_ms(total_ms)} ms vs cell P50 {op_ms(self.summary.p50_ms)} ms"

    @property
    def p95_against_budget(self) -> str:
        """"P95 412 ms vs budget 350 ms" beside the latency verdict, as the memory verdict reads its peak."""
        p95_ms = self.summary.p95_ms if self.summary is not None else None
        return p95_against_budget(p95_ms, self.budget_ms)

    @property
    def profiling_failure(self) -> str | None:
        """Why the cell's profiling failed ("killed by SIGSEGV (exit -11)"), as its profiling step stored it; None when
        it did not (the report is the only place a reader sees that the profile is missing for a reason)."""
        return self.cell.extra.get(PROFILING_FAILURE_KEY) or None

    @property
    def coverage_column(self) -> tuple[str, str]:
        """(text, title) of the latency table's coverage column: "XNNPACK 38%", and "CPU fallback 62%" as text when
        the cell is flagged (a hover alone is lost in print); "–" with why when the cell has no operator profile."""
        cover = self.coverage
        if cover is None:
            failure = self.profiling_failure
            return "–", (f"profiling run failed: {failure}" if failure else NOT_PROFILED)
        text = f"{cover.intended} {cover.time_share:.0%}"
        if cover.flagged:
            text += f" ⚑ CPU fallback {cover.fallback_time_share:.0%}"
        return text, cover.reading()

    @property
    def row_anchor(self) -> str:
        """The cell's row in the latency table (its verdict's row)."""
        return f"row-cell-{self.cell.cell_id}"

    @property
    def energy(self) -> RunEnergy | None:
        """The cell's energy per inference (per token, per utterance) on a phone, or why it was not measured."""
        return cell_energy_of(self.cell)

    @property
    def role(self) -> str:
        """'' for the plan's own cells; what an extra cell is for otherwise."""
        key = self.cell.cell_key
        if key.endswith(REF_SUFFIX):
            return "last night's build, re-measured beside tonight's"
        if key.endswith(AA_SUFFIX):
            return "A/A copy (calibration)"
        return ""

    @property
    def detectable_ratio(self) -> float | None:
        """The smallest slowdown a nightly with these settings finds with 80% power against a night
        just like this one (same runs, same spread): None when too few runs to detect a change (the rule of
        harness.stats.runlevel.shown_interval and sensible_ratio)."""
        from harness.stats.compare import ALPHA, MIN_RUNS, POWER
        from harness.stats.runlevel import min_detectable_ratio, sensible_ratio

        s = self.summary
        if s is None or s.p50_log_sd is None or s.runs < MIN_RUNS:
            return None
        ratio = min_detectable_ratio(s.p50_log_sd * (2 / s.runs) ** 0.5, 2 * (s.runs - 1), ALPHA, POWER)
        return ratio if sensible_ratio(ratio) else None

    @property
    def weights_note(self) -> str | None:
        """What the build's weights are, when they are not a trained model's (the zoo's seeded LLM builds)."""
        weights = (self.cell.artifact.get("source") or {}).get("weights")
        return weights if isinstance(weights, str) and weights.startswith("seeded random") else None

    @property
    def figures(self) -> list[tuple[str, str]]:
        """Runner-specific figures (LLM throughput, the iPhone app's compile time and identity)."""
        out = []
        for key, label in FIGURES:
            value = self.cell.extra.get(key)
            if isinstance(value, float):
                out.append((label, f"{value:.1f}"))
            elif isinstance(value, (int, str)):
                out.append((label, str(value)))
        return out


@dataclass
class ChainView:
    """A transcription cell: its WER from the stored transcripts, its timing, its worst utterances."""

    cell: CellRecord
    score: Any  # harness.accuracy.wer.CorpusScore
    timing: dict[str, float | None]
    budget_ms: float | None  # the asr budget: it bounds the ASR per utterance, which a chain measures
    p95_ci: Interval | None = None  # of the per-utterance P95 (order statistics over utterances)

    @property
    def chain(self) -> dict[str, Any]:
        return self.cell.extra.get("chain", {})

    @property
    def name(self) -> str:
        return self.chain.get("name", "")

    @property
    def row_anchor(self) -> str:
        """The chain's row in the accuracy table."""
        return f"row-chain-{self.cell.cell_id}"

    @property
    def verdict(self) -> str:
        return budget_status(self.timing["p95_total_ms"], self.p95_ci, self.budget_ms)

    @property
    def times_exclude_log_mel(self) -> bool:
        """ExecuTorch's whisper_runner times ``transcribe`` alone (encoder + decoding): main.cpp runs the
        preprocessor's log-mel before its timer starts (examples/models/whisper/main.cpp, v1.1.0-v1.4.0)."""
        from harness.runners.whisper_runner import NAME as WHISPER_RUNNER

        return self.cell.runner == WHISPER_RUNNER

    @property
    def asr_parts(self) -> list[dict[str, Any]]:
        """The ASR builds: encoder and decoder of a split chain, or its one bundle (the decoder last)."""
        chain = self.chain
        return [chain[role] for role in ("encoder", "decoder") if role in chain] or [chain["model"]]

    @property
    def worst(self) -> list:
        ranked = sorted(self.score.utterances, key=lambda u: (-u.errors, u.id))
        return [u for u in ranked if u.errors][:5]


@dataclass
class ComparisonView:
    device_id: str
    a: ChainView  # the higher-precision build (baseline)
    b: ChainView
    result: Any  # harness.accuracy.bootstrap.PairedComparison


@dataclass
class ReportData:
    run: RunRecord
    devices: list[dict[str, Any]]
    cells: list[CellView]
    skipped: list[dict[str, Any]]
    chains: list[ChainView] = field(default_factory=list)
    comparisons: list[ComparisonView] = field(default_factory=list)
    checks: list = field(default_factory=list)  # nightly: harness.nightly.checks.Check, against baseline_run_id
    baseline_run_id: str | None = None
    history: list = field(default_factory=list)  # nightly: harness.nightly.history.Series
    pipelines: list = field(default_factory=list)  # harness.report.pipeline.PipelineView
    pipeline_diffs: list = field(default_factory=list)  # harness.report.pipeline.PipelineDiff
    pipeline_svg: str = ""  # inline <svg>, escaped by harness.report.svg
    state: RunState | None = None  # complete or not, by the rule every output reads (harness.store.state)

    @property
    def counts(self) -> dict[str, int]:
        """How many rows (cells, chains, pipelines) have each budget verdict (or failed)."""
        out: dict[str, int] = {}
        for check in self.judged:
            if check.kind in ("budget", "run"):
                out[check.status] = out.get(check.status, 0) + 1
        return out

    @property
    def judged(self) -> list:
        """Every verdict on this run (harness.report.verdict.Check): the nightly's checks, or the run's own."""
        return report_checks(self)

    @property
    def tiles(self) -> list[Tile]:
        return tiles(self.judged)

    @property
    def headline(self) -> Headline:
        return headline(self.judged)

    @property
    def inferred(self) -> list[CellView]:
        return [v for v in self.cells if v.cell.artifact["inferred"]]


def _verdict(view: CellView, budgets: dict[str, float | None]) -> None:
    cell = view.cell
    if cell.status != "ok" or view.summary is None:
        view.verdict = "failed"
        return
    budget = budget_for(cell.artifact["stage"], cell.artifact["backend"], budgets)
    s = view.summary
    if budget is not None:
        view.budget_name, view.budget_ms = budget
        view.verdict = budget_status(s.p95_ms, s.p95_ci, view.budget_ms)
    if s.warnings:
        view.flags.extend(s.warnings)
    if cell.runs_done < cell.runs_planned:
        view.flags.append(f"incomplete: {cell.runs_done} of {cell.runs_planned} runs stored (resume the run)")
    if cell.throttled:
        view.flags.append("thermally throttled during measurement")
    if cell.artifact["inferred"]:
        view.flags.append("inferred: " + ", ".join(cell.artifact["inferred"]))
    if view.profiling_failure:
        view.flags.append(f"profile failed: {view.profiling_failure}")
    if view.coverage is not None and view.coverage.flagged:
        view.flags.append(view.coverage.flag())


_PRECISION = {"fp32": 0, "bf16": 1, "fp16": 1, "int8": 2, "int4": 3}


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return percentile(vals, 50) if vals else None


def chain_view(cell: CellRecord, budgets: dict[str, float | None]) -> ChainView:
    import numpy as np

    from harness.accuracy.wer import score_corpus
    from harness.stats.quantile import quantile_interval

    ts = cell.transcripts
    score = score_corpus([t["utt_id"] for t in ts], [t["reference"] for t in ts], [t["hypothesis"] for t in ts])
    timing = {key: _median([t[key] for t in ts]) for key in ("total_ms", "encoder_ms", "mel_ms", "decoder_ms_per_token", "rtf")}
    timing["total_ms"] = per_utterance_p50([t["total_ms"] for t in ts])  # the progress line's P50 too
    timing["p95_total_ms"] = per_utterance_p95([t["total_ms"] for t in ts])
    ci = quantile_interval(np.asarray([t["total_ms"] for t in ts], dtype=float), 0.95)[0] if ts else None
    return ChainView(cell=cell, score=score, timing=timing, budget_ms=budgets.get("asr"), p95_ci=ci)


def compare_chains(chains: list[ChainView]) -> list[ComparisonView]:
    """Paired bootstrap between chains on the same device, corpus and format, higher precision first."""
    from harness.accuracy.bootstrap import paired_bootstrap

    out = []
    groups: dict[tuple, list[ChainView]] = {}
    for view in chains:
        c = view.chain
        key = (view.cell.device_id, c.get("corpus"), c.get("limit"), view.cell.artifact["format"])
        groups.setdefault(key, []).append(view)
    for (device_id, *_), views in groups.items():
        views.sort(key=lambda v: _PRECISION.get(v.cell.artifact["quantization"], 9))
        for i, a in enumerate(views):
            for b in views[i + 1:]:
                if a.score.words and [u.id for u in a.score.utterances] == [u.id for u in b.score.utterances]:
                    out.append(ComparisonView(device_id, a, b, paired_bootstrap(a.score, b.score, seed=0)))
    return out


def build_report_data(store: Store, run_id: str) -> ReportData:
    run = store.run(run_id)
    views, chains = [], []
    for cell in store.cells(run_id):
        if cell.task == "transcribe":
            if cell.status == "ok":
                chains.append(chain_view(cell, run.budgets))
                continue
        summary = summarize(cell.samples_ms, cell.run_values(), cell.runs_planned) if cell.status == "ok" else None
        view = CellView(cell=cell, summary=summary)
        _verdict(view, run.budgets)
        views.append(view)
    from harness.report.pipeline import compare_pipelines, pipeline_view

    pipelines = [p for p in (pipeline_view(c, run.budgets) for c in chains) if p is not None]
    return ReportData(run=run, devices=store.devices(run_id), cells=views, skipped=store.skipped(run_id),
                      chains=chains, comparisons=compare_chains(chains), pipelines=pipelines,
                      pipeline_diffs=compare_pipelines(pipelines), state=run_state(store, run_id))


def operator_rows(operators: list[CellOperator]) -> list[tuple[CellOperator, float]]:
    """Top-level operators, slowest first, each followed by the nodes of its subgraph (an If's branch), with each
    one's share of the summed top-level time (a subgraph's time is inside its parent's, so it is counted once).
    Ranked, shown and shared by one figure, the median per inference: one slow call does not reorder the table."""
    parents = top_level(operators)
    total_ms = sum(r.median_per_inference_ms for r in parents)
    rows = []
    for parent in parents:  # merged() ranks them by that figure
        for r in [parent] + [c for c in operators if c.name.startswith(parent.name + NESTING)]:
            rows.append((r, r.median_per_inference_ms / total_ms if total_ms else 0.0))
    return rows


def op_ms(value: float) -> str:
    """An operator's milliseconds to 3 significant figures (0.00412, 0.563, 12.3): a sub-0.01 ms operator does not
    read 0.00 beside its share."""
    return f"{value:#.3g}" if value < 100 else f"{value:.0f}"

