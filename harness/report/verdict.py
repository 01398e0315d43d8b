"""The one verdict rule: what each budget bounds, which rows it judges, and how verdicts add up.

Every judgement the harness makes of a stored run is a :class:`Check` made here or by the nightly's
comparisons (harness/nightly/checks.py).  The report's tiles and tables, ``junit.xml``, ``nightly.json``
and the exit code of ``harness nightly`` all read the same list, so they cannot disagree.

What each budget bounds (``budgets_p95_ms`` in a plan; every budget is on a P95):

==============  ===========================================  ===============================================
budget          the quantity it bounds                       the rows it judges
==============  ===========================================  ===============================================
``vad``         one VAD window                               ``vad`` cells
``asr``         the ASR per utterance (log-mel + encoder +   transcription chains (their per-utterance
                decoding)                                    totals); ``asr`` bundle, ``asr-encoder`` and
                                                             ``mel`` cells alone (one call per utterance: a
                                                             part that misses the whole budget misses it)
(none)          one decoder step is a fraction of an         ``asr-decoder`` cells: "no budget" (for this
                utterance's decoding                         stage)
``llm_npu``     time to first token on an NPU backend        ``llm`` cells on an NPU backend
``llm_cpu``     time to first token elsewhere                ``llm`` cells on any other backend
``pipeline``    the per-utterance total (VAD + ASR + LLM)    voice pipelines (chains with ``vad``/``llm``)
==============  ===========================================  ===============================================

A budget verdict: "budget miss" when the P95 reaches the budget, "near budget" when only its 95% interval
does, "pass" otherwise; "no P95" when the runner reported none; "failed" when the cell did not run.

Statuses, worst first (``SEVERITY``); the three ``FAILING`` ones fail a night.  A tile (device and stage) is
the worst status of every check under it, and links to the row that made it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.stats import Interval
from harness.words import counted, plural

# "missing tonight": a cell or chain the baseline measured that this run has no counterpart of (a broken export
# whose glob matched nothing, a renamed chain); a nightly that passed it would hide exactly what it must catch.
MISSING = "missing tonight"
FAILING = ("failed", MISSING, "regression", "budget miss")
# "new" (nothing to compare with) ranks below "pass": a first night's tiles still say what its budgets found.
# A WER comparison with too few utterances for an interval: it could not call a change either way.
TOO_FEW_UTTERANCES = "too few utterances"
SEVERITY = ("failed", MISSING, "regression", "budget miss", "near budget", "suspect", "shift", "too noisy", "too few runs",
            TOO_FEW_UTTERANCES, "not comparable", "no P95", "no budget", "improvement", "pass", "new")
NO_BUDGET = "no budget"
# Checks that could not judge (nothing to compare, not like with like, too noisy, nothing to judge against).
UNJUDGED = ("new", "too few runs", TOO_FEW_UTTERANCES, "not comparable", "too noisy", "no P95", NO_BUDGET)
# Tile groups that are not a build's stage.
CHAIN_GROUP, PIPELINE_GROUP = "asr-chain", "pipeline"


@dataclass
class Check:
    """One judgement of one row: a budget, a comparison with the baseline, a failure."""

    device_id: str
    subject: str  # build label, chain name or pipeline name
    kind: str  # latency | wer | size | budget | memory | run | history
    # pass | regression | improvement | budget miss | near budget | suspect | shift | too noisy | too few runs |
    # not comparable | no P95 | no budget | failed | missing tonight | new
    status: str
    detail: str  # the one-line reason
    data: dict[str, Any] = field(default_factory=dict)
    group: str = ""  # the tile it counts under: the build's stage, "asr-chain" or "pipeline"
    anchor: str = ""  # id of the report row that shows it

    @property
    def failing(self) -> bool:
        return self.status in FAILING

    @property
    def tile_group(self) -> str:
        """The tile it counts under: its group, else a WER check's chain group, else its kind."""
        return self.group or {"wer": CHAIN_GROUP}.get(self.kind, self.kind)


@dataclass
class Tile:
    device_id: str
    group: str
    status: str  # the worst under it
    anchor: str  # the first row with that status
    counts: dict[str, int]

    @property
    def failing(self) -> bool:
        return self.status in FAILING


def severity(status: str) -> int:
    return SEVERITY.index(status) if status in SEVERITY else len(SEVERITY)


