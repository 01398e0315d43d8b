"""What a profiling run yields: per operator, the backend that ran it and its time."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from harness.termsafe import term_safe

# The backend name of an operator ExecuTorch ran itself (not inside a delegate): its portable/optimized kernels.
PORTABLE_CPU = "portable CPU"
# A delegate call whose backend the profile does not name (an ETDump read without the build's ETRecord).
UNNAMED_DELEGATE = "delegate"
# Between a control-flow node and a node of its subgraph in a name ("branch › heavy_matmul"): the subgraph's time is
# inside its parent's, so a nested operator is shown but never counted again in a total or a share.
NESTING = " › "


def nested_name(parent: str, name: str) -> str:
    return f"{parent}{NESTING}{name}"


def is_nested(name: str) -> bool:
    return NESTING in name


SHOWN_NAME_MAX_CHARS = 80  # a generated node name can run to thousands of characters


def shown_name(name: str) -> str:
    """A node name fit for a table cell or a line: its controls (a bidi override U+202E) shown as escapes, as on
    the terminal, and cut with an ellipsis past SHOWN_NAME_MAX_CHARS (a report's title keeps it whole)."""
    safe = term_safe(name)
    return safe if len(safe) <= SHOWN_NAME_MAX_CHARS else safe[:SHOWN_NAME_MAX_CHARS - 1] + "…"


# A profiling run (host or phone) times this many inferences at most: enough for a stable per-operator median, and
# the profiler's output (ETDump's buffers, ORT's JSON read back from a phone) stays small.
PROFILE_ITERATIONS_MAX = 20


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
    operators_ms: list[float] = field(default_factory=list)  # the operators' summed time in each of them
    operators: list[OperatorTime] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def accounted_share(profile: Profile) -> float | None:
    """The operators' time over the inference's own latency, at the profiling run's least disturbed inference: near
    1 when the operators are where the time went.  The least disturbed is the one with the highest ratio: on a busy
    machine a preemption between two operators lands in the latency and in no operator, so it only ever lowers the
    ratio (the median of the ratios fell to 0.69 under load, the fastest inference's to 0.86).  Operators cannot
    take longer than the inference holding them, so a ratio well over 1 is a parser counting events twice."""
    ratios = [ops / ms for ops, ms in zip(profile.operators_ms, profile.latency_ms) if ms > 0]
    return max(ratios) if ratios else None


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


@dataclass(frozen=True)
class CellOperator:
    """One operator of a cell over its profiling runs: its time per inference (its total over the run's inferences,
    so the operators of a run add up to the time its kernels took, as its latency does) and its median call.
    Rankings, shares and differences use :attr:`median_per_inference_ms`: a profiling run times few inferences, and
    one call held up by other load on the machine moves a total (a mean) far more than a median."""

    name: str
    backend: str
    op_type: str
    calls_per_inference: float
    per_inference_ms: float
    median_ms: float

    @property
    def nested(self) -> bool:
        """Inside a control-flow node's subgraph: its time is already in its parent's."""
        return is_nested(self.name)

    @property
    def median_per_inference_ms(self) -> float:
        """Its median call times its calls per inference: unlike ``per_inference_ms`` (a total over a few profiled
        inferences), one slow first call does not dominate it."""
        return self.median_ms * self.calls_per_inference


def merged(profiles: list[Profile]) -> list[CellOperator]:
    """A cell's operators over all its profiling runs (the median over runs of each figure), slowest first by
    :attr:`CellOperator.median_per_inference_ms`."""
    per_run: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    kinds: dict[tuple[str, str], str] = {}
    for profile in profiles:
        if profile.iterations <= 0:
            continue
        for r in profile.operators:
            calls = r.calls / profile.iterations
            per_run[(r.name, r.backend)].append((calls, r.total_ms / profile.iterations, r.median_ms))
            kinds.setdefault((r.name, r.backend), r.op_type)
    out = [CellOperator(name=name, backend=backend, op_type=kinds[(name, backend)],
                        calls_per_inference=statistics.median(v[0] for v in values),
                        per_inference_ms=statistics.median(v[1] for v in values),
                        median_ms=statistics.median(v[2] for v in values))
           for (name, backend), values in per_run.items()]
    return sorted(out, key=lambda r: (-r.median_per_inference_ms, r.name))


def top_level(operators: list[CellOperator]) -> list[CellOperator]:
    """The operators whose times add up to an inference's: none inside a control-flow node's subgraph."""
    return [r for r in operators if not r.nested]


def profiled_total_ms(profiles: list[Profile]) -> float | None:
    """The median over a cell's profiled inferences of their summed top-level operator time, ms."""
    values = [ms for profile in profiles for ms in profile.operators_ms]
    return statistics.median(values) if values else None


def profile_noise_ms(profiles: list[Profile]) -> float:
    """How much a cell's summed operator time moves between its own profiled inferences: the median absolute
    deviation from their median, ms (0 with fewer than two).  A change between two cells smaller than this is
    not something their operators can explain."""
    values = [ms for profile in profiles for ms in profile.operators_ms]
    if len(values) < 2:
        return 0.0
    centre = statistics.median(values)
    return statistics.median(abs(v - centre) for v in values)
