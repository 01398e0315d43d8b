"""Many nights at once: a step change in a build's nightly levels, not just night-to-night noise.

A slow drift never trips a night-to-night comparison (each night is within noise of the last), but it
does shift the level of recent nights against earlier ones.  The nightly's history check and the
history site find such steps with one detector: E-Divisive means (``harness.nightly.changepoints``).
The nightly reports a series' newest change point, from the first night whose history showed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.nightly.changepoints import MIN_NIGHTS, change_points
from harness.stats import Interval

# Nights a change point found in a shorter history may sit from where the whole history places it and still be
# the same step (the benchmark's tolerance, benchmarks/changepoints.py).
SAME_STEP_NIGHTS = 2


@dataclass(frozen=True)
class Step:
    index: int  # first night of the new level
    before: float  # mean level of the nights before (since the previous change point)
    after: float  # mean level of the nights from `index` on
    p_value: float  # Student's t-test between the two sides (E-Divisive's merge test)
    detected_index: int | None = None  # the first night whose history up to it showed the step

    @property
    def ratio(self) -> float:
        return self.after / self.before


def first_detected(values, index: int, threshold: float) -> int:
    """The first night whose history (that night and the ones before) has a change point within
    ``SAME_STEP_NIGHTS`` of ``index``: the night a nightly could first report the step beginning at ``index``."""
    values = list(values)
    for last in range(index + MIN_NIGHTS - 1, len(values)):
        found = change_points(values[:last + 1], min_change=threshold)
        if any(abs(cp.index - index) <= SAME_STEP_NIGHTS for cp in found):
            return last
    return len(values) - 1


def newest_step(values, threshold: float = 0.05) -> Step | None:
    """The newest change point of ``values`` (one level per night, oldest first) and the night it was first
    detectable, or None.  A level needs ``MIN_NIGHTS`` nights on each side, so 6 nights at least."""
    found = change_points(list(values), min_change=threshold)
    if not found:
        return None
    cp = found[-1]
    return Step(cp.index, cp.before, cp.after, cp.p_value, first_detected(values, cp.index, threshold))


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
    # A chain's per-utterance P95 has an interval of its own (order statistics over utterances) and change points
    # of its own (the history site); a latency cell's P95 has neither.
    p95_interval: list[Interval | None] = field(default_factory=list)
    p95_step: Step | None = None


def build_series(rows: list[dict], threshold: float = 0.05) -> list[Series]:
    """Group history rows by device and build identity; find the newest step in each P50 series."""
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
        series.step = newest_step(series.p50_ms, threshold)
    return sorted(groups.values(), key=lambda s: (s.device_id, s.subject))