def budget_status(p95_ms: float | None, p95_ci: Interval | None, budget_ms: float | None) -> str:
    """The budget verdict of a P95 and its interval (the rule in the module docstring)."""
    if budget_ms is None:
        return NO_BUDGET
    if p95_ms is None:
        return "no P95"
    if p95_ms >= budget_ms:
        return "budget miss"
    if p95_ci is not None and p95_ci.high >= budget_ms:
        return "near budget"
    return "pass"


NO_PEAK = "no peak"


def memory_status(peak_mb: float | None, budget_mb: float | None) -> str:
    """The verdict of a peak memory against a memory budget (``pipeline_memory_mb``): the latency budgets' rule
    (:func:`budget_status`) on a measured peak, which has no interval; "no peak" when none was measured."""
    if peak_mb is None and budget_mb is not None:
        return NO_PEAK
    return budget_status(peak_mb, None, budget_mb)


SIGNIFICANT_DIGITS = 3
_MAX_DECIMALS = 9


def budget_text(budget_ms: float) -> str:
    """A budget as the plan gave it (0.012 stays 0.012)."""
    return f"{budget_ms:g}"


def against_budget(value: float | None, budget: float, unit: str) -> str:
    """A verdict's figure beside its budget, as every verdict cell reads it: "412 ms vs budget 350 ms", "981 MB vs
    budget 100 MB" (a verdict beside "< 350" alone read as if the figure were under it)."""
    return f"{ms_beside_budget(value, budget)} {unit} vs budget {budget_text(budget)} {unit}"


def p95_against_budget(p95_ms: float | None, budget_ms: float) -> str:
    """"P95 412 ms vs budget 350 ms": every latency verdict cell (builds, chains, pipelines)."""
    return f"P95 {against_budget(p95_ms, budget_ms, 'ms')}"


def ms_beside_budget(value_ms: float | None, budget_ms: float | None) -> str:
    """Milliseconds printed beside a budget or in a budget verdict: 3 significant digits, at least the budget's
    own precision, and more while the value would print equal to a budget it differs from, so a value and the
    budget it is judged against never print in contradiction (P95 0.0148 vs budget 0.012, not 0.01)."""
    if value_ms is None:
        return "–"
    if not math.isfinite(value_ms):
        return str(value_ms)
    decimals = _decimals_for_significant(value_ms)
    if budget_ms is not None and math.isfinite(budget_ms):
        decimals = max(decimals, _decimals_of(budget_text(budget_ms)))
        while (decimals < _MAX_DECIMALS and value_ms != budget_ms
               and f"{value_ms:.{decimals}f}" == f"{budget_ms:.{decimals}f}"):
            decimals += 1
    return f"{value_ms:.{decimals}f}"


def _decimals_for_significant(value: float) -> int:
    if value == 0:
        return 0
    return min(_MAX_DECIMALS, max(0, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value)))))


def _decimals_of(text: str) -> int:
    if "e-" in text:
        mantissa, exponent = text.split("e-")
        return min(_MAX_DECIMALS, _decimals_of(mantissa) + int(exponent))
    return len(text.split(".")[1]) if "." in text else 0


def _p95_text(p95_ms: float | None, ci: Interval | None, budget_ms: float | None = None) -> str:
    if p95_ms is None:
        return "P95 not reported"
    text = f"P95 {ms_beside_budget(p95_ms, budget_ms)}"
    if ci:
        text += f" [{ms_beside_budget(ci.low, budget_ms)}, {ms_beside_budget(ci.high, budget_ms)}]"
    return text + " ms"


def budget_check(device_id: str, subject: str, group: str, anchor: str, p95_ms: float | None,
                 p95_ci: Interval | None, budget_name: str | None, budget_ms: float | None, what: str = "") -> Check:
    """A budget check of one row; ``what`` names the quantity when it is not the row's own P95."""
    status = budget_status(p95_ms, p95_ci, budget_ms)
    if budget_ms is None:
        detail = f"no budget for this stage ({group})"
    else:
        detail = f"{what}{_p95_text(p95_ms, p95_ci, budget_ms)} vs {budget_name} budget {budget_text(budget_ms)} ms"
    data = {"p95_ms": p95_ms, "p95_ci": [p95_ci.low, p95_ci.high] if p95_ci else None, "budget_ms": budget_ms}
    return Check(device_id, subject, "budget", status, detail, data, group=group, anchor=anchor)


