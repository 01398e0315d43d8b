"""The ``PyTorchObserver {json}`` stats line of ExecuTorch's LLM and ASR runners (llama_main, Whisper)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PREFIX = "PyTorchObserver "


@dataclass(frozen=True)
class GenerationStats:
    load_ms: float
    time_to_first_token_ms: float
    prefill_tokens_per_s: float | None
    decode_tokens_per_s: float | None
    prompt_tokens: int
    generated_tokens: int
    total_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def parse(text: str) -> GenerationStats:
    """The last stats line of the log; times are scaled to ms by its SCALING_FACTOR_UNITS_PER_SECOND."""
    lines = [l[l.index(PREFIX) + len(PREFIX):] for l in text.splitlines() if PREFIX in l]
    if not lines:
        raise ValueError("no 'PyTorchObserver {...}' line")
    return from_json(json.loads(lines[-1]))


def from_json(s: dict) -> GenerationStats:
    """One stats object (``Stats::to_json_string`` in extension/llm/runner/stats.h) -> GenerationStats."""
    to_ms = 1000.0 / float(s.get("SCALING_FACTOR_UNITS_PER_SECOND", 1000))
    start, prefill_end, end = s["inference_start_ms"], s["prompt_eval_end_ms"], s["inference_end_ms"]
    prefill_s, decode_s = (prefill_end - start) * to_ms / 1000, (end - prefill_end) * to_ms / 1000
    return GenerationStats(
        load_ms=(s["model_load_end_ms"] - s["model_load_start_ms"]) * to_ms,
        time_to_first_token_ms=(s["first_token_ms"] - start) * to_ms,
        prefill_tokens_per_s=s["prompt_tokens"] / prefill_s if prefill_s > 0 else None,
        decode_tokens_per_s=s["generated_tokens"] / decode_s if decode_s > 0 else None,
        prompt_tokens=int(s["prompt_tokens"]), generated_tokens=int(s["generated_tokens"]),
        total_ms=(end - start) * to_ms,
    )
