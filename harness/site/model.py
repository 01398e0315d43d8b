"""What the history site shows, read from the store once: every run with its verdict, every series.

A series is one cell identity (device x model, stage, format, backend, quantization: ``identity_of``) in one
plan, across every complete non-calibration run of that plan; a night's level is its run-level geometric
mean, as in the nightly's own history.  Series of different plans are kept apart: plans differ in settings
(iterations, runs), and a level that moved because the plan did is not a change of the build.

ASR chains and voice pipelines have series of their own (``chain_identity``: device, chain name, corpus,
utterance limit and each part's role, quantization and backend): a night's levels are its per-utterance P50
and P95 exactly as the night's report reads them (``ChainView``, ``PipelineView``), never computed again here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from harness.nightly.changepoints import ChangePoint, change_points
from harness.nightly.checks import run_checks
from harness.nightly.history import Series, Step
from harness.nightly.noise import RECENT_PAIRS, learn_floors
from harness.report.html import checks_of
from harness.report.model import ChainView, ReportData, build_report_data
from harness.report.verdict import Check, Headline, headline, pipeline_subject, run_judgements, worst
from harness.run.engine import identity_of
from harness.stats import Interval
from harness.stats.compare import DEFAULT_THRESHOLD
from harness.stats.runlevel import geometric_estimate
from harness.store import RunRecord, Store
from harness.store.db import StoredVerdict
from harness.store.state import runs_by_state
from harness.words import counted

# Said of a night the site judged itself because no nightly stored a verdict for it (a plain 'harness run', or a
# night judged before verdicts were stored).
REPLAYED = "judged by the site: no nightly verdict stored; no history check"


@dataclass
class SeriesPage:
    slug: str
    plan_name: str
    identity: tuple  # identity_of: device, model, stage, format, backend, quantization
    series: Series  # the nightly's history series (levels per night); ``step`` is the newest change point
    sha256: list[str]  # each night's build
    change_points: list[ChangePoint] = field(default_factory=list)

    @property
    def href(self) -> str:
        return f"series/{self.slug}.html"

    def night_of(self, cp: ChangePoint) -> str:
        return self.series.run_ids[cp.index]


@dataclass(frozen=True)
class CellRow:
    """What a night page shows of one cell (small: nights are judged in worker processes)."""

    identity: tuple  # identity_of
    label: str
    p50_ms: float | None
    p95_ms: float | None
    budget_verdict: str  # its P95 against its stage's budget (or "failed")
    night_verdict: str  # the worst of every check the night made of it: budget, failure, latency, size, history


ASR_CHAIN, VOICE_PIPELINE = "ASR chain", "voice pipeline"


@dataclass(frozen=True)
class UtteranceRow:
    """What a night shows of one ASR chain or voice pipeline: its per-utterance figures as the night's report
    reads them (small, as CellRow: nights are judged in worker processes)."""

    kind: str  # ASR_CHAIN or VOICE_PIPELINE
    identity: tuple  # chain_identity
    name: str
    p50_ms: float | None
    p95_ms: float | None
    p95_ci: Interval | None  # order statistics over utterances; None below 72 utterances
    budget_ms: float | None  # the asr budget (chains) or the pipeline budget (pipelines)
    budget_verdict: str  # its per-utterance P95 against that budget
    utterances: int
    builds: str  # each part's role and sha256 prefix: which bytes the night measured
    wer: float | None = None  # ASR chains: corpus WER (None: no reference words)
    shares: tuple = ()  # voice pipelines: (stage, median ms, share of the summed medians) as the report's table
    night_verdict: str = "pass"  # the worst of every check the night made of it: budget, WER, missing

    @property
    def is_chain(self) -> bool:
        """An ASR chain (held to the asr budget, scored by WER), not a voice pipeline."""
        return self.kind == ASR_CHAIN

    @property
    def budget_name(self) -> str:
        return "asr" if self.is_chain else "pipeline"


@dataclass
class Judged:
    """A night's verdict, what it was judged against, its failing checks and its cells."""

    run_id: str
    verdict: str
    detail: str
    baseline_run_id: str | None
    failing: list[Check]
    cells: list[CellRow]
    utterance_rows: list[UtteranceRow] = field(default_factory=list)


