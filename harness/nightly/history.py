"""Many nights at once: detect a step change in a metric's history, not just night-to-night noise.

A slow drift never trips a night-to-night comparison (each night is within noise of the
last), but it does shift the level of recent nights against earlier ones.  For a series
of nightly medians we try every split point, compare the two segments with a
Mann-Whitney U test, and call a step when the best split is significant and moves the
median by more than the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.stats import Interval

MIN_SEGMENT = 5  # nights on each side of a step
STEP_ALPHA = 0.001  # strict: every split point is a test, and nightly pages must be rare


@dataclass(frozen=True)
class Step:
    index: int  # first night of the new level
    before: float  # median of the nights before
    after: float  # median of the nights from `index` on
    p_value: float

    @property
    def ratio(self) -> float:
        return self.after / self.before


def detect_step(values, threshold: float = 0.05, min_segment: int = MIN_SEGMENT,
                alpha: float = STEP_ALPHA) -> Step | None:
    """The most significant level shift in ``values`` larger than ``threshold``, or None."""
    from scipy.stats import mannwhitneyu

    data = np.asarray(values, dtype=float)
    best: Step | None = None
    for k in range(min_segment, data.size - min_segment + 1):
        left, right = data[:k], data[k:]
        before, after = float(np.median(left)), float(np.median(right))
        if before <= 0 or abs(after / before - 1) <= threshold:
            continue
        p = float(mannwhitneyu(left, right, alternative="two-sided").pvalue)
        if p < alpha and (best is None or p < best.p_value):
            best = Step(k, before, after, p)
    return best


@dataclass
class Series:
    device_id: str
    subject: str
    run_ids: list[str]
    p50_ms: list[float]
    p95_ms: list[float]
    throttled: list[bool]
    step: Step | None = None
    started_at: list[str] = field(default_factory=list)  # each night's run start (ISO 8601), for the x-axis
    p50_interval: list[Interval | None] = field(default_factory=list)  # each night's run-level 95% interval
    chart_svg: str = ""


def build_series(rows: list[dict], threshold: float = 0.05) -> list[Series]:
    """Group history rows by device and build identity; detect a step in each P50 series."""
    groups: dict[tuple, Series] = {}
    from harness.run.engine import identity_of
    from harness.stats.runlevel import geometric_estimate

    for r in rows:
        key = identity_of(r["device_id"], r)
        series = groups.setdefault(key, Series(r["device_id"], f"{r['model']} {r['stage']} {r['quantization']} "
                                                             f"{r['backend']}", [], [], [], []))
        series.run_ids.append(r["run_id"])
        series.started_at.append(r["started_at"])
        # Each night's level is its run-level geometric mean, as in the night's own report.
        p50, p95 = geometric_estimate(r["run_p50_ms"]), geometric_estimate(r["run_p95_ms"])
        series.p50_ms.append(p50.value)
        series.p50_interval.append(p50.interval)
        series.p95_ms.append(p95.value if p95 else float("nan"))
        series.throttled.append(bool(r["throttled"]))
    for series in groups.values():
        series.step = detect_step(series.p50_ms, threshold)
    return sorted(groups.values(), key=lambda s: (s.device_id, s.subject))
