"""Small SVG charts for the report, as data URIs (self-contained, no id clashes between charts)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({
    "svg.fonttype": "none",  # keep text as text: smaller files, selectable labels
    "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
    "axes.edgecolor": "#888", "axes.labelcolor": "#333", "xtick.color": "#555", "ytick.color": "#555",
})
INK, ACCENT, WARN = "#2c4a6e", "#d1495b", "#edae49"


def _to_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def latency_distribution(samples_ms: np.ndarray, p50: float, p95: float, budget_ms: float | None) -> str:
    """Histogram of measured latencies with P50, P95 and the budget marked; an ECDF beside it.

    The axis spans the data, not the budget: a 0.1 ms VAD next to a 10 ms budget would
    otherwise be a single line.  A budget off the scale is named in the corner instead.
    """
    fig, (hist, ecdf) = plt.subplots(1, 2, figsize=(6.4, 2.1), gridspec_kw={"width_ratios": [3, 2]})
    lo, hi = float(np.min(samples_ms)), float(np.max(samples_ms))
    pad = max((hi - lo) * 0.05, hi * 0.01, 1e-3)
    budget_on_scale = budget_ms is not None and budget_ms <= hi + (hi - lo) * 0.5 + pad
    right = max(hi + pad, budget_ms + pad) if budget_on_scale else hi + pad
    hist.hist(samples_ms, bins=min(40, max(5, len(samples_ms) // 4)), color=INK, alpha=0.85)
    ordered = np.sort(samples_ms)
    ecdf.step(ordered, np.arange(1, len(ordered) + 1) / len(ordered), where="post", color=INK)
    for ax in (hist, ecdf):
        ax.axvline(p50, color="#555", lw=1, ls="--")
        ax.axvline(p95, color=ACCENT, lw=1.2)
        if budget_on_scale:
            ax.axvline(budget_ms, color=WARN, lw=1.5, ls=":")
        ax.set_xlim(max(0.0, lo - pad), right)
        ax.set_xlabel("latency (ms)")
    if budget_ms is not None and not budget_on_scale:
        ecdf.text(0.98, 0.04, f"budget {budget_ms:g} ms\n(off scale) →", transform=ecdf.transAxes, ha="right",
                  va="bottom", color=WARN, fontsize=8)
    hist.set_ylabel("iterations")
    hist.text(p95, hist.get_ylim()[1], " P95", color=ACCENT, va="top", fontsize=8)
    ecdf.set_ylabel("fraction ≤ x")
    ecdf.set_ylim(0, 1.02)
    return _to_uri(fig)


def thermal_timeline(thermals: list[dict], measured_window_s: list[float] | None = None) -> str:
    """Temperatures over the cell, one line per sensor (clocks on a second axis when present).

    The measured iterations are shaded; readings with a thermal status above NONE are marked ×.
    """
    fig, ax = plt.subplots(figsize=(6.4, 1.8))
    if measured_window_s:
        ax.axvspan(*measured_window_s, color=INK, alpha=0.08, lw=0, label="measured iterations")
    temps: dict[str, tuple[list, list]] = {}
    freqs: dict[str, tuple[list, list]] = {}
    for s in thermals:
        target = temps if s["kind"] == "temp" else freqs if s["kind"] == "freq" else None
        if target is not None:
            xs, ys = target.setdefault(s["sensor"], ([], []))
            xs.append(s["t_s"])
            ys.append(s["value"])
    for name, (xs, ys) in list(temps.items())[:8]:
        ax.plot(xs, ys, lw=1, label=name)
    ax.set_xlabel("seconds into the cell")
    ax.set_ylabel("°C")
    hot = [s["t_s"] for s in thermals if s["kind"] == "status" and s["value"] > 0]
    if hot and temps:
        ax.scatter(hot, [max(max(ys) for _, ys in temps.values())] * len(hot), marker="x", color=ACCENT,
                   s=14, zorder=3, label="throttled (status > NONE)")
    if freqs:
        ax2 = ax.twinx()
        for name, (xs, ys) in list(freqs.items())[:4]:
            ax2.plot(xs, np.asarray(ys) / 1000, lw=0.8, ls="--", label=name)
        ax2.set_ylabel("MHz")
    if temps or measured_window_s:
        ax.legend(fontsize=6, loc="upper left", frameon=False, ncol=2)
    return _to_uri(fig)


def history_chart(p50_ms: list[float], p95_ms: list[float], step_index: int | None, throttled: list[bool]) -> str:
    """Nightly P50 and P95 over time; the detected step as a shaded new level; throttled nights marked."""
    fig, ax = plt.subplots(figsize=(4.2, 1.4))
    nights = np.arange(len(p50_ms))
    ax.plot(nights, p95_ms, color=ACCENT, lw=0.8, alpha=0.7, label="P95")
    ax.plot(nights, p50_ms, color=INK, lw=1.2, label="P50")
    if step_index is not None:
        ax.axvspan(step_index - 0.5, len(p50_ms) - 0.5, color=WARN, alpha=0.18, lw=0)
    hot = [i for i, t in enumerate(throttled) if t]
    if hot:
        ax.scatter(hot, [p50_ms[i] for i in hot], color=ACCENT, marker="x", s=12, zorder=3)
    ax.set_xlabel("night")
    ax.set_ylabel("ms")
    ax.legend(fontsize=6, frameon=False, loc="upper left", ncol=2)
    return _to_uri(fig)


STAGE_COLOURS = ["#9bb7d4", "#5b8db8", INK, "#7a9e7e", WARN]


def pipeline_stack(names: list[str], stages: list[dict[str, float]], labels: dict[str, str],
                   budget_ms: float | None) -> str:
    """One horizontal bar per pipeline: its stages' median times stacked, with the budget marked."""
    fig, ax = plt.subplots(figsize=(7.0, 0.5 + 0.45 * len(names)))
    y = np.arange(len(names))
    left = np.zeros(len(names))
    for colour, key in zip(STAGE_COLOURS, labels):
        widths = np.asarray([s.get(key, 0.0) for s in stages])
        ax.barh(y, widths, left=left, color=colour, label=labels[key], height=0.6)
        left += widths
    if budget_ms:
        ax.axvline(budget_ms, color=ACCENT, linestyle=":", linewidth=1.5, label=f"budget {budget_ms:g} ms (P95)")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("median ms per utterance, by stage")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(names) < 3 else -0.2), ncol=3, frameon=False)
    return _to_uri(fig)
