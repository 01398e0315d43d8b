"""Statistics over raw latency samples, at the level of runs (see runlevel)."""

from harness.stats.summary import (Interval, LatencySummary, RunValues, per_utterance_p50, per_utterance_p95,
                                   percentile, run_values, summarize)

__all__ = ["Interval", "LatencySummary", "RunValues", "per_utterance_p50", "per_utterance_p95", "percentile", "run_values", "summarize"]
