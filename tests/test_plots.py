"""The report's charts, read back as SVG: what a person needs to read them in five seconds is there.

Each test names, in its docstring or a comment, the breakage of harness/report/plots.py it catches.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from harness.nightly.history import build_series
from harness.report.plots import distribution_svg, history_svg

START = datetime(2026, 3, 1, 2, 30, tzinfo=timezone.utc)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _rows(levels_ms, runs=5, run_sd=0.01, seed=0, run_id="night-{}", device="phone-1", model="whisper"):
    """History rows as Store.history gives them: one per night, ``runs`` run medians around each level."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, level in enumerate(levels_ms):
        p50 = list(level * rng.lognormal(0, run_sd, runs))
        rows.append({"run_id": run_id.format(i), "started_at": (START + timedelta(days=i)).isoformat(),
                     "device_id": device, "model": model, "stage": "asr-encoder", "format": "pte",
                     "backend": "xnnpack", "quantization": "int8", "throttled": False,
                     "run_p50_ms": p50, "run_p95_ms": [1.2 * v for v in p50]})
    return rows


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def _by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == cls]


def _title(element: ET.Element) -> str:
    title = element.find("title")
    return "" if title is None else title.text or ""


@pytest.fixture(scope="module")
def stepped():
    """Twenty nights with a 20% step at night 12, through build_series (dates, intervals, detect_step)."""
    (series,) = build_series(_rows([10.0] * 12 + [12.0] * 8))
    assert series.step is not None and series.step.index == 12  # the detector found the injected step
    return series, _svg(history_svg(series))


def test_history_x_ticks_are_the_nights_dates(stepped):
    # Catches: an x-axis of night numbers (0.0 to 1.0), or dates dropped from the series.
    series, root = stepped
    labels = [t.text for t in _by_class(root, "xtick")]
    assert len(labels) >= 3 and all(ISO_DATE.match(label) for label in labels), labels
    assert labels[0] == "2026-03-01" and labels[-1] == "2026-03-20"


def test_history_has_one_marker_per_night_with_its_run_id_and_value(stepped):
    # Catches: a line without markers, markers without tooltips, or a tooltip naming the wrong night.
    series, root = stepped
    nights = _by_class(root, "night")
    assert len(nights) == 20
    for i, marker in enumerate(nights):
        title = _title(marker)
        assert f"night-{i} " in title and f"P50 {series.p50_ms[i]:.3g} ms" in title, title
        assert (START + timedelta(days=i)).date().isoformat() in title
    xs = [float(m.get("cx")) for m in nights]
    assert xs == sorted(xs) and len(set(xs)) == 20  # in date order, none on top of another


def test_history_spreads_runs_minutes_apart_across_the_chart():
    """Three runs of one evening, five minutes apart, spread over the chart's width like three nights would.
    Catches the fixed half-day margin on either side of the x-axis, which drew them as one column."""
    rows = _rows([10.0, 10.5, 11.0])
    for i, row in enumerate(rows):
        row["started_at"] = (START + timedelta(minutes=5 * i)).isoformat()
    (series,) = build_series(rows)
    root = _svg(history_svg(series))
    xs = [float(m.get("cx")) for m in _by_class(root, "night")]
    width = float(root.get("width") or root.get("viewBox").split()[2])
    assert len(xs) == 3 and xs[2] - xs[0] > width / 2, xs


def test_history_band_when_intervals_exist_and_none_without(stepped):
    # Catches: the run-level interval not drawn, or drawn from nothing (one run a night has no interval).
    _, root = stepped
    assert _by_class(root, "band")
    (single,) = build_series(_rows([10.0] * 12, runs=1))
    assert not _by_class(_svg(history_svg(single)), "band")


def test_history_step_is_marked_at_its_first_night(stepped):
    # Catches: a step drawn one night off (a span starting at index - 0.5 of night numbers), or not at all.
    series, root = stepped
    (step,) = _by_class(root, "step")
    night_12 = _by_class(root, "night")[12]
    assert float(step.get("x1")) == pytest.approx(float(night_12.get("cx")))
    assert "night-12" in _title(step) and "2026-03-13" in _title(step)


