"""Statistics over raw latency samples."""

from harness.stats.summary import Interval, LatencySummary, bootstrap_ci, percentile, summarize

__all__ = ["Interval", "LatencySummary", "bootstrap_ci", "percentile", "summarize"]
