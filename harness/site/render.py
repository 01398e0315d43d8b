"""Write the history site: index.html, one page per night and one per series, each self-contained."""

from __future__ import annotations

from pathlib import Path

from jinja2 import FileSystemLoader

from harness import __version__
from harness.errors import UserError
from harness.report.html import TEMPLATES as REPORT_TEMPLATES
from harness.report import plots
from harness.report.html import environment
from harness.report.verdict import FAILING
from harness.site.model import SiteData, build_site_data, slug
from harness.outfile import undone_on_failure
from harness.stats.compare import DEFAULT_THRESHOLD
from harness.stats.quantile import fewest_draws
from harness.store import Store
from harness.words import counted

TEMPLATES = Path(__file__).with_name("templates")


# What the two verdict columns of a row are of; said under each table that shows them.
VERDICT_LEGEND = ("Night's verdict: the worst of every check that night made of the row (its budget, a failure, and "
                  "latency, size, WER and history against the baseline), worst first as the report orders them: "
                  "a regression outranks a budget miss, which outranks a pass. Budget (P95): its P95 against its "
                  "budget alone.")


# What a chain's P95 band is: the report's order-statistic interval of a quantile over the night's utterances.
UTTERANCE_BAND = "95% interval over utterances"
# A chain is one pass over its utterances a night: its report gives the per-utterance P50 no interval at all.
NO_P50_BAND = "the report gives a per-utterance P50 none; see the P95 chart"


def add_charts(data: SiteData) -> None:
    """Each series' history chart: the report's (inline SVG; it marks the newest change point).  A chain or
    pipeline has two: its per-utterance P50, and its P95 with the budget that bounds it."""
    for page in data.series:
        page.series.chart_svg = plots.history_svg(page.series)
    for page in data.utterance_series:
        page.series.chart_svg = plots.history_svg(page.series, "P50", no_interval=NO_P50_BAND)
        page.p95_chart_svg = plots.history_svg(page.series, "P95", UTTERANCE_BAND, page.budget_ms,
                                               f"fewer than {fewest_draws(0.95)} utterances")


def open_existing(db_path: Path) -> Store:
    """The store at ``db_path``, refused (and never created) when it holds no runs; a missing or empty file is
    refused by the read-only open itself, in the words 'harness runs' and 'harness report' use."""
    store = Store(db_path, read_only=True)
    if not store.every_run():
        store.close()
        raise UserError("the database holds no runs yet; there is no history to show.", path=db_path,
                        fix="run 'harness run PLAN' or 'harness nightly PLAN' first, or pass the right --db.")
    return store


def write_site(db_path: Path, out_dir: Path, threshold: float = DEFAULT_THRESHOLD) -> Path:
    """Write the site for the store at ``db_path`` into ``out_dir``; return the index page's path."""
    with open_existing(db_path) as store:
        data = build_site_data(store, threshold)
    add_charts(data)
    env = environment()
    env.loader = FileSystemLoader(TEMPLATES)
    env.filters["site_slug"] = slug
    env.filters["counted"] = counted
    common = {"css": (REPORT_TEMPLATES / "report.css").read_text() + (TEMPLATES / "site.css").read_text(),
              "version": __version__, "db_name": db_path.name, "failing_statuses": FAILING,
              "verdict_legend": VERDICT_LEGEND, "p95_fewest_utterances": fewest_draws(0.95)}
    with undone_on_failure() as made:  # a full disk part way leaves no new folder or page behind
        for folder in ("nights", "series"):
            made.folder(out_dir / folder)
        night = env.get_template("night.html.j2")
        for page in data.nights:
            made.text(out_dir / page.href, night.render(page=page, root="../", **common))
        series = env.get_template("series.html.j2")
        by_run = {n.run.run_id: n for n in data.nights}
        for page in data.series:
            made.text(out_dir / page.href, series.render(page=page, nights=by_run, root="../", **common))
        chain = env.get_template("chain.html.j2")
        for page in data.utterance_series:
            made.text(out_dir / page.href, chain.render(page=page, nights=by_run, root="../", **common))
        index = out_dir / "index.html"
        made.text(index, env.get_template("index.html.j2").render(data=data, root="", **common))
    return index
