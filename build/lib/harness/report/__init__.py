"""HTML reports, rendered only from stored results (a report can be rebuilt without rerunning)."""

from harness.report.html import write_report

__all__ = ["write_report"]