def test_history_y_axis_is_change_from_the_first_night_and_noise_stays_small():
    """A 0.05 ms wobble on 20 ms is not a cliff: the labels are percent changes and the dots use a small part
    of the height.  Catches: an axis fitted tightly to the data in ms."""
    wobble = [20.0, 20.05, 19.98, 20.03, 19.96, 20.04, 20.0, 19.99]
    (series,) = build_series(_rows(wobble, runs=1))
    root = _svg(history_svg(series))
    labels = [t.text for t in _by_class(root, "ytick")]
    assert "0%" in labels and all(label.endswith("%") for label in labels), labels
    ys = [float(m.get("cy")) for m in _by_class(root, "night")]
    grid = [float(g.get("y1")) for g in _by_class(root, "grid")]
    assert (max(ys) - min(ys)) < 0.25 * (max(grid) - min(grid))


def test_history_escapes_names_and_run_ids_from_outside():
    # Catches: a run id or model name written into the SVG unescaped (it is put in the page as is).
    hostile = "<script>alert(1)</script>&\""
    (series,) = build_series(_rows([10.0] * 6, run_id=hostile + "{}", device=hostile, model=hostile))
    markup = history_svg(series)
    assert "<script" not in markup
    root = _svg(markup)
    assert hostile + "0" in _title(_by_class(root, "night")[0])  # the text survives, as text



def test_history_of_a_chains_p95_plots_the_p95_with_its_band_and_budget():
    """A chain's P95 history: each night's P95 (not its P50) with the per-utterance interval as the band, a budget
    near the data drawn as a line and one far off stated under the chart.  Catches: the P50 plotted under a P95
    title, the P95's interval left out, or the budget neither drawn nor said."""
    from harness.stats import Interval

    (series,) = build_series(_rows([100.0] * 4, runs=1, run_sd=0.0))
    series.p95_ms = [150.0, 152.0, 149.0, 151.0]
    series.p95_interval = [Interval(140.0, 170.0)] * 4
    root = _svg(history_svg(series, "P95", "95% interval over utterances", budget_ms=165.0))
    titles = [_title(m) for m in _by_class(root, "night")]
    assert all(f"P95 {v:.3g} ms" in t and "P50 100 ms" in t for v, t in zip(series.p95_ms, titles)), titles
    assert _by_class(root, "band") and len(_by_class(root, "budget")) == 1
    far = _svg(history_svg(series, "P95", "95% interval over utterances", budget_ms=5000.0))
    assert not _by_class(far, "budget")
    (note,) = _by_class(far, "budget-note")
    assert "budget 5000 ms" in note.text

def _distribution(samples, budget_ms=None, runs=None):
    samples = np.asarray(samples, dtype=float)
    runs = runs if runs is not None else [(0, float(np.median(samples)), float(np.percentile(samples, 95)))]
    return _svg(distribution_svg(samples, runs, float(np.median(samples)), float(np.percentile(samples, 95)),
                                 budget_ms, "latency of a cell"))


def test_count_axis_ticks_are_whole_iterations():
    # Catches: count ticks at 0.5 steps (a histogram whose tallest bar holds two iterations).
    root = _distribution([1.0, 1.05, 1.5, 1.55, 2.0])  # five bins: two, none, two, none, one
    labels = [t.text for t in _by_class(root, "ytick")]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert all(label.isdigit() for label in labels), labels


def test_one_point_per_run_beside_the_pooled_iterations():
    # Catches: run-to-run spread not drawn (only the pooled histogram), or a run missing.
    rng = np.random.default_rng(0)
    runs = [(i, 5.0 + 0.1 * i, 5.6 + 0.1 * i) for i in range(6)]
    root = _distribution(rng.normal(5.3, 0.2, 120), runs=runs)
    points = _by_class(root, "run")
    assert len(points) == 12 and _by_class(root, "bar")
    titles = {_title(p) for p in points}
    assert "run 3: P50 5.3 ms" in titles and "run 5: P95 6.1 ms" in titles


def test_budget_is_a_line_in_range_and_a_sentence_out_of_range():
    # Catches: "(off scale)" on every plot, a budget line squashing the data, or a budget never drawn.
    samples = np.linspace(8.0, 10.0, 50)
    near = _distribution(samples, budget_ms=11.0)
    assert _by_class(near, "budget") and not _by_class(near, "budget-note")
    far = _distribution(samples, budget_ms=150.0)
    (note,) = _by_class(far, "budget-note")
    assert not _by_class(far, "budget") and "budget 150 ms" in note.text and "right" in note.text
    ticks = [float(t.text) for t in _by_class(far, "xtick")]
    assert max(ticks) < 15  # the axis spans the data, not the budget


