"""Every change point in a long series of nightly levels, by E-Divisive means (Apache Otava).

One detector for both views of history: the history site shows every change point of a series, and
the nightly's history check (harness.nightly.history) reports a series' newest one.  Over a year of
nights a build can step up, back down and up again.  E-Divisive means (Matteson & James, 2014) splits a series where the energy distance
between the two sides is largest and recurses into both sides; Otava runs it in sliding windows and
then merges away the points whose Student t-test p-value or relative change is too weak (Fleming et
al., "Hunter", ICPE 2023) — what MongoDB's and DataStax's performance CI run every day.

Apache Otava is installed without its dependencies (``pip install --no-deps apache-otava==0.8.0``,
as the Makefile does): the wheel pins numpy 2.2 and scipy < 1.17 and pulls BigQuery, Postgres and
Slack clients for its service, while the two modules used here need only numpy and scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import UserError

OTAVA = "apache-otava==0.8.0"
MAX_P_VALUE = 0.001  # strict: a year of nights is many chances to be fooled, and nightly pages must be rare
MIN_CHANGE = 0.05  # relative change of the mean a change point must reach (the nightly's default threshold)
WINDOW_NIGHTS = 50  # Otava's default split window
# Nights a level must last to count as one.  Otava's t-test takes a one-night segment's spread as zero, so a
# single slow night (a busy machine) would otherwise be two change points: up, then back down.
MIN_NIGHTS = 3


@dataclass(frozen=True)
class ChangePoint:
    index: int  # first night of the new level
    before: float  # mean of the nights since the previous change point (or the first night)
    after: float  # mean of the nights up to the next change point (or the last night)
    p_value: float  # Student's t-test between the two sides

    @property
    def ratio(self) -> float:
        return self.after / self.before


def _otava():
    try:
        from otava import analysis
    except ImportError:
        raise UserError("change points need Apache Otava's E-Divisive means, which is not installed.",
                        fix=f"pip install --no-deps '{OTAVA}' (its own dependencies are not needed; "
                            "'make' installs it this way).") from None
    return analysis


def _without_short_levels(analysis, found: list, series: list[float], max_p_value: float, min_change: float,
                          min_nights: int) -> list:
    """Otava's change points less those that bound a level shorter than ``min_nights`` (the weaker of its two
    ends goes first), with the rest re-tested on their new neighbours by Otava's own merge step."""
    tester = analysis.TTestSignificanceTester(max_p_value)
    points = list(found)
    while True:
        bounds = [0] + [int(cp.index) for cp in points] + [len(series)]
        short = next((k for k in range(len(bounds) - 1) if bounds[k + 1] - bounds[k] < min_nights), None)
        if short is None:
            return points
        ends = [i for i in (short - 1, short) if 0 <= i < len(points)]
        del points[min(ends, key=lambda i: points[i].stats.change_magnitude())]
        intervals = tester.get_intervals(points)
        points = [tester.change_point(cp.to_candidate(), series, intervals) for cp in points]
        points = analysis.merge(points, series, max_p_value, min_change)


def change_points(values, max_p_value: float = MAX_P_VALUE, min_change: float = MIN_CHANGE,
                  window_nights: int = WINDOW_NIGHTS, min_nights: int = MIN_NIGHTS) -> list[ChangePoint]:
    """The change points of ``values`` (one level per night, oldest first), oldest first.

    Nights without a level (NaN) are left out of the search and the indices still count them."""
    kept = [i for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if len(kept) < 4:
        return []
    series = [float(values[i]) for i in kept]
    analysis = _otava()
    found, _weak = analysis.compute_change_points(series, window_len=window_nights, max_pvalue=max_p_value,
                                                  min_magnitude=min_change)
    found = _without_short_levels(analysis, found, series, max_p_value, min_change, min_nights)
    return [ChangePoint(kept[int(cp.index)], float(cp.stats.mean_before()), float(cp.stats.mean_after()),
                        float(cp.stats.pvalue)) for cp in found]
