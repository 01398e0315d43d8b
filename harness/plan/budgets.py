"""Which latency budget applies to a build: by its pipeline stage and whether it runs on an NPU."""

from __future__ import annotations

from harness.vocab import NPU_BACKENDS  # LLMs on a neural accelerator get the tighter budget
# What each budget bounds is in harness/report/verdict.py.  The ASR budget bounds the recogniser per utterance:
# a part that runs once per utterance (log-mel, encoder) may be held to it alone, a decoder step (one of many
# per utterance) may not, so asr-decoder has no budget; the chain's per-utterance total is held to it whole.
_STAGE_BUDGET = {"vad": "vad", "mel": "asr", "asr-encoder": "asr", "asr": "asr"}


def budget_for(stage: str, backend: str, budgets: dict[str, float | None]) -> tuple[str, float] | None:
    """``(budget name, P95 limit in ms)`` for a build, or None when no budget applies."""
    if stage == "llm":
        name = "llm_npu" if backend in NPU_BACKENDS else "llm_cpu"
    else:
        name = _STAGE_BUDGET.get(stage)
    if name is None or budgets.get(name) is None:
        return None
    return name, float(budgets[name])
