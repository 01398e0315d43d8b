"""Child process that measures one LLM build on the host through ExecuTorch's own LLM runner.

Run as ``python -m harness.runners.host_llm_worker --model M --tokenizer T --prompt P ...``.  The
runner is ``executorch.extension.llm.runner.TextLLMRunner`` (the Python bindings of
extension/llm/runner/text_llm_runner.h, in the wheel since ExecuTorch 1.0), the same C++ code as
``llama_main``: it loads the program lazily on the first generation and fills a ``Stats`` record per
generation, whose JSON (``Stats::to_json_string``) is the ``PyTorchObserver`` object llama_main
prints.  Each generation prints one ``HARNESS_GENERATION {json}`` line holding that object, its
phase (warm-up or measured) and its text; the last line is ``HARNESS_RESULT {json}`` with the
process's memory.  The KV cache is reset between generations, so each one starts from the prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from harness.runtime import import_llm_runner, peak_rss_mb, rss_mb, set_executorch_threads
from harness.wire import GENERATION_PREFIX, RESULT_PREFIX


def _runner_module():
    """The LLM runner bindings, with the kernels its programs need registered first (without the exporter)."""
    return import_llm_runner()


def generate_timed(runner, prompt: str, config) -> tuple[list[str], object, float]:
    """One generation: its pieces, the runner's Stats, and the time to first token in ms on a nanosecond
    clock, from the call to the first piece's callback.  The runner's own Stats tick in whole milliseconds
    (``time_in_ms``), so a small model's prefill reads as 0 there; they are kept beside it."""
    pieces, stats, first = [], [], []
    t0 = time.perf_counter_ns()

    def on_piece(piece: str) -> None:
        if not first:
            first.append(time.perf_counter_ns())
        pieces.append(piece)

    runner.generate(prompt, config, token_callback=on_piece, stats_callback=stats.append)
    if not stats or not first:
        raise RuntimeError("the LLM runner reported no token or no stats for a generation")
    return pieces, stats[-1], (first[0] - t0) / 1e6


def measure(model: str, tokenizer: str, prompt: str, seq_len: int, warmup: int, iterations: int,
            threads: int | None) -> None:
    """Warm-up generations, then measured ones; one HARNESS_GENERATION line each, then HARNESS_RESULT."""
    llm = _runner_module()
    set_executorch_threads(threads)
    rss_before_mb = rss_mb()
    runner = llm.TextLLMRunner(model, tokenizer)
    config = llm.GenerationConfig(echo=False, seq_len=seq_len, temperature=0.0)  # greedy: the same text every night
    measured_start = None
    for i in range(warmup + iterations):
        if i == warmup:
            measured_start = time.time()
        runner.reset()  # an empty KV cache: every generation prefills the whole prompt
        started = time.perf_counter_ns()
        pieces, stats, first_token_ms = generate_timed(runner, prompt, config)
        # The whole generation on the same clock as the first token (the stats' total is on the runner's ms clock).
        generation_ms = (time.perf_counter_ns() - started) / 1e6
        line = {"phase": "warmup" if i < warmup else "measured", "text": "".join(pieces),
                "first_token_ms": first_token_ms, "generation_ms": generation_ms,
                "stats": json.loads(stats.to_json_string())}
        print(GENERATION_PREFIX + json.dumps(line), flush=True)
    result = {"peak_rss_mb": peak_rss_mb(),
              "rss_before_load_mb": rss_before_mb, "measured_start_epoch_s": measured_start,
              "measured_end_epoch_s": time.time(), "pid": os.getpid(), "ppid": os.getppid()}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--seq-len", type=int, required=True, help="prompt + generated tokens, as llama_main's --seq_len")
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    measure(args.model, args.tokenizer, args.prompt, args.seq_len, args.warmup, args.iterations, args.threads or None)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
