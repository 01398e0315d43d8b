"""Render a stored run as one self-contained HTML file (inline CSS and SVG, no network)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from harness import __version__
from harness.accuracy.bootstrap import MIN_UTTERANCES_FOR_INTERVAL
from harness.followup import DEFAULT_DB, command_of, db_option, resume_command
from harness.profile.records import shown_name
from harness.report import plots
from harness.report.model import PROFILED_TOTAL_MEANING, ReportData, build_report_data, op_ms
from harness.report.verdict import Check, budget_text, ms_beside_budget, p95_against_budget, row_summary
from harness.words import counted
from harness.outfile import write_text
from harness.store import Store
from harness.store.db import StoredVerdict
from harness.termsafe import page_safe, term_safe

TEMPLATES = Path(__file__).with_name("templates")


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _fmt_mb(size_bytes: int | None) -> str:
    return "–" if size_bytes is None else f"{size_bytes / 1e6:.1f}"


def _visible(value):
    """Every text printed into a page shows its control characters as escapes (a NUL, ESC or BEL in a build
    name becomes \\x00, \\x1b, \\x07, as on the terminal); the harness's own markup (charts) is left alone."""
    return page_safe(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def environment() -> Environment:
    # Autoescape everything: model names, device facts, logs and transcripts come from outside.
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=_visible)
    env.filters["ms"] = _fmt_ms
    env.filters["mb"] = _fmt_mb
    env.filters["op_ms"] = op_ms
    env.filters["op_name"] = shown_name
    env.filters["term_safe"] = term_safe
    env.filters["budget"] = budget_text  # a budget and the P95 beside it: harness.report.verdict
    env.filters["ms_vs"] = ms_beside_budget
    env.filters["p95_vs"] = p95_against_budget
    env.globals["profiled_total_meaning"] = PROFILED_TOTAL_MEANING
    from harness.stats.quantile import fewest_draws

    env.globals["fewest_p95_utterances"] = fewest_draws(0.95)  # the interval rule's own count, not a typed 72
    return env


def _run_points(view) -> list[tuple[int, float | None, float | None]]:
    """Each successful run of a cell as (run index, its own P50, its own P95), for the distribution chart."""
    return [(int(r["run_index"]), r["p50_ms"], r["p95_ms"]) for r in view.cell.runs
            if r["status"] == "ok" and r["p50_ms"] is not None]


def add_plots(data: ReportData) -> None:
    """Every chart of the report as inline SVG (a few milliseconds each, so no process pool)."""
    # Series with a detected step first, the largest shifts leading.
    data.history.sort(key=lambda s: (s.step is None, -abs(s.step.ratio - 1) if s.step else 0, s.device_id, s.subject))
    for view in data.cells:
        a, device = view.cell.artifact, view.cell.device_id
        if view.summary is not None:
            view.plot_svg = plots.distribution_svg(
                view.cell.samples_ms, _run_points(view), view.summary.p50_ms, view.summary.p95_ms, view.budget_ms,
                f"latency distribution of {a['model']} {a['stage']} on {device}")
        if any(t["kind"] == "temp" for t in view.cell.thermals):
            view.thermal_svg = plots.thermal_svg(view.cell.thermals, view.cell.extra.get("measured_window_s"),
                                                 f"temperatures while measuring {a['model']} {a['stage']} on {device}")
    for series in data.history:
        if len(series.p50_ms) >= 2:
            series.chart_svg = plots.history_svg(series)
    if data.pipelines:
        from harness.report.pipeline import STAGE_LABELS

        data.pipeline_svg = plots.pipeline_svg([f"{p.chain.cell.device_id} · {p.name}" for p in data.pipelines],
                                               [p.stage_medians_ms for p in data.pipelines], STAGE_LABELS,
                                               data.pipelines[0].budget_ms)


def render(data: ReportData, db: Path = DEFAULT_DB, unfinished: str | None = None) -> str:
    """The report page of ``data``, read from ``db`` (which the commands it prints name); ``unfinished``: why the
    run is not complete (harness.store.state.RunState.unfinished), which the page leads with, and how to finish it."""
    from harness.report.quant import quant_pairs, stage_verdicts

    add_plots(data)
    css = (TEMPLATES / "report.css").read_text()
    return environment().get_template("report.html.j2").render(
        data=data, css=css, version=__version__, verdicts=stage_verdicts(data), quant=quant_pairs(data),
        min_utterances=MIN_UTTERANCES_FOR_INTERVAL, db_option=db_option(db), unfinished=unfinished,
        rows=row_summary(data.judged), counted=counted,
        resume=resume_command(command_of(data.run.settings), data.run.plan_path, data.run.run_id, db))


def checks_of(stored: StoredVerdict) -> list[Check]:
    """The checks of a verdict a nightly stored, as it judged them."""
    return [Check(**asdict(c)) for c in stored.checks]


def write_report(db_path: Path, run_id: str, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` for a stored run and return its path."""
    with Store(db_path, read_only=True) as store:
        data = build_report_data(store, run_id)
        stored = store.stored_verdicts(run_id).get(run_id)
    if stored is not None:  # a nightly judged it: the report shows that verdict, not the run's own judgements alone
        data.checks, data.baseline_run_id = checks_of(stored), stored.baseline_run_id
    target = out_dir / "index.html"  # write_text makes the folder, and removes it again if the write fails
    write_text(target, render(data, db_path, data.state.unfinished))
    return target
