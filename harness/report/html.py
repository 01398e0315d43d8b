"""Render a stored run as one self-contained HTML file (inline CSS and SVG, no network)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from harness import __version__
from harness.report import plots
from harness.report.model import ReportData, build_report_data
from harness.store import Store

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


def environment() -> Environment:
    # Autoescape everything: model names, device facts, logs and transcripts come from outside.
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["ms"] = _fmt_ms
    env.filters["mb"] = _fmt_mb
    return env


def add_plots(data: ReportData) -> None:
    for view in data.cells:
        if view.summary is not None:
            view.plot_uri = plots.latency_distribution(view.cell.samples_ms, view.summary.p50_ms,
                                                       view.summary.p95_ms, view.budget_ms)
        if any(t["kind"] == "temp" for t in view.cell.thermals):
            view.thermal_uri = plots.thermal_timeline(view.cell.thermals)
    # Series with a detected step first, the largest shifts leading.
    data.history.sort(key=lambda s: (s.step is None, -abs(s.step.ratio - 1) if s.step else 0, s.device_id, s.subject))
    for series in data.history:
        if len(series.p50_ms) >= 2:
            series.chart_uri = plots.history_chart(series.p50_ms, series.p95_ms,
                                                   series.step.index if series.step else None, series.throttled)


def render(data: ReportData) -> str:
    from harness.report.quant import quant_pairs, stage_verdicts

    add_plots(data)
    css = (TEMPLATES / "report.css").read_text()
    return environment().get_template("report.html.j2").render(
        data=data, css=css, version=__version__, verdicts=stage_verdicts(data), quant=quant_pairs(data))


def write_report(db_path: Path, run_id: str, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` for a stored run and return its path."""
    with Store(db_path) as store:
        data = build_report_data(store, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "index.html"
    target.write_text(render(data), encoding="utf-8")
    return target
