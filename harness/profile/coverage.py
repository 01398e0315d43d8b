"""Delegation coverage of a cell: how much of its operators and of its profiled time ran on the delegate its build
was made for, and whether a delegate build runs a material share of its time on the plain CPU instead."""

from __future__ import annotations

from dataclasses import dataclass

from harness.profile.records import PORTABLE_CPU, UNNAMED_DELEGATE, CellOperator, Profile, merged, top_level

# A build made for a delegate that spends this share of its profiled time or more on the CPU fallback is flagged:
# the delegate did not take part of the graph, and the latency is mostly that part's.
FALLBACK_FLAG_SHARE = 0.10

ORT_CPU = "CPUExecutionProvider"
# The backend a build was made for (the manifest's 'backend') -> the name its profiler gives what ran there.
INTENDED = {"portable": PORTABLE_CPU, "xnnpack": "XNNPACK", "qnn": "QNN HTP", "coreml": "Core ML", "mps": "MPS",
            "ort-cpu": ORT_CPU, "ort-xnnpack": "XnnpackExecutionProvider", "ort-qnn": "QNNExecutionProvider",
            "ort-nnapi": "NnapiExecutionProvider", "ort-coreml": "CoreMLExecutionProvider"}


@dataclass(frozen=True)
class Coverage:
    intended: str  # the backend the build was made for, as its profiler names it
    fallback: str  # where what the delegate did not take runs: ExecuTorch's portable kernels or ORT's CPU EP;
    # "" for a build made for the CPU itself (ort-cpu, portable): nothing falls back from it
    operator_share: float  # of profiled operators (a delegate call counts as one) that ran on ``intended``
    time_share: float  # of the profiled time per inference (operators' medians) that ran on ``intended``
    fallback_time_share: float  # of that time on ``fallback`` (0 when the build was made for the CPU itself)

    @property
    def flagged(self) -> bool:
        """A delegate build running a material share of its time on the CPU fallback."""
        return self.fallback_time_share >= FALLBACK_FLAG_SHARE

    def reading(self) -> str:
        """"XNNPACK ran 38% of the profiled time and 2 of 4 operators; 62% ran on the portable CPU"."""
        text = f"{self.intended} ran {self.time_share:.0%} of the profiled time and {self.operator_share:.0%} of the operators"
        return text + (f"; {self.fallback_time_share:.0%} ran on {self.fallback}" if self.fallback_time_share else "")

    def flag(self) -> str:
        """The warning a flagged cell carries."""
        return (f"CPU fallback: {self.fallback_time_share:.0%} of the profiled time ran on {self.fallback}, not "
                f"{self.intended} (the flag is from {FALLBACK_FLAG_SHARE:.0%})")


def coverage(profiles: list[Profile], build_backend: str) -> Coverage | None:
    """The coverage of a cell's profiling runs for a build made for ``build_backend``; None without operators."""
    operators = top_level(merged(profiles))  # a subgraph's nodes are inside their If's time already
    if not operators:
        return None
    intended = INTENDED.get(build_backend, build_backend)
    fallback = ORT_CPU if build_backend.startswith("ort-") else PORTABLE_CPU
    total_ms = sum(r.median_per_inference_ms for r in operators)

    def ran_on(r: CellOperator, backend: str) -> bool:
        # A delegate call the profile could not name (no ETRecord) ran in the delegate the build was lowered to.
        return r.backend == backend or (r.backend == UNNAMED_DELEGATE and backend == intended != fallback)

    def time_on(backend: str) -> float:
        return sum(r.median_per_inference_ms for r in operators if ran_on(r, backend)) / total_ms if total_ms else 0.0

    return Coverage(intended=intended, fallback="" if fallback == intended else fallback,
                    operator_share=sum(ran_on(r, intended) for r in operators) / len(operators),
                    time_share=time_on(intended),
                    fallback_time_share=0.0 if fallback == intended else time_on(fallback))


def on_fallback(operators: list[CellOperator], cover: Coverage) -> list[CellOperator]:
    """The operators that ran on the fallback, slowest first (what a flagged cell's reader looks at first)."""
    return [r for r in operators if cover.fallback and r.backend == cover.fallback]
