"""LLM builds on the host: ExecuTorch's ``TextLLMRunner`` in a child process (see host_llm_worker).

Upstream: extension/llm/runner (``text_llm_runner.h``, ``stats.h``, the pybindings in
``_llm_runner.pyi``), ExecuTorch 1.0 on; read at v1.5 (the wheel pinned here is 1.5.1).  It is the
runner ``llama_main`` wraps, so a host cell and an Android cell of the same build measure the same
thing: the sample is the time to first token of a greedy generation from the plan's prompt (the
next-word latency a user feels), timed to the first token's callback on a nanosecond clock (the
runner's ``Stats`` tick in whole milliseconds), with model load, prefill and decode rates and peak
RSS beside it from the runner's own ``Stats``.  One process is one run: the program is loaded once, then
warm-up and measured generations follow, each from an empty KV cache.
"""

from __future__ import annotations

import json
import statistics
import sys

from harness.runners import pytorch_observer
from harness.runners.base import Measurement, RunSettings, push_companion, require_host_runtime, run_worker
from harness.wire import GENERATION_PREFIX, RESULT_PREFIX

NAME = "host-llm"
TOOL = "host_llm_worker"
TASK = "latency"


def supports(platform: str, artifact) -> bool:
    return platform == "host" and artifact.format == "pte" and artifact.stage == "llm"


def build_command(model_path: str, tokenizer_path: str, settings: RunSettings) -> list[str]:
    return [sys.executable, "-m", "harness.runners.host_llm_worker", "--model", model_path,
            "--tokenizer", tokenizer_path, "--prompt", settings.llm_prompt, "--seq-len", str(settings.llm_seq_len),
            "--warmup", str(settings.warmup_iterations), "--iterations", str(settings.iterations),
            *(["--threads", str(settings.threads)] if settings.threads else [])]


def parse(text: str) -> Measurement:
    """The worker's output -> one sample (time to first token) per measured generation, and the rest beside."""
    generations, result = [], None
    for line in text.splitlines():
        if line.startswith(GENERATION_PREFIX):
            generations.append(json.loads(line[len(GENERATION_PREFIX):]))
        elif line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
    if result is None:
        raise ValueError("no HARNESS_RESULT line in the worker's output")
    warmups = [g for g in generations if g["phase"] == "warmup"]
    measured = [g for g in generations if g["phase"] == "measured"]
    warm = [pytorch_observer.from_json(g["stats"]) for g in warmups]
    stats = [pytorch_observer.from_json(g["stats"]) for g in measured]
    if not stats:
        raise ValueError("no measured generation in the worker's output")

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    first = (warm or stats)[0]  # the runner loads lazily: the first generation carries the load
    extra = {"total_ms_median": median(s.total_ms for s in stats),
             "generation_ms_median": median(g.get("generation_ms") for g in measured),
             "prefill_tokens_per_s_median": median(s.prefill_tokens_per_s for s in stats),
             "decode_tokens_per_s_median": median(s.decode_tokens_per_s for s in stats),
             "prompt_tokens": stats[0].prompt_tokens, "generated_tokens": stats[0].generated_tokens,
             "rss_before_load_mb": result.get("rss_before_load_mb"),
             **{k: result[k] for k in ("measured_start_epoch_s", "measured_end_epoch_s", "pid", "ppid") if k in result}}
    def ttft(generation: dict, s) -> float:  # the worker's own clock; older output had only the stats' ms
        return generation.get("first_token_ms", s.time_to_first_token_ms)

    return Measurement(samples_ms=[ttft(g, s) for g, s in zip(measured, stats)],
                       warmup_ms=[ttft(g, s) for g, s in zip(warmups, warm)], load_ms=first.load_ms,
                       peak_rss_mb=result.get("peak_rss_mb"), extra={k: v for k, v in extra.items() if v is not None},
                       notes=["samples are time to first token (the prompt's prefill + the first sampled token), "
                              "timed to the first token's callback on a nanosecond clock; the rates, load and token "
                              "counts are the runner's own stats (millisecond clock)",
                              f"generated: {measured[0]['text'][:200]!r}"])


def measure(device, model_path: str, artifact, settings: RunSettings) -> Measurement:
    require_host_runtime("pte")
    tokenizer = push_companion(device, artifact, "tokenizer")
    return run_worker(device, build_command(model_path, tokenizer, settings), settings.timeout_s,
                      "the host LLM worker", parse)
