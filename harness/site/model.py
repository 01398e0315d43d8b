"""What the history site shows, read from the store once: every run with its verdict, every series.

A series is one cell identity (device x model, stage, format, backend, quantization: ``identity_of``) in one
plan, across every complete non-calibration run of that plan; a night's level is its run-level geometric
mean, as in the nightly's own history.  Series of different plans are kept apart: plans differ in settings
(iterations, runs), and a level that moved because the plan did is not a change of the build.
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
from harness.report.model import ReportData, build_report_data
from harness.report.verdict import Check, Headline, headline, run_judgements
from harness.run.engine import identity_of
from harness.stats.compare import DEFAULT_THRESHOLD
from harness.stats.runlevel import geometric_estimate
from harness.store import RunRecord, Store
from harness.store.db import StoredVerdict
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
    verdict: str


@dataclass
class Judged:
    """A night's verdict, what it was judged against, its failing checks and its cells."""

    run_id: str
    verdict: str
    detail: str
    baseline_run_id: str | None
    failing: list[Check]
    cells: list[CellRow]


@dataclass
class NightPage:
    run: RunRecord
    slug: str
    device_ids: list[str]
    verdict: str
    detail: str
    baseline_run_id: str | None = None
    failing: list[Check] = field(default_factory=list)
    cells: list[tuple[CellRow, SeriesPage | None]] = field(default_factory=list)
    change_points: list[tuple[SeriesPage, ChangePoint]] = field(default_factory=list)  # new levels from this night

    @property
    def href(self) -> str:
        return f"nights/{self.slug}.html"


@dataclass
class SiteData:
    nights: list[NightPage]  # oldest first
    series: list[SeriesPage]


def slug(text: str) -> str:
    """A file name for ``text`` that no run id or model name can turn into a path elsewhere."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def night_verdict(data: ReportData, checks: list[Check]) -> tuple[str, str, list[Check]]:
    """(verdict, detail, failing checks) by the one verdict rule (harness.report.verdict.headline): "failed"
    when any check fails, else "passed".  ``checks``: the nightly's against a baseline, or the run's own
    judgements (budgets and failures) when it has none."""
    if data.run.status != "complete":
        return data.run.status, "not finished: no verdict", []
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


def find_change_points(pages: list[SeriesPage], threshold: float) -> None:
    for page in pages:
        page.change_points = change_points(page.series.p50_ms, min_change=threshold)
        if page.change_points:  # the history chart marks the newest level
            cp = page.change_points[-1]
            page.series.step = Step(cp.index, cp.before, cp.after, cp.p_value)


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
    if verdict_stored is not None and run.status == "complete":
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
    cells = [CellRow(identity_of(v.cell.device_id, v.cell.artifact), v.cell.label,
                     v.summary.p50_ms if v.summary else None, v.summary.p95_ms if v.summary else None, v.verdict)
             for v in data.cells if not v.role]
    return Judged(run.run_id, verdict, detail, baseline_id, failing, cells)


def judge_nights(db_path, threshold: float, start: int, stop: int) -> list[Judged]:
    """Judge runs ``start`` to ``stop`` (oldest first) of the store; a worker process's share of the nights."""
    with Store(db_path, read_only=True) as store:
        runs = store.every_run()
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
    runs = store.every_run()
    nights = []
    for run, judged in zip(runs, judge_all(store.path, len(runs), threshold)):
        night = NightPage(run, slug(run.run_id), devices.get(run.run_id, []), judged.verdict, judged.detail,
                          judged.baseline_run_id, judged.failing)
        night.cells = [(c, series_of.get((run.plan_name, *c.identity))) for c in judged.cells]
        nights.append(night)
    by_run = {n.run.run_id: n for n in nights}
    for page in series:
        for cp in page.change_points:
            by_run[page.night_of(cp)].change_points.append((page, cp))
    return SiteData(nights, series)