@dataclass
class UtteranceSeriesPage:
    """One ASR chain's or voice pipeline's nights in one plan: ``series`` holds the per-utterance P50 and P95
    levels (P95 intervals and change points of each) for the history charts; ``rows`` every night's row."""

    slug: str
    plan_name: str
    kind: str  # ASR_CHAIN or VOICE_PIPELINE
    identity: tuple  # chain_identity
    series: Series
    rows: list[UtteranceRow] = field(default_factory=list)
    change_points: list[ChangePoint] = field(default_factory=list)  # of the per-utterance P50
    p95_change_points: list[ChangePoint] = field(default_factory=list)
    p95_chart_svg: str = ""
    partner: "UtteranceSeriesPage | None" = None  # a pipeline's ASR chain series, and the chain's pipeline series

    @property
    def href(self) -> str:
        return f"series/{self.slug}.html"

    @property
    def budget_ms(self) -> float | None:
        """The newest night's budget (the plan's, as it stood that night)."""
        return self.rows[-1].budget_ms if self.rows else None

    def night_of(self, cp: ChangePoint) -> str:
        return self.series.run_ids[cp.index]


@dataclass
class NightPage:
    run: RunRecord
    slug: str
    device_ids: list[str]
    verdict: str
    detail: str
    baseline_run_id: str | None = None
    failing: list[Check] = field(default_factory=list)
    status_label: str = ""  # "complete", "incomplete (2 lost)", ... (harness.store.state)
    cells: list[tuple[CellRow, SeriesPage | None]] = field(default_factory=list)
    change_points: list[tuple[SeriesPage, ChangePoint]] = field(default_factory=list)  # new levels from this night
    utterances: list[tuple[UtteranceRow, UtteranceSeriesPage | None]] = field(default_factory=list)

    @property
    def href(self) -> str:
        return f"nights/{self.slug}.html"


@dataclass
class SiteData:
    nights: list[NightPage]  # oldest first
    series: list[SeriesPage]
    utterance_series: list[UtteranceSeriesPage] = field(default_factory=list)  # ASR chains and voice pipelines


def slug(text: str) -> str:
    """A file name for ``text`` that no run id or model name can turn into a path elsewhere."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


# A run judged: one that got to the end of its plan, with or without lost cells (a lost cell fails it, as the
# nightly that measured it said); one still running or stopped part way is not judged.
JUDGED = ("complete", "incomplete")


def night_verdict(data: ReportData, checks: list[Check]) -> tuple[str, str, list[Check]]:
    """(verdict, detail, failing checks) by the one verdict rule (harness.report.verdict.headline): "failed"
    when any check fails, else "passed".  ``checks``: the nightly's against a baseline, or the run's own
    judgements (budgets and failures) when it has none."""
    status = data.state.status if data.state is not None else data.run.status
    if status not in JUDGED:
        return status, "not finished: no verdict", []
    head = headline(checks)
    failing = [c for _, of_kind in head.failing_by_kind for c in of_kind]
    return ("passed" if head.passed else "failed"), _detail(head, checks), failing


def _detail(head: Headline, checks: list[Check]) -> str:
    """The headline's counts; when nothing failed, what else than a plain pass the checks found (a shift ...)."""
    # phrases and counts come from one loop over the banner's counts, in one order
    failed = ", ".join(phrase for phrase, n in zip(head.phrases, head.counts.values()) if n)
    if failed:
        return failed
    others: dict[str, int] = {}
    for c in checks:
        if c.status not in ("pass", "new", "no budget"):
            others[c.status] = others.get(c.status, 0) + 1
    noted = ", ".join(f"{n} {status}" for status, n in sorted(others.items()))
    return f"{counted(len(checks), 'check')}, none failing" + (f" ({noted})" if noted else "")


