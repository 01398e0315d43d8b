"""Operator profiles: where one inference's time goes, per operator (or delegate call), from the runtime's own
profiler (ONNX Runtime's JSON profile, ExecuTorch's ETDump), and how much of it ran on the build's delegate.

Parsers are pure functions from what a profiler wrote to :class:`OperatorTime` records; a profiling run is
separate from the measured runs of its cell, so the profiler's overhead never touches a latency sample.
"""

from harness.profile.records import CellOperator, OperatorTime, Profile, aggregate, merged

__all__ = ["CellOperator", "OperatorTime", "Profile", "aggregate", "merged"]
