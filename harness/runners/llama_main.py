"""ExecuTorch's LLM runner ``llama_main``: command, and its ``PyTorchObserver`` stats line.

Flags from examples/models/llama/main.cpp (pytorch/executorch tags v1.0.0 to v1.4.0, read at each tag
2026-12-07): ``--model_path --tokenizer_path --prompt --temperature --seq_len --cpu_threads --num_bos --num_eos
--warmup``, and the weights file as ``--data_path`` in v1.0.0 but ``--data_paths`` (a list) from v1.1.0 (the harness
passes neither: its programs carry their weights); ``--seq_len`` bounds prompt + new tokens, and the token the prefill yields is
printed but not counted in ``generated_tokens`` (extension/llm/runner/text_llm_runner.cpp).  The
tokenizer is loaded by ``llm::load_tokenizer``, which tries a Hugging Face ``tokenizer.json`` first,
then tiktoken, SentencePiece and llama2.c formats (extension/llm/runner/llm_runner_helper.cpp).

The ``PyTorchObserver {...}`` stats line is printed with ``printf`` to stdout
(extension/llm/runner/stats.h, every tag since v0.4), beside the generated text; ET_LOG
lines go to logcat or stderr depending on the build.  All three are read.  One invocation is one generation
(with a model load before it, and with ``--warmup`` one warm-up generation in the same process), and each
measured one contributes one sample.

The sample is the time to first token: for next-word prediction that is the latency
a user feels (the prompt's forward pass and one sampled token).  Load time, total
generation time and prefill/decode throughput are kept beside it.
"""

from __future__ import annotations

import statistics

from harness.runners import pytorch_observer
from harness.runners.base import (Measurement, RunnerFailure, RunSettings, push_companion, run_et_binary,
                                  with_kernel_peak)
from harness.runners.executor_runner import push_tool

NAME = "android-llama-main"
TOOL = "llama_main"
TASK = "latency"


def build_command(runner: str, model_path: str, tokenizer_path: str, prompt: str, seq_len: int,
                  threads: int | None = None, warmup: bool = False) -> list[str]:
    """``warmup``: ``--warmup`` (every release since v1.0), one generation of the same prompt in the same process
    before the measured one; it prints no stats line, and the stats are reset after it except the model load's
    (extension/llm/runner/text_llm_runner.cpp ``warmup``, stats.h ``reset``, v1.0.0-v1.4.0)."""
    argv = [runner, "--model_path", model_path, "--tokenizer_path", tokenizer_path, "--prompt", prompt,
            "--seq_len", str(seq_len), "--temperature", "0"]  # greedy: the same text every night
    if warmup:
        argv.append("--warmup")
    if threads:
        argv += ["--cpu_threads", str(threads)]
    return argv


def parse(text: str) -> Measurement:
    """One generation's output -> its one sample (time to first token), load time and generation stats."""
    s = pytorch_observer.parse(text)
    extra = {"total_ms": s.total_ms, "prefill_tokens_per_s": s.prefill_tokens_per_s,
             "decode_tokens_per_s": s.decode_tokens_per_s, "prompt_tokens": s.prompt_tokens,
             "generated_tokens": s.generated_tokens}
    return Measurement(samples_ms=[s.time_to_first_token_ms], load_ms=s.load_ms,
                       extra={k: v for k, v in extra.items() if v is not None})


def supports(platform: str, artifact) -> bool:
    return (platform == "android" and artifact.format == "pte" and artifact.stage == "llm"
            and artifact.backend in ("xnnpack", "portable"))


def generate(device, argv: list[str], settings: RunSettings, what: str,
             env: dict[str, str] | None = None) -> tuple[Measurement, str]:
    """One invocation: its stats and the text it printed (stdout without the stats line).  ``env``: the loader
    paths a qnn build's libraries need (qnn_executor_runner.push_libraries_for)."""
    said = run_et_binary(device, argv, settings.timeout_s, what, env=env)
    text = "\n".join(line for line in said.result.stdout.splitlines() if "PyTorchObserver" not in line)
    try:
        return with_kernel_peak(parse(said.text), said.result), text
    except (ValueError, KeyError) as exc:
        raise RunnerFailure("failed", f"could not read {what}'s stats line ({exc})", said.log()) from None


def measure(device, model_path: str, artifact, settings: RunSettings) -> Measurement:
    """Warm-up generations (discarded), then one generation per measured iteration."""
    runner = push_tool(device, "llama_main")
    tokenizer_path = push_companion(device, artifact, "tokenizer")
    # Each measured generation is its own process (one invocation, one generation); with warm-ups asked for, it
    # warms up in that same process first: a warm-up in another process left every measured one cold.
    argv = build_command(runner, model_path, tokenizer_path, settings.llm_prompt, settings.llm_seq_len, settings.threads,
                         warmup=settings.warmup_iterations > 0)
    runs = [generate(device, argv, settings, "llama_main") for _ in range(settings.iterations)]
    generations = [m for m, _ in runs]

    def median(key):
        values = [m.extra[key] for m in generations if key in m.extra]
        return statistics.median(values) if values else None

    extra = {"total_ms_median": median("total_ms"),
             "prefill_tokens_per_s_median": median("prefill_tokens_per_s"),
             "decode_tokens_per_s_median": median("decode_tokens_per_s"),
             "prompt_tokens": generations[0].extra.get("prompt_tokens"),
             "generated_tokens": generations[0].extra.get("generated_tokens"),
             "load_ms_samples": [m.load_ms for m in generations],
             # every generation its processes ran, warm-ups included (energy per token divides by their tokens)
             "generations_run": len(generations) * (2 if settings.warmup_iterations else 1)}
    text = runs[0][1].strip()
    loads = [m.load_ms for m in generations if m.load_ms is not None]
    warm_note = (["each measured generation followed one warm-up generation in its own process (llama_main "
                  "--warmup, whose time the runner does not print)"] if settings.warmup_iterations else [])
    peaks = [m.peak_rss_mb for m in generations if m.peak_rss_mb is not None]
    return Measurement(samples_ms=[m.samples_ms[0] for m in generations],
                       load_ms=statistics.median(loads) if loads else None, peak_rss_mb=max(peaks, default=None),
                       extra={k: v for k, v in extra.items() if v is not None},
                       notes=[*warm_note, "samples are time to first token (prompt forward pass + first sampled token)",
                              f"prompt {settings.llm_prompt!r} -> {text[:200]!r}"])