def series_pages(rows: list[dict]) -> list[SeriesPage]:
    """Group history rows (oldest first) by plan and identity; a night's level is its run-level geometric mean."""
    pages: dict[tuple, SeriesPage] = {}
    for r in rows:
        key = (r["plan_name"], *identity_of(r["device_id"], r))
        page = pages.get(key)
        if page is None:
            subject = f"{r['model']} {r['stage']} {r['quantization']} {r['backend']}"
            page = pages[key] = SeriesPage(slug(" ".join(map(str, key))), r["plan_name"], key[1:],
                                           Series(r["device_id"], subject, [], [], [], []), [])
        p50, p95 = geometric_estimate(r["run_p50_ms"]), geometric_estimate(r["run_p95_ms"])
        page.series.run_ids.append(r["run_id"])
        page.series.started_at.append(r["started_at"])
        page.series.p50_ms.append(p50.value)
        page.series.p50_interval.append(p50.interval)
        page.series.p95_ms.append(p95.value if p95 else float("nan"))
        page.series.throttled.append(bool(r["throttled"]))
        page.sha256.append(r["sha256"])
    return sorted(pages.values(), key=lambda p: (p.plan_name, p.series.device_id, p.series.subject))


def chain_identity(chain: ChainView) -> tuple:
    """What makes two transcription cells the same chain across nights: device, chain name, corpus, utterance
    limit, and each part's role, quantization and backend (not its bytes: a series follows new builds of one
    configuration, as ``identity_of`` does for cells)."""
    c = chain.chain
    parts = tuple((role, part.get("quantization"), part.get("backend"))
                  for role, part in sorted(c.items()) if isinstance(part, dict))
    return (chain.cell.device_id, c.get("name", ""), c.get("corpus"), c.get("limit"), parts)


def _builds(chain: ChainView) -> str:
    return " · ".join(f"{role} {part.get('sha256', '')[:12]}" for role, part in chain.chain.items()
                      if isinstance(part, dict))


def verdicts_by_row(checks: list[Check]) -> dict[tuple[str, str], str]:
    """Each row's verdict of the night, by (device, subject): the worst of its checks by the report's ordering (a
    latency regression beats a budget miss beats a pass), so a row never reads "pass" beside a failing check."""
    by_row: dict[tuple[str, str], list[Check]] = {}
    for check in checks:
        by_row.setdefault((check.device_id, check.subject), []).append(check)
    return {row: worst(of_row) for row, of_row in by_row.items()}


def utterance_rows(data: ReportData, verdicts: dict[tuple[str, str], str]) -> list[UtteranceRow]:
    """A night's ASR chains and voice pipelines, with the figures and verdicts its report shows; ``verdicts``
    (``verdicts_by_row``) the night's verdict of each."""
    rows = [UtteranceRow(ASR_CHAIN, chain_identity(c), c.name, c.timing["total_ms"], c.timing["p95_total_ms"],
                         c.p95_ci, c.budget_ms, c.verdict, len(c.score.utterances), _builds(c),
                         wer=c.score.wer, night_verdict=verdicts.get((c.cell.device_id, c.name), c.verdict))
            for c in data.chains]
    rows += [UtteranceRow(VOICE_PIPELINE, chain_identity(p.chain), p.name, p.p50_ms, p.p95_ms, p.p95_ci,
                          p.budget_ms, p.verdict, len(p.totals_ms), _builds(p.chain), shares=tuple(p.shares),
                          night_verdict=verdicts.get((p.chain.cell.device_id, pipeline_subject(p.name)), p.verdict))
             for p in data.pipelines]
    return rows


