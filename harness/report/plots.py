"""The report's charts, all SVG and self-contained.

Every chart of the report is inline ``<svg>`` written by hand (harness.report.svg): a marker or
segment with a tooltip per night, run or stage, so a value is read by hovering rather than by zooming.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from harness.report.svg import (ACCENT, GRID, INK, MUTED, WARN, Canvas, Scale, legend, nice_step, num, tick_label,
                                ticks)


STAGE_COLOURS = ["#9bb7d4", "#5b8db8", INK, "#7a9e7e", WARN]


# --- hand-written SVG charts ------------------------------------------------------------------------

MIN_RELATIVE_SPAN = 0.10  # a history's y-axis spans at least ±5% of its first night: noise stays small
TICK_CHAR_PX = 7  # about one character of a tick label at the canvas's font size: what a label's box is estimated at
TICK_GAP_PX = 12  # the least space between two x tick labels


def _fmt_ms(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def _pct(value: float) -> str:
    return "0%" if abs(value) < 1e-9 else f"{value:+g}%".replace("-", "−")


def _night_labels(started_at: list[str], count: int) -> list[str]:
    """Each night's label: its date, with the time (UTC, as stored) when runs share a date, so two runs of one
    day are told apart in the tooltips and ticks; night numbers when the dates are missing."""
    if len(started_at) != count:
        return [f"night {i}" for i in range(count)]
    dates = [str(t)[:10] for t in started_at]
    if len(set(dates)) == len(dates):
        return dates
    return [str(t)[:16].replace("T", " ") for t in started_at]


def _tick_labels(labels: list[str]) -> tuple[list[str], str | None]:
    """The x tick labels, and the date they share: the time alone when every night is of one date (runs minutes
    apart), which the chart then states once; else the nights' own labels and None."""
    days = {label[:10] for label in labels}
    if len(days) == 1 and all(len(label) > 10 for label in labels):
        return [label[11:] for label in labels], labels[0][:10]
    return labels, None


def _tick_box(x: float, label: str, width: float) -> tuple[str, float, float]:
    """A tick label's anchor and estimated extent: centred under its tick, kept inside the canvas at either edge."""
    extent = TICK_CHAR_PX * len(label)
    if x - extent / 2 < 2:
        return "start", x, x + extent
    if x + extent / 2 > width - 2:
        return "end", x - extent, x
    return "middle", x - extent / 2, x + extent / 2


