"""Statistics over raw latency samples, at the level of runs (see runlevel)."""

from harness.stats.summary import Interval, LatencySummary, RunValues, percentile, run_values, summarize

__all__ = ["Interval", "LatencySummary", "RunValues", "percentile", "run_values", "summarize"]