def utterance_series_pages(nights: list[tuple[RunRecord, list[UtteranceRow]]]) -> list[UtteranceSeriesPage]:
    """Group the rows of each complete measuring night (oldest first) by plan, kind and chain identity; a
    pipeline's series and its ASR chain's are partners."""
    pages: dict[tuple, UtteranceSeriesPage] = {}
    for run, rows in nights:
        if run.status != "complete" or run.settings.get("calibration"):
            continue
        for row in rows:
            key = (run.plan_name, row.kind, *row.identity)
            page = pages.get(key)
            if page is None:
                subject = f"{row.kind} {row.name}"
                page = pages[key] = UtteranceSeriesPage(slug(" ".join(map(str, key))), run.plan_name, row.kind,
                                                        row.identity, Series(row.identity[0], subject, [], [], [], []))
            s = page.series
            s.run_ids.append(run.run_id)
            s.started_at.append(run.started_at)
            s.p50_ms.append(row.p50_ms if row.p50_ms is not None else float("nan"))
            s.p50_interval.append(None)  # the report gives a chain's P50 no interval
            s.p95_ms.append(row.p95_ms if row.p95_ms is not None else float("nan"))
            s.p95_interval.append(row.p95_ci)
            s.throttled.append(False)  # a transcription cell records no throttling
            page.rows.append(row)
    for (plan, kind, *identity), page in pages.items():
        if kind == VOICE_PIPELINE:
            chain = pages.get((plan, ASR_CHAIN, *identity))
            if chain is not None:
                page.partner, chain.partner = chain, page
    return sorted(pages.values(), key=lambda p: (p.plan_name, p.identity[0], p.kind, p.series.subject))


def find_utterance_change_points(pages: list[UtteranceSeriesPage], threshold: float) -> None:
    """Change points of each chain's per-utterance P50 and, apart, of its P95 (the level its budget bounds)."""
    for page in pages:
        page.change_points = change_points(page.series.p50_ms, min_change=threshold)
        page.p95_change_points = change_points(page.series.p95_ms, min_change=threshold)
        page.series.step = _newest(page.change_points)
        page.series.p95_step = _newest(page.p95_change_points)


def _newest(found: list[ChangePoint]) -> Step | None:
    """The newest change point as the history chart marks it."""
    if not found:
        return None
    cp = found[-1]
    return Step(cp.index, cp.before, cp.after, cp.p_value)


def find_change_points(pages: list[SeriesPage], threshold: float) -> None:
    for page in pages:
        page.change_points = change_points(page.series.p50_ms, min_change=threshold)
        page.series.step = _newest(page.change_points)  # the history chart marks the newest level


@dataclass
class _PlanSoFar:
    """What the nights of one plan before the current one left: baselines and noise-floor history."""

    measured: list[RunRecord] = field(default_factory=list)  # complete measuring runs, oldest first
    complete: list[RunRecord] = field(default_factory=list)  # calibration runs too: their A/A pairs teach floors
    last: ReportData | None = None  # the newest measured run's report data: the next night's usual baseline

    def add(self, run: RunRecord, data: ReportData | None) -> None:
        if run.status == "complete":
            self.complete.append(run)
            if not run.settings.get("calibration"):
                self.measured.append(run)
                self.last = data


def _baseline_id(run: RunRecord, plan: _PlanSoFar) -> str | None:
    """The run a night was judged against: the one it re-measured beside itself, else the newest earlier
    complete measuring run of its plan (as ``harness nightly`` picks it)."""
    return run.settings.get("reference_run") or (plan.measured[-1].run_id if plan.measured else None)


def _judge(store: Store, data: ReportData, plan: _PlanSoFar, stored: set[str], rows_by_run: dict[str, list[dict]],
           threshold: float, verdict_stored: StoredVerdict | None = None) -> Judged:
    """A run's verdict: the one its nightly stored when it has one (the night's exit code and page said the
    same); else, for a complete measuring run with a baseline, the nightly's checks against it replayed (less
    its history check), saying so; otherwise the run's own judgements."""
    run = data.run
    baseline_id = _baseline_id(run, plan)
    replayed = False
    if verdict_stored is not None and run.status in JUDGED:
        baseline_id = verdict_stored.baseline_run_id
        checks = checks_of(verdict_stored)
    elif run.status == "complete" and not run.settings.get("calibration") and baseline_id in stored:
        replayed = True
        baseline = (plan.last if plan.last is not None and plan.last.run.run_id == baseline_id
                    else build_report_data(store, baseline_id))
        # Each cell's night-to-night spread from the plan's recent nights, as the nightly learns it.
        recent = [row for r in plan.complete[-(RECENT_PAIRS + 1):] for row in rows_by_run.get(r.run_id, [])]
        checks = run_checks(data, baseline, threshold, learn_floors(recent))
    else:
        baseline_id, checks = None, run_judgements(data)
    verdict, detail, failing = night_verdict(data, checks)
    if replayed:
        detail = f"{detail} ({REPLAYED})"
    verdicts = verdicts_by_row(checks)
    cells = [CellRow(identity_of(v.cell.device_id, v.cell.artifact), v.cell.label,
                     v.summary.p50_ms if v.summary else None, v.summary.p95_ms if v.summary else None, v.verdict,
                     verdicts.get((v.cell.device_id, v.cell.label), v.verdict))
             for v in data.cells if not v.role]
    return Judged(run.run_id, verdict, detail, baseline_id, failing, cells, utterance_rows(data, verdicts))


