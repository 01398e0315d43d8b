"""What a profiling run yields: per operator, the backend that ran it and its time."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

# The backend name of an operator ExecuTorch ran itself (not inside a delegate): its portable/optimized kernels.
PORTABLE_CPU = "portable CPU"


@dataclass(frozen=True)
class OperatorTime:
    """One operator (an ONNX node, an ExecuTorch kernel call or one delegate call) over a profiling run."""

    name: str
    backend: str  # what ran it: XNNPACK, QNN HTP, portable CPU, or an ONNX Runtime execution provider
    calls: int
    total_ms: float  # summed over every profiled inference of the run
    median_ms: float  # of one call
    op_type: str = ""  # the operator's kind (Gemm, aten.linear...) when the profiler names it apart from the node


@dataclass(frozen=True)
class Profile:
    """One profiling run of a cell: its operators, and its own per-inference latencies (for the check that the
    operators account for the time the run measured)."""

    iterations: int  # inferences profiled (warm-ups excluded)
    latency_ms: list[float] = field(default_factory=list)  # the profiling run's own timing of each of them
    operators: list[OperatorTime] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def aggregate(calls: list[tuple[str, str, str, float]]) -> list[OperatorTime]:
    """(name, backend, op_type, duration_ms) per call -> one record per (name, backend), slowest total first."""
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    kinds: dict[tuple[str, str], str] = {}
    for name, backend, op_type, ms in calls:
        grouped[(name, backend)].append(ms)
        kinds.setdefault((name, backend), op_type)
    records = [OperatorTime(name=name, backend=backend, calls=len(times), total_ms=sum(times),
                            median_ms=statistics.median(times), op_type=kinds[(name, backend)])
               for (name, backend), times in grouped.items()]
    return sorted(records, key=lambda r: (-r.total_ms, r.name))