def _x_ticks(xs: list[float], labels: list[str], width: float) -> list[tuple[int, str]]:
    """The nights to label, each with its anchor: as many as the widest label leaves room for, spread evenly
    across the axis (each target the nearest night), the first and last night always, none overlapping another
    (a night too close to the one before is left unlabelled)."""
    n = len(xs)
    room = max(2, int((xs[-1] - xs[0] + TICK_GAP_PX) // (TICK_CHAR_PX * max(map(len, labels)) + TICK_GAP_PX)))
    targets = [xs[0] + k * (xs[-1] - xs[0]) / (room - 1) for k in range(room)]
    wanted = sorted({min(range(n), key=lambda i: abs(xs[i] - target)) for target in targets} | {0, n - 1})
    kept: list[tuple[int, str, float, float]] = []
    for i in wanted:
        anchor, low, high = _tick_box(xs[i], labels[i], width)
        while kept and low < kept[-1][3] + TICK_GAP_PX and (i == n - 1 and kept[-1][0] != 0):
            kept.pop()  # the last night is labelled: the one before it gives way
        if kept and (low < kept[-1][3] + TICK_GAP_PX or labels[i] == labels[kept[-1][0]]):
            continue
        kept.append((i, anchor, low, high))
    return [(i, anchor) for i, anchor, _, _ in kept]


def _night_positions(started_at: list[str], count: int) -> list[float]:
    """x of each night: its start time in days (nights need not be evenly spaced); night numbers when the
    dates are missing or unreadable."""
    try:
        times = [datetime.fromisoformat(t).timestamp() / 86400 for t in started_at]
    except (TypeError, ValueError):
        times = []
    if len(times) != count or len(set(times)) < min(count, 2):
        return [float(i) for i in range(count)]
    return times


def _x_range(positions: list[float]) -> tuple[float, float]:
    """The x-axis: every night with half the mean spacing beside the first and last, so nights minutes apart
    (two runs of one evening) are as far apart as nights days apart (a fixed half-day margin drew them as one)."""
    lo, hi = min(positions), max(positions)
    margin = (hi - lo) / (2 * (len(positions) - 1)) if hi > lo else 0.5
    return lo - margin, hi + margin


def _interval_bands(xs: list[float], intervals: list) -> list[list[tuple[float, float, float]]]:
    """Stretches of consecutive nights that have an interval: (x, low, high) each."""
    bands, current = [], []
    for x, ci in zip(xs, intervals):
        if ci is None:
            if current:
                bands.append(current)
            current = []
        else:
            current.append((x, ci.low, ci.high))
    return bands + ([current] if current else [])


# Why a cell's night has no band: its runs gave no interval worth drawing (harness.stats.runlevel.shown_interval).
NO_RUN_INTERVAL = "too few runs, or too spread"


def history_svg(series, level: str = "P50", band: str = "95% interval across runs",
                budget_ms: float | None = None, no_interval: str = NO_RUN_INTERVAL) -> str:
    """A history chart for one ``harness.nightly.history.Series``: each night's ``level`` ("P50", or "P95" for
    the per-utterance P95 of a chain; a marker with its run id, date and value as a tooltip) at its date, that
    level's 95% interval as a band (``band`` says of what), its detected step marked, the y-axis in change from
    the first night, and a P95 ``budget_ms`` drawn when it is near the data and stated otherwise; a night without
    a band says why (``no_interval``) in its tooltip.  Returns
    inline ``<svg>`` markup, everything escaped."""
    p95_level = level == "P95"
    values = [float(v) for v in (series.p95_ms if p95_level else series.p50_ms)]
    other = list(series.p50_ms if p95_level else series.p95_ms)
    step = series.p95_step if p95_level else series.step
    n = len(values)
    intervals = list(series.p95_interval if p95_level else series.p50_interval) or [None] * n
    dates = _night_labels(list(series.started_at), n)
    width, height, left, right, top, bottom = 560, 220, 52, 14, 40, 36
    canvas = Canvas(width, height, f"history of {series.device_id} · {series.subject}: nightly {level}")
    measured = [i for i, v in enumerate(values) if math.isfinite(v)]  # a chain's night without utterances has none
    if not measured:
        canvas.text(left, top, f"no night has a {level}" if n else "no nights stored")
        return canvas.render()
    first = measured[0]
    ref = values[first]
    lows = [ci.low for ci in intervals if ci is not None] + [values[i] for i in measured]
    highs = [ci.high for ci in intervals if ci is not None] + [values[i] for i in measured]
    lo, hi = min(lows), max(highs)
    if hi - lo < MIN_RELATIVE_SPAN * ref:
        mid = (hi + lo) / 2
        lo, hi = mid - MIN_RELATIVE_SPAN * ref / 2, mid + MIN_RELATIVE_SPAN * ref / 2
    # A budget within half the data's span again is drawn; one farther off would squash the nights flat.
    on_scale = budget_ms is not None and lo - (hi - lo) / 2 <= budget_ms <= hi + (hi - lo) / 2
    if on_scale:
        lo, hi = min(lo, budget_ms), max(hi, budget_ms)
    pad = (hi - lo) * 0.06
    y = Scale(lo - pad, hi + pad, height - bottom, top)
    pct = ticks((y.lo / ref - 1) * 100, (y.hi / ref - 1) * 100, 5)
    # The margin fits the widest tick label ("+15000%" was drawn as "15000%", its sign off the left edge).
    left = max(left, 10 + 7 * max(len(_pct(value)) for value in pct))
    positions = _night_positions(list(series.started_at), n)
    x = Scale(*_x_range(positions), left, width - right)
    xs = [x(p) for p in positions]

    tick_labels, one_date = _tick_labels(dates)
    first_night = f"at {tick_labels[first]}" if one_date else f"on {dates[first]}"
    title = f"{level} per night{f' of {one_date} (UTC)' if one_date else ''}, change from the first night"
    canvas.text(4, 13, f"{title} ({_fmt_ms(ref)} ms {first_night})", colour="#1d2b3a")
    if budget_ms is not None and not on_scale:  # under the dates: the newest night against the budget
        canvas.text(4, height - 3, _budget_note(budget_ms, values[-1], "above" if budget_ms > hi else "below"),
                    colour=WARN, cls="budget-note")
    entries = [("dot", INK, f"{level} (hover: run id, value)")]
    if any(ci is not None for ci in intervals):
        entries.append(("band", INK, band))
    if step is not None:
        entries.append(("dash", WARN, "step (new level)"))
    if on_scale:
        entries.append(("dash", WARN, f"budget {budget_ms:g} ms"))
    if any(series.throttled):
        entries.append(("dot", ACCENT, "thermally throttled"))
    legend(canvas, 4, 29, entries)

    for value in pct:
        py = y(ref * (1 + value / 100))
        canvas.line(left, py, width - right, py, GRID, 1, cls="grid")
        canvas.text(left - 6, py + 4, _pct(value), anchor="end", cls="ytick")
    baseline = height - bottom
    canvas.line(left, baseline, width - right, baseline, MUTED)
    for i, anchor in _x_ticks(xs, tick_labels, width):
        canvas.line(xs[i], baseline, xs[i], baseline + 4, MUTED)
        canvas.text(xs[i], baseline + 16, tick_labels[i], anchor=anchor, cls="xtick")

    for stretch in _interval_bands(xs, intervals):
        outline = [(bx, y(high)) for bx, _, high in stretch] + [(bx, y(low)) for bx, low, _ in reversed(stretch)]
        if len(stretch) == 1:  # one night alone: a bar, not a zero-width polygon
            bx = stretch[0][0]
            outline = [(bx - 2, outline[0][1]), (bx + 2, outline[0][1]), (bx + 2, outline[1][1]), (bx - 2, outline[1][1])]
        canvas.polygon(outline, INK, 0.18, cls="band", title=f"{band} of each night's {level}")
    if on_scale:
        canvas.line(left, y(budget_ms), width - right, y(budget_ms), WARN, 1.6, "2 2", cls="budget",
                    title=f"budget {budget_ms:g} ms (P95)")
    if step is not None:
        _draw_step(canvas, step, series.run_ids, xs, y, dates, top, baseline)
    canvas.polyline([(xs[i], y(values[i])) for i in measured], INK, 1.0, cls="p50")
    other_level = "P50" if p95_level else "P95"
    for i in measured:
        px, value, ci = xs[i], values[i], intervals[i]
        text = f"{series.run_ids[i]} · {dates[i]} · {level} {_fmt_ms(value)} ms"
        text += f" [{_fmt_ms(ci.low)}, {_fmt_ms(ci.high)}]" if ci is not None else f" (no interval: {no_interval})"
        text += f" · {_pct(round((value / ref - 1) * 100, 1))} vs first night"
        shadow = other[i] if i < len(other) and other[i] is not None else float("nan")
        text += f" · {other_level} {_fmt_ms(shadow)} ms" if shadow == shadow else ""
        hot = bool(series.throttled[i]) if i < len(series.throttled) else False
        canvas.circle(px, y(value), 2.6, ACCENT if hot else INK, cls="night",
                      title=text + (" · thermally throttled" if hot else ""))
    return canvas.render()


def _draw_step(canvas: Canvas, step, run_ids: list[str], xs: list[float], y: Scale, dates: list[str], top: float,
               baseline: float) -> None:
    """The detected step: a dashed line at its first night, and the levels before and after it."""
    k = step.index
    title = (f"step at {dates[k]} ({run_ids[k]}): {_fmt_ms(step.before)} → {_fmt_ms(step.after)} ms "
             f"(×{step.ratio:.3f}, p = {step.p_value:.1g})")
    canvas.line(xs[k], top, xs[k], baseline, WARN, 1.5, "4 3", cls="step", title=title)
    canvas.line(xs[0], y(step.before), xs[k], y(step.before), WARN, 1, "2 3", cls="level")
    canvas.line(xs[k], y(step.after), xs[-1], y(step.after), WARN, 1.5, "2 3", cls="level")
    right_half = xs[k] > (xs[0] + xs[-1]) / 2
    canvas.text(xs[k] + (-4 if right_half else 4), top + 11, f"×{step.ratio:.3f}", anchor="end" if right_half else "start",
                colour=WARN, weight="600")


def _budget_note(budget_ms: float, p95_ms: float | None, side: str) -> str:
    """The budget in words when drawing it would squash the data into a sliver."""
    where = f"budget {budget_ms:g} ms (P95) lies off this axis {side}"
    if not p95_ms:
        return where
    share = p95_ms / budget_ms
    if share >= 1:
        return f"{where}: the P95 is {share:.3g}× the budget"
    return f"{where}: the P95 is {share:.0%} of it" if share >= 0.01 else f"{where}: the P95 is under 1% of it"


def distribution_svg(samples_ms, runs: list[tuple[int, float | None, float | None]], p50_ms: float,
                     p95_ms: float | None, budget_ms: float | None, label: str) -> str:
    """Every measured iteration, pooled, as a histogram (integer count ticks), and one point per run (its own P50
    and P95) on the same axis below it, so run-to-run spread is visible; the cell's P50/P95 and the budget are
    lines when the budget is near the data, and the budget is stated in words when it is not."""
    data = np.asarray(samples_ms, dtype=float)
    run_p50 = [(i, v) for i, v, _ in runs if v is not None]
    run_p95 = [(i, v) for i, _, v in runs if v is not None]
    values = list(data) + [v for _, v in run_p50 + run_p95] + [p50_ms] + ([p95_ms] if p95_ms else [])
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.05, hi * 0.01, 1e-3)
    on_scale = budget_ms is not None and lo - (hi - lo) * 0.5 - pad <= budget_ms <= hi + (hi - lo) * 0.5 + pad
    if on_scale:
        lo, hi = min(lo, budget_ms), max(hi, budget_ms)
    x_lo = max(0.0, lo - pad) if lo >= 0 else lo - pad
    note = budget_ms is not None and not on_scale
    width, left, right, top = 560, 64, 14, 44 if note else 30
    hist_bottom = 132 if data.size else top
    strip_p50, strip_p95 = hist_bottom + 18, hist_bottom + 36
    axis_y = strip_p95 + 12
    canvas = Canvas(width, int(axis_y + 22), label)
    x = Scale(x_lo, hi + pad, left, width - right)

    entries = [("line", "#555", f"P50 {_fmt_ms(p50_ms)} ms")]
    if p95_ms:
        entries.append(("line", ACCENT, f"P95 {_fmt_ms(p95_ms)} ms"))
    if on_scale:
        entries.append(("dash", WARN, f"budget {budget_ms:g} ms"))
    legend(canvas, 4, 13, entries)
    if note:
        side = "to the right" if budget_ms > hi else "to the left"
        canvas.text(4, 28, _budget_note(budget_ms, p95_ms, side), colour=WARN, cls="budget-note")
    if data.size:
        _histogram(canvas, data, x, top, hist_bottom)
    else:
        canvas.text(left, top + 4, "no iterations stored: the runner printed only its own percentiles", cls="note")
    canvas.text(left - 6, strip_p50 + 4, "run P50", anchor="end")
    canvas.text(left - 6, strip_p95 + 4, "run P95", anchor="end")
    for row_y, points, colour, what in ((strip_p50, run_p50, INK, "P50"), (strip_p95, run_p95, ACCENT, "P95")):
        canvas.line(left, row_y, width - right, row_y, GRID)
        for index, value in points:
            canvas.circle(x(value), row_y, 3.2, colour, cls="run", title=f"run {index}: {what} {_fmt_ms(value)} ms",
                          hollow=True)
    for value, colour, dash in ((p50_ms, "#555", "4 3"), (p95_ms, ACCENT, None)):
        if value:
            canvas.line(x(value), top, x(value), strip_p95 + 6, colour, 1.2, dash, cls="marker")
    if on_scale:
        canvas.line(x(budget_ms), top, x(budget_ms), strip_p95 + 6, WARN, 1.6, "2 2", cls="budget",
                    title=f"budget {budget_ms:g} ms (P95)")
    canvas.line(left, axis_y, width - right, axis_y, MUTED)
    tick_values = ticks(x.lo, x.hi, 6)
    step = nice_step(x.hi - x.lo, 6)
    for value in tick_values:
        canvas.line(x(value), axis_y, x(value), axis_y + 4, MUTED)
        canvas.text(x(value), axis_y + 15, tick_label(value, step), anchor="middle", cls="xtick")
    canvas.text(width - right, axis_y - 3, "ms", anchor="end")
    return canvas.render()


def _histogram(canvas: Canvas, data: np.ndarray, x: Scale, top: float, bottom: float) -> None:
    """Bars of pooled iterations with integer count ticks on the left."""
    counts, edges = np.histogram(data, bins=min(40, max(5, data.size // 4)))
    peak = int(counts.max())
    y = Scale(0, peak * 1.08, bottom, top)
    count_ticks = ticks(0, peak, 4, integer=True)
    for value in count_ticks:
        canvas.line(x.px_lo, y(value), x.px_hi, y(value), GRID, cls="grid")
        canvas.text(x.px_lo - 6, y(value) + 4, f"{value:.0f}", anchor="end", cls="ytick")
    canvas.text(x.px_lo - 6, top - 2, "iterations", anchor="end", size=9)
    for count, a, b in zip(counts, edges[:-1], edges[1:]):
        if count:
            canvas.rect(x(a), y(count), max(x(b) - x(a) - 0.5, 0.8), bottom - y(count), INK, 0.8, cls="bar",
                        title=f"{_fmt_ms(a)}–{_fmt_ms(b)} ms: {count} iteration{'s' if count != 1 else ''}")


SENSOR_COLOURS = ["#2c4a6e", "#d1495b", "#7a9e7e", "#b7791f", "#5b8db8", "#8e5572", "#3d7a8a", "#9c6b30"]
MAX_TEMP_SENSORS, MAX_FREQ_SENSORS = 8, 4


def _readings(thermals: list[dict], kind: str, limit: int) -> dict[str, list[tuple[float, float]]]:
    """(t_s, value) per sensor of one kind, in the order sensors first appear, at most ``limit`` sensors."""
    out: dict[str, list[tuple[float, float]]] = {}
    for s in thermals:
        if s["kind"] == kind and (s["sensor"] in out or len(out) < limit):
            out.setdefault(s["sensor"], []).append((float(s["t_s"]), float(s["value"])))
    return out


def thermal_svg(thermals: list[dict], measured_window_s: list[float] | None, label: str) -> str:
    """Temperatures over the cell, one line per sensor, with the measured iterations shaded and readings with a
    thermal status above NONE marked ×; CPU clocks (MHz) dashed against a right-hand axis when read."""
    temps = _readings(thermals, "temp", MAX_TEMP_SENSORS)
    freqs = {k: [(t, v / 1000) for t, v in pts] for k, pts in _readings(thermals, "freq", MAX_FREQ_SENSORS).items()}
    hot = [(float(s["t_s"]), s["value"]) for s in thermals if s["kind"] == "status" and s["value"] > 0]
    rows = (len(temps) + len(freqs) + 2) // 3
    width, left, right, top, bottom = 560, 44, 48 if freqs else 14, 22 + 14 * rows, 30
    canvas = Canvas(width, top + 130 + bottom, label)
    times = [t for pts in (*temps.values(), *freqs.values()) for t, _ in pts] + [t for t, _ in hot]
    times += list(measured_window_s or [])
    if not times:
        canvas.text(left, top, "no thermal readings")
        return canvas.render()
    x = Scale(min(times), max(times) if max(times) > min(times) else min(times) + 1, left, width - right)
    baseline = top + 130
    entries = [(SENSOR_COLOURS[i % len(SENSOR_COLOURS)], name, False) for i, name in enumerate(temps)]
    entries += [(SENSOR_COLOURS[(i + len(temps)) % len(SENSOR_COLOURS)], f"{name} (MHz)", True)
                for i, name in enumerate(freqs)]
    for i, (colour, name, dashed) in enumerate(entries):  # three to a row, above the data
        legend(canvas, 4 + (i % 3) * 184, 14 + 14 * (i // 3), [("dash" if dashed else "line", colour, name[:26])])
    if measured_window_s:
        start, end = measured_window_s
        canvas.rect(x(start), top, x(end) - x(start), baseline - top, INK, 0.08, cls="window",
                    title=f"measured iterations: {start:.1f} to {end:.1f} s into the cell")
    if temps:
        values = [v for pts in temps.values() for _, v in pts]
        lo, hi = min(values), max(values)
        lo, hi = (lo - 1, hi + 1) if hi - lo < 2 else (lo, hi)
        y = Scale(lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05, baseline, top)
        step = nice_step(y.hi - y.lo, 4)
        for value in ticks(y.lo, y.hi, 4):
            canvas.line(left, y(value), width - right, y(value), GRID, cls="grid")
            canvas.text(left - 6, y(value) + 4, tick_label(value, step), anchor="end", cls="ytick")
        canvas.text(left - 6, top - 12, "°C", anchor="end")
        for (colour, name, _), pts in zip(entries, temps.values()):
            canvas.polyline([(x(t), y(v)) for t, v in pts], colour, 1.2, cls="sensor")
    if freqs:
        _clock_lines(canvas, freqs, entries[len(temps):], x, top, baseline, width - right)
    for t, status in hot:
        canvas.text(x(t), top + 10, "×", anchor="middle", colour=ACCENT, size=13, weight="700")
        canvas.add("rect", {"class": "throttled", "x": x(t) - 5, "y": top, "width": 10, "height": 12,
                            "fill": "transparent"}, title=f"{t:.1f} s: thermal status {status:g} (above NONE)")
    canvas.line(left, baseline, width - right, baseline, MUTED)
    tick_step = nice_step(x.hi - x.lo, 6)
    for value in ticks(x.lo, x.hi, 6):
        canvas.line(x(value), baseline, x(value), baseline + 4, MUTED)
        canvas.text(x(value), baseline + 15, tick_label(value, tick_step), anchor="middle", cls="xtick")
    canvas.text(width - right, baseline + 27, "seconds into the cell", anchor="end")
    return canvas.render()


def _clock_lines(canvas: Canvas, freqs: dict[str, list[tuple[float, float]]], entries: list, x: Scale,
                 top: float, baseline: float, axis_x: float) -> None:
    """CPU clocks in MHz, dashed, against their own axis on the right."""
    values = [v for pts in freqs.values() for _, v in pts]
    lo, hi = min(values), max(values)
    lo, hi = (lo - 50, hi + 50) if hi - lo < 100 else (lo, hi)
    y = Scale(lo, hi, baseline, top)
    step = nice_step(hi - lo, 4)
    for value in ticks(lo, hi, 4):
        canvas.text(axis_x + 4, y(value) + 4, tick_label(value, step), cls="ytick-right")
    canvas.text(axis_x + 4, top - 12, "MHz")
    for (colour, _, _), pts in zip(entries, freqs.values()):
        canvas.add("polyline", {"class": "clock", "points": " ".join(f"{num(x(t))},{num(y(v))}" for t, v in pts),
                                "fill": "none", "stroke": colour, "stroke_width": 1.0, "stroke_dasharray": "4 3"})


def pipeline_svg(names: list[str], stages: list[dict[str, float]], labels: dict[str, str],
                 budget_ms: float | None) -> str:
    """One horizontal bar per pipeline: its stages' median times stacked (a tooltip per segment), with the
    P95 budget as a line when it is near the bars and in words when it is not."""
    bar_h, gap, left, right, top = 18, 10, 190, 14, 40
    width = 760
    totals = [sum(s.get(k, 0.0) for k in labels) for s in stages]
    hi = max(totals + [1e-3])
    on_scale = bool(budget_ms) and budget_ms <= 2 * hi
    if on_scale:
        hi = max(hi, budget_ms)
    baseline = top + len(names) * (bar_h + gap)
    canvas = Canvas(width, int(baseline + 36), "median time per utterance by stage for each pipeline")
    x = Scale(0, hi * 1.05, left, width - right)
    colours = dict(zip(labels, STAGE_COLOURS))
    legend(canvas, 4, 14, [("box", colours[k], labels[k]) for k in labels if k in colours])
    if budget_ms and not on_scale:
        canvas.text(4, 30, f"budget {budget_ms:g} ms (P95) lies off this axis to the right: the longest median "
                    f"total is {hi / budget_ms:.0%} of it", colour=WARN, cls="budget-note")
    step = nice_step(x.hi, 6)
    for value in ticks(0, x.hi, 6):
        canvas.line(x(value), top - 4, x(value), baseline, GRID, cls="grid")
        canvas.text(x(value), baseline + 14, tick_label(value, step), anchor="middle", cls="xtick")
    canvas.text(width - right, baseline + 28, "median ms per utterance, by stage", anchor="end")
    for row, (name, stage_ms, total) in enumerate(zip(names, stages, totals)):
        y0 = top + row * (bar_h + gap)
        canvas.text(left - 6, y0 + bar_h / 2 + 4, name[:34], anchor="end", colour="#1d2b3a")
        start = 0.0
        for key in labels:
            value = stage_ms.get(key, 0.0)
            if value > 0 and key in colours:
                share = value / total if total else 0.0
                canvas.rect(x(start), y0, x(start + value) - x(start), bar_h, colours[key], cls="stage",
                            title=f"{name}: {labels[key]} {_fmt_ms(value)} ms ({share:.0%})")
            start += value
    if on_scale:
        canvas.line(x(budget_ms), top - 6, x(budget_ms), baseline, ACCENT, 1.6, "2 2", cls="budget",
                    title=f"budget {budget_ms:g} ms (P95)")
    return canvas.render()
