"""Which latency budget applies to a build: by its pipeline stage and whether it runs on an NPU."""

from __future__ import annotations

from harness.vocab import NPU_BACKENDS  # LLMs on a neural accelerator get the tighter budget
# The ASR budget covers the whole recogniser; its parts are held to it individually here and
# as a sum where a report has the whole chain.
_STAGE_BUDGET = {"vad": "vad", "mel": "asr", "asr-encoder": "asr", "asr-decoder": "asr", "asr": "asr"}


def budget_for(stage: str, backend: str, budgets: dict[str, float | None]) -> tuple[str, float] | None:
    """``(budget name, P95 limit in ms)`` for a build, or None when no budget applies."""
    if stage == "llm":
        name = "llm_npu" if backend in NPU_BACKENDS else "llm_cpu"
    else:
        name = _STAGE_BUDGET.get(stage)
    if name is None or budgets.get(name) is None:
        return None
    return name, float(budgets[name])