def _failed_group(cell, stage: str) -> str:
    """The tile a failed cell counts under: a transcription cell is its chain (or pipeline), not its decoder.  A
    chain with a VAD part is a pipeline, as the plan decides it (plan.expand.ChainSpec.is_pipeline)."""
    if cell.task != "transcribe":
        return stage
    return PIPELINE_GROUP if "vad" in cell.extra.get("chain", {}) else CHAIN_GROUP


def cell_check(view) -> Check:
    """A latency cell (harness.report.model.CellView): failed, or its P95 against its stage's budget."""
    cell, stage = view.cell, view.cell.artifact["stage"]
    if view.verdict == "failed":
        return Check(cell.device_id, cell.label, "run", "failed", cell.reason or cell.status,
                     group=_failed_group(cell, stage), anchor=view.row_anchor)
    s = view.summary
    check = budget_check(cell.device_id, cell.label, stage, view.row_anchor, s.p95_ms, s.p95_ci, view.budget_name,
                         view.budget_ms)
    if cell.throttled and check.status == "pass":  # a throttled cell is reported, neither hidden nor trusted
        check.status, check.detail = "suspect", check.detail + "; thermally throttled during measurement"
    return check


def chain_check(chain) -> Check:
    """A transcription chain (ChainView): its per-utterance ASR P95 against the ``asr`` budget."""
    return budget_check(chain.cell.device_id, chain.name, CHAIN_GROUP, chain.row_anchor, chain.timing["p95_total_ms"],
                        chain.p95_ci, "asr", chain.budget_ms, what="ASR per utterance ")


def pipeline_subject(name: str) -> str:
    """What a voice pipeline's checks are of (its ASR chain's checks are of the chain's own name)."""
    return f"pipeline {name}"


def pipeline_check(pipeline) -> Check:
    """A voice pipeline (PipelineView): its per-utterance total P95 against the ``pipeline`` budget."""
    chain = pipeline.chain
    return budget_check(chain.cell.device_id, pipeline_subject(pipeline.name), PIPELINE_GROUP, pipeline.row_anchor,
                        pipeline.p95_ms, pipeline.p95_ci, "pipeline", pipeline.budget_ms,
                        what="whole pipeline per utterance ")


def pipeline_memory_check(pipeline) -> Check | None:
    """A voice pipeline's peak memory against ``pipeline_memory_mb`` (:func:`memory_status`), when it has both: a
    peak over the budget fails the night as a latency budget miss does (the table shows "no peak" otherwise)."""
    status = pipeline.memory_verdict
    if status not in ("pass", "budget miss"):
        return None
    detail = (f"whole pipeline peak memory {ms_beside_budget(pipeline.peak_rss_mb, pipeline.memory_budget_mb)} MB "
              f"vs memory budget {budget_text(pipeline.memory_budget_mb)} MB")
    data = {"peak_mb": pipeline.peak_rss_mb, "budget_mb": pipeline.memory_budget_mb}
    return Check(pipeline.chain.cell.device_id, pipeline_subject(pipeline.name), "memory", status, detail, data,
                 group=PIPELINE_GROUP, anchor=pipeline.row_anchor)


def run_judgements(data) -> list[Check]:
    """Every judgement of a run on its own (no baseline): each plan cell, chain and pipeline (its latency, then its
    memory), in report order."""
    checks = [cell_check(v) for v in data.cells if not v.role]
    checks += [chain_check(c) for c in data.chains]
    for p in data.pipelines:
        checks += [check for check in (pipeline_check(p), pipeline_memory_check(p)) if check is not None]
    return checks


def report_checks(data) -> list[Check]:
    """What the report judges: the nightly's checks when it has them (they include run_judgements), else the run's
    own.  Checks without a row elsewhere get one in the nightly table (``check-N``)."""
    checks = data.checks or run_judgements(data)
    for i, check in enumerate(checks, 1):
        if not check.anchor:
            check.anchor = f"check-{i}"
    return checks


# The run's own rows (plan cells, chains, pipelines) by budget verdict, as summary tiles: (status, words, CSS class).
ROW_TILES = (("pass", "within budget", "pass"), ("near budget", "near budget", "flag"),
             ("budget miss", "budget miss (P95)", "over"), ("suspect", "suspect (throttled)", "flag"),
             ("no P95", "no P95 reported", ""), ("failed", "failed", "failed"), (NO_BUDGET, "no budget for stage", ""))