def test_summary_only_cell_still_shows_its_runs():
    # Catches: a crash on a cell with no stored iterations (the runner printed only percentiles).
    root = _svg(distribution_svg(np.empty(0), [(0, 4.0, 5.0), (1, 4.2, 5.1)], 4.1, 5.05, None, "summary only"))
    assert len(_by_class(root, "run")) == 4 and not _by_class(root, "bar")


# Injected into a copy of the page only: the report itself carries no script.
PROBE = """<script>
document.body.setAttribute('data-boxes', JSON.stringify([...document.querySelectorAll('svg.plot')].map(svg => {
  const box = svg.getBoundingClientRect();
  const dots = [...svg.querySelectorAll('.night, .run')].map(d => d.getBoundingClientRect());
  return {w: box.width, h: box.height, dots: dots.length, hidden: dots.filter(d => !(d.width && d.height)).length};
})));
</script>"""


@pytest.mark.slow  # Chromium
def test_nightly_report_plots_are_visible_in_chromium(tmp_path):
    """The inline SVGs lay out with real size, and their markers too; the page logs nothing to the console.
    Catches: a chart collapsed to no height, markers with no area (r=0), console errors from the markup."""
    import html as html_lib
    import json

    from harness.nightly.run import compare_and_write
    from harness.nightly.synthetic import write_synthetic_history
    from tests.helpers import chromium

    runs = write_synthetic_history(tmp_path / "h.db", nights=12, devices=1, builds=2, samples=30, step=(7, 0, 1.3))
    compare_and_write(tmp_path / "h.db", runs[-1], None, tmp_path / "out", threshold=0.05)
    page = tmp_path / "out" / "index.html"
    dom = chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0 and "CONSOLE" not in dom.stderr and "Failed to load resource" not in dom.stderr

    probe = tmp_path / "out" / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dumped = chromium(probe, tmp_path, "--dump-dom", "--window-size=1280,900")
    found = re.search(r'data-boxes="([^"]*)"', dumped.stdout)
    assert found, dumped.stderr[-2000:]
    boxes = json.loads(html_lib.unescape(found.group(1)))
    assert len(boxes) == 4  # two history charts, two distributions
    for box in boxes:
        assert box["w"] > 200 and box["h"] > 100 and box["dots"] > 0 and box["hidden"] == 0, box
    assert sum(box["dots"] for box in boxes) == 2 * 12 + 2 * 2 * 5  # a dot per night; P50 and P95 per run


def test_thermal_timeline_shades_the_measured_window_and_marks_throttling():
    # Catches: the measured window or a throttled reading not drawn, clocks dropped, a sensor name unescaped.
    from harness.report.plots import thermal_svg

    thermals = [{"t_s": t, "sensor": "cpu<0> (zone1)", "kind": "temp", "value": 40 + t, "unit": "C"} for t in range(10)]
    thermals += [{"t_s": 7.0, "sensor": "thermalservice", "kind": "status", "value": 2, "unit": "level"}]
    thermals += [{"t_s": t, "sensor": "cpu7", "kind": "freq", "value": 2_000_000 - 1e5 * t, "unit": "kHz"}
                 for t in range(10)]
    root = _svg(thermal_svg(thermals, [2.0, 8.0], "temperatures"))
    (window,) = _by_class(root, "window")
    assert "2.0 to 8.0 s" in _title(window)
    x_of = {float(t.text): float(t.get("x")) for t in _by_class(root, "xtick")}
    assert float(window.get("x")) == pytest.approx(x_of[2.0], abs=0.01)
    assert float(window.get("x")) + float(window.get("width")) == pytest.approx(x_of[8.0], abs=0.01)
    (hot,) = _by_class(root, "throttled")
    assert "7.0 s: thermal status 2" in _title(hot)
    assert len(_by_class(root, "sensor")) == 1 and len(_by_class(root, "clock")) == 1
    assert any(t.text == "cpu<0> (zone1)" for t in root.iter("text"))  # escaped in the markup, text again


def test_pipeline_stack_has_a_segment_per_stage_and_its_budget():
    # Catches: a stage missing from the stack, a budget line that is absent or drawn when far off scale.
    from harness.report.plots import pipeline_svg

    labels = {"vad_ms": "VAD", "encoder_ms": "encoder", "llm_ms": "LLM next word"}
    stages = [{"vad_ms": 2.0, "encoder_ms": 30.0, "llm_ms": 18.0}, {"vad_ms": 2.0, "encoder_ms": 20.0, "llm_ms": 9.0}]
    root = _svg(pipeline_svg(["phone · int8", "phone · <int4>"], stages, labels, 60.0))
    segments = _by_class(root, "stage")
    assert len(segments) == 6 and "phone · int8: encoder 30 ms (60%)" in {_title(s) for s in segments}
    assert _by_class(root, "budget") and not _by_class(root, "budget-note")
    far = _svg(pipeline_svg(["phone · int8"], stages[:1], labels, 1000.0))
    assert not _by_class(far, "budget") and "budget 1000 ms" in _by_class(far, "budget-note")[0].text