def judge_nights(db_path, threshold: float, start: int, stop: int) -> list[Judged]:
    """Judge runs ``start`` to ``stop`` (oldest first) of the store; a worker process's share of the nights."""
    with Store(db_path, read_only=True) as store:
        runs = [run for run, _ in runs_by_state(store)]  # a run with lost cells is no baseline (store.state)
        stored = {r.run_id for r in runs}
        verdicts = store.stored_verdicts()
        rows_by_run: dict[str, list[dict]] = {}
        for row in store.history_of_every_plan():
            rows_by_run.setdefault(row["run_id"], []).append(row)
        plans: dict[str, _PlanSoFar] = {}
        judged = []
        for i, run in enumerate(runs[:stop]):
            plan = plans.setdefault(run.plan_name, _PlanSoFar())
            data = None
            if i >= start:
                data = build_report_data(store, run.run_id)
                judged.append(_judge(store, data, plan, stored, rows_by_run, threshold, verdicts.get(run.run_id)))
            plan.add(run, data)
    return judged


# Below this many runs a process pool costs more than it saves.
PARALLEL_RUNS = 40


def judge_all(db_path, runs: int, threshold: float) -> list[Judged]:
    """Every run judged, on every core when there are many: each worker takes a contiguous share of the
    nights (a night's baseline is usually the one before it, read once per share)."""
    import os

    workers = min(os.cpu_count() or 1, 8)
    if runs < PARALLEL_RUNS or workers < 2:
        return judge_nights(db_path, threshold, 0, runs)
    from concurrent.futures import ProcessPoolExecutor

    bounds = [runs * k // workers for k in range(workers + 1)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        shares = pool.map(judge_nights, [db_path] * workers, [threshold] * workers, bounds[:-1], bounds[1:])
        return [night for share in shares for night in share]


def build_site_data(store: Store, threshold: float = DEFAULT_THRESHOLD) -> SiteData:
    """Everything the site shows: the series with their change points, and every run judged."""
    series = series_pages([r for r in store.history_of_every_plan() if not r["calibration"]])
    find_change_points(series, threshold)
    series_of = {(p.plan_name, *p.identity): p for p in series}
    devices = store.device_ids_by_run()
    runs = runs_by_state(store)
    nights, utterances = [], []
    for (run, state), judged in zip(runs, judge_all(store.path, len(runs), threshold)):
        utterances.append(judged.utterance_rows)
        night = NightPage(run, slug(run.run_id), devices.get(run.run_id, []), judged.verdict, judged.detail,
                          judged.baseline_run_id, judged.failing, status_label=state.label)
        night.cells = [(c, series_of.get((run.plan_name, *c.identity))) for c in judged.cells]
        nights.append(night)
    by_run = {n.run.run_id: n for n in nights}
    for page in series:
        for cp in page.change_points:
            by_run[page.night_of(cp)].change_points.append((page, cp))
    chains = utterance_series_pages([(n.run, rows) for n, rows in zip(nights, utterances)])
    find_utterance_change_points(chains, threshold)
    chains_of = {(p.plan_name, p.kind, *p.identity): p for p in chains}
    for night, rows in zip(nights, utterances):
        night.utterances = [(r, chains_of.get((night.run.plan_name, r.kind, *r.identity))) for r in rows]
    for page in chains:
        for cp in page.change_points:
            by_run[page.night_of(cp)].change_points.append((page, cp))
    return SiteData(nights, series, chains)