ALWAYS_SHOWN = ("pass", "budget miss", "failed")  # shown at 0 too: "0 failed" is news; the rest only when there


@dataclass
class RowSummary:
    """How many rows the run judged on their own (budgets and failures) and with what verdict; adds up."""

    cells: int
    chains: int
    pipelines: int
    tiles: list[tuple[int, str, str]]  # (count, words, CSS class): the verdicts rows have, summing to total

    @property
    def total(self) -> int:
        return self.cells + self.chains + self.pipelines


def row_summary(checks: list[Check]) -> RowSummary:
    """The summary tiles of a run: its own rows (reference and A/A cells are not judged, so not counted)."""
    rows = [c for c in checks if c.kind in ("budget", "run")]
    chains = sum(c.group == CHAIN_GROUP for c in rows)
    pipelines = sum(c.group == PIPELINE_GROUP for c in rows)
    known = ROW_TILES + tuple((status, status, "") for status in sorted({c.status for c in rows}
                                                                         - {t[0] for t in ROW_TILES}))
    counts = [(sum(c.status == status for c in rows), status, words, css) for status, words, css in known]
    tiles = [(n, words, css) for n, status, words, css in counts if n or status in ALWAYS_SHOWN]
    return RowSummary(len(rows) - chains - pipelines, chains, pipelines, tiles)


def worst(checks: list[Check]) -> str:
    """A run's (or night's) verdict: the worst status of its checks, "pass" when there are none."""
    return min((c.status for c in checks), key=severity, default="pass")


def tiles(checks: list[Check]) -> list[Tile]:
    """One tile per device and group: the worst status under it, linking to the first row with that status."""
    by_key: dict[tuple[str, str], list[Check]] = {}
    for check in checks:
        by_key.setdefault((check.device_id, check.tile_group), []).append(check)
    out = []
    for (device_id, group), mine in sorted(by_key.items()):
        first = min(mine, key=lambda c: severity(c.status))
        counts: dict[str, int] = {}
        for c in mine:
            counts[c.status] = counts.get(c.status, 0) + 1
        out.append(Tile(device_id, group, first.status, first.anchor, counts))
    return out


# A comparison that could not call a change it was asked to: not failing the night, but shown beside what failed,
# not folded among the passes (a changed build left undecided is what a 9 am reader must not miss).
UNDECIDED = ("too noisy", "too few runs", TOO_FEW_UTTERANCES, "not comparable")
# The banner's counts: (statuses counted, noun, plural); "undecided" counts the statuses above.
BANNER = ((("regression",), "regression", None), (("budget miss",), "budget miss", None),
          ((MISSING,), MISSING, MISSING), (("failed",), "failed cell", None), (UNDECIDED, "undecided", "undecided"))


@dataclass
class Headline:
    """The first line of a nightly page: passed or failed, its counts and its baseline."""

    passed: bool
    counts: dict[str, int]  # the banner's counts by plural noun: regressions, budget misses, ..., undecided
    failing_by_kind: list[tuple[str, list[Check]]]
    undecided: list[Check]  # comparisons that could not call a change (UNDECIDED), listed beside the failing
    passing: list[Check]
    phrases: list[str] = field(default_factory=list)  # the counts in words: "1 regression", "0 budget misses"


def headline(checks: list[Check]) -> Headline:
    def by_severity(mine):
        return sorted(mine, key=lambda c: (severity(c.status), c.device_id, c.subject))

    failing = [c for c in checks if c.failing]
    kinds: dict[str, list[Check]] = {}
    for c in by_severity(failing):
        kinds.setdefault(c.kind, []).append(c)
    counts, phrases = {}, []
    for statuses, noun, plural_form in BANNER:
        n = sum(c.status in statuses for c in checks)
        counts[plural_form or plural(noun)] = n
        phrases.append(counted(n, noun, plural_form))
    undecided = by_severity(c for c in checks if c.status in UNDECIDED)
    passing = by_severity(c for c in checks if not c.failing and c.status not in UNDECIDED)
    return Headline(not failing, counts, sorted(kinds.items()), undecided, passing, phrases)