def test_two_run_nights_draw_no_band_and_the_axis_fits_the_dots_and_its_labels():
    """2-run nights: their 95% t-bands (1 degree of freedom) pushed the axis to +15000% and flattened every dot,
    and '+15000%' was drawn with its sign off the left edge.  Catches: build_series keeping 2-run intervals
    (shown_interval), and a fixed left margin narrower than the widest tick label."""
    (series,) = build_series(_rows([10.0, 10.4, 9.8, 10.2, 10.1], runs=2, run_sd=0.3))
    assert all(ci is None for ci in series.p50_interval)
    root = _svg(history_svg(series))
    assert not _by_class(root, "band")
    ys = [float(m.get("cy")) for m in _by_class(root, "night")]
    grid = [float(g.get("y1")) for g in _by_class(root, "grid")]
    assert (max(ys) - min(ys)) > 0.5 * (max(grid) - min(grid))  # the dots use the height
    (wide,) = build_series(_rows([1.0, 150.0], runs=1))
    labels = _by_class(_svg(history_svg(wide)), "ytick")
    widest = max(labels, key=lambda t: len(t.text))
    assert len(widest.text) >= 7 and float(widest.get("x")) >= 7 * len(widest.text)  # "+15000%": room for it


def _tick_boxes(root: ET.Element) -> list[tuple[float, float, str]]:
    """Each x tick label's estimated box (7 px a character at the tick font size), by its anchor."""
    boxes = []
    for tick in _by_class(root, "xtick"):
        x, extent = float(tick.get("x")), 7 * len(tick.text)
        low = {"start": x, "middle": x - extent / 2, "end": x - extent}[tick.get("text-anchor")]
        boxes.append((low, low + extent, tick.text))
    return boxes


def _assert_ticks_apart(root: ET.Element) -> list[str]:
    boxes = sorted(_tick_boxes(root))
    width = float(root.get("viewBox").split()[2])
    assert len(boxes) >= 2 and boxes[0][0] >= 0 and boxes[-1][1] <= width, boxes
    for (_, high, label), (low, _, next_label) in zip(boxes, boxes[1:]):
        assert high < low, f"{label!r} and {next_label!r} overlap: {boxes}"
    return [label for _, _, label in boxes]


@pytest.mark.parametrize("minutes", [1, 60 * 24 * 14])  # runs a minute apart; nights two weeks apart
def test_history_tick_labels_never_overlap_for_runs_a_minute_apart_or_a_year_of_nights(minutes):
    """The tester's chart: '2026-12-07 11:06' and '2026-12-07 11:07' drawn 65 px apart, over each other.  A
    chart of one day labels times and states its date once.  Catches a fixed number of ticks chosen by night
    index whatever the labels' width (five 16-character labels do not fit 500 px)."""
    days = [10.0] * 12
    rows = _rows(days)
    for i, row in enumerate(rows):
        row["started_at"] = (START + timedelta(minutes=minutes * i)).isoformat()
    (series,) = build_series(rows)
    root = _svg(history_svg(series))
    labels = _assert_ticks_apart(root)
    if minutes == 1:
        assert labels[0] == "02:30" and labels[-1] == "02:41" and all(len(label) == 5 for label in labels)
        (heading,) = [t.text for t in root.iter("text") if "per night" in (t.text or "")]
        assert "2026-03-01" in heading
    year = build_series(_rows([10.0] * 365))[0]
    assert len(_assert_ticks_apart(_svg(history_svg(year)))) >= 4


def test_history_tick_labels_of_two_runs_a_minute_apart_after_days_of_nights_do_not_overlap():
    """Nights a day apart, then two runs a minute apart: the labels carry date and time (16 characters) and the
    last two ticks fall 65 px apart.  Catches ticks placed by night index without checking their boxes."""
    rows = _rows([10.0] * 8)
    rows[-1]["started_at"] = (START + timedelta(days=6, minutes=1)).isoformat()
    (series,) = build_series(rows)
    labels = _assert_ticks_apart(_svg(history_svg(series)))
    assert labels[0] == "2026-03-01 02:30" and labels[-1] == "2026-03-07 02:31"
