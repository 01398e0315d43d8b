"""ExecuTorch's Whisper runner on Android: transcribe a corpus one utterance per invocation.

Source: examples/models/whisper/main.cpp (pytorch/executorch v1.1.0-v1.4.0; gflags ``--model_path --data_path
--tokenizer_path --processor_path --audio_path --temperature --max_new_tokens``, and ``--benchmark`` only in a build
of the unmerged commit c26a4e38fd) around ``AsrRunner::transcribe`` (extension/asr/runner/runner.cpp to v1.3.0,
``Seq2SeqRunner`` in seq2seq_runner.cpp at v1.4.0).  The runner takes one program exported by
Optimum-ExecuTorch (methods ``encoder`` and ``text_decoder``, harness/zoo/whisper_upstream.py), a preprocessor
program (raw samples -> log-mel), a Hugging Face ``tokenizer.json``, and one WAV file
(``load_wav_audio_data``: anything else is "WAV header not detected").  The flag's help asks for the
tokenizer's folder, but ``HFTokenizer::load`` (pytorch/tokenizers src/hf_tokenizer.cpp) takes the file as
well; from the file alone its EOS is found by name, ``<|endoftext|>`` (50256), the id the folder's
``special_tokens_map.json`` would name, so the harness pushes the one file.  It prints the text of every token it
generates on stdout as it goes, special tokens included (``<|startoftranscript|>``, ``<|endoftext|>``:
the tokenizer's ``decode(prev, cur)`` does not skip them), then a ``PyTorchObserver`` line (every release); a
build with ``--benchmark`` also logs its timings through ET_LOG (logcat or stderr).  The binary's ``--help``
decides whether ``--benchmark`` is passed (:func:`wants_benchmark`)::

    Model load time: 412.10 ms (0.41 seconds)
    Inference time: 388.20 ms (0.39 seconds)
    Generated tokens: 14
    Tokens per second: 36.06

main.cpp starts every transcript from token 50258, ``<|startoftranscript|>`` in multilingual vocabularies
but ``<|en|>`` in English-only ones (tiny.en, base.en ...).  When the bundle's own
``decoder_start_token_id`` (recorded in its manifest) differs, the cell runs as the phone would and says so.

Builds and audio are pushed content-addressed, so a corpus crosses the cable once;
the transcripts are scored on the host like every other transcription cell.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.runners import pytorch_observer
from harness.runners.base import (Measurement, RunnerFailure, RunSettings, assumed_flags_note, help_answer,
                                  push_companion, push_corpus_audio, run_et_binary, with_kernel_peak)
from harness.runners.executor_runner import push_tool
from harness.runners.qnn_executor_runner import push_libraries_for

NAME = "android-whisper-runner"
TOOL = "whisper_runner"  # what `harness parse` calls this runner's output
TASK = "transcribe"

_LOAD = re.compile(r"Model load time: ([\d.]+) ms")
_INFERENCE = re.compile(r"Inference time: ([\d.]+) ms")
_TOKENS = re.compile(r"Generated tokens: (\d+)")
_SPECIAL = re.compile(r"<\|[^|]*\|>")
_UNDECODABLE = "Tokenizer failed to decode token pair"
RUNNER_START_TOKEN = 50258  # main.cpp: config.decoder_start_token_id = 50258


def build_command(runner: str, model: str, tokenizer: str, processor: str, audio: str,
                  benchmark: bool = True) -> list[str]:
    """``benchmark``: whether this binary has ``--benchmark`` (gflags exits 1 on a flag it does not know)."""
    argv = [runner, "--model_path", model, "--tokenizer_path", tokenizer, "--processor_path", processor,
            "--audio_path", audio, "--temperature", "0"]
    return argv + ["--benchmark"] if benchmark else argv


def parse(text: str) -> Measurement:
    """One invocation's output -> its one sample (the transcription's inference time), load time and tokens.

    Takes the ``--benchmark`` lines, or a ``PyTorchObserver`` stats line from runners that print one.
    """
    load, inference, tokens = _LOAD.search(text), _INFERENCE.search(text), _TOKENS.search(text)
    if inference is not None:
        return Measurement(samples_ms=[float(inference.group(1))], load_ms=float(load.group(1)) if load else None,
                           extra={"tokens": int(tokens.group(1))} if tokens else {})
    try:
        stats = pytorch_observer.parse(text)
    except ValueError:
        raise ValueError("no 'Inference time: ... ms' line (was --benchmark given?) and no PyTorchObserver line") from None
    return Measurement(samples_ms=[stats.total_ms], load_ms=stats.load_ms, extra={"tokens": stats.generated_tokens})


def supports(platform: str, artifact) -> bool:
    return platform == "android" and artifact.format == "pte" and artifact.stage == "asr"


def transcribe(device, argv: list[str], timeout_s: float, what: str,
               env: dict[str, str] | None = None) -> tuple[Measurement, str]:
    """One invocation: its timings and the transcript (stdout without the stats line).  ``env``: the loader
    paths of a qnn bundle's libraries (PushedChain.env)."""
    said = run_et_binary(device, argv, timeout_s, what, env=env)
    try:
        timing = parse(said.text)
    except ValueError as exc:
        raise RunnerFailure("failed", f"could not read the Whisper runner's timings ({exc})", said.log()) from None
    timing.extra["undecodable_tokens"] = said.text.count(_UNDECODABLE)
    return with_kernel_peak(timing, said.result), transcript_of(said.result.stdout)


def transcript_of(stdout: str) -> str:
    """The words of the runner's stdout: without the stats line and the special tokens it prints verbatim."""
    lines = [line for line in stdout.splitlines() if "PyTorchObserver" not in line]
    return " ".join(_SPECIAL.sub(" ", " ".join(lines)).split())


@dataclass
class PushedChain:
    """A bundle, its companions and the corpus audio on the phone, ready to transcribe utterance by utterance."""

    argv: Callable[[str], list[str]]           # utterance id -> the runner's command line
    audio: dict[str, tuple[str, float]]        # utterance id -> (WAV on the phone, seconds)
    utterances: list
    env: dict[str, str] | None = None          # a qnn bundle: where the phone's loader and DSP find its libraries
    notes: tuple[str, ...] = ()                # for the cell's log: what was assumed when --help told no flags


RELEASE_FLAGS = "the releases v1.1.0-v1.4.0 (no --benchmark)"  # what wants_benchmark assumes without a --help


def wants_benchmark(flags: set[str] | None) -> bool:
    """``--benchmark`` only where the binary's --help lists it: no release (v1.1.0-v1.4.0) defines it, only a build
    of the unmerged commit c26a4e38fd does, and gflags exits 1 on a flag it does not know.  When --help could not
    be read (None), the releases' way: no flag, and the PyTorchObserver line they all print."""
    return flags is not None and "benchmark" in flags


def benchmark_flag(device, runner: str, timeout_s: float) -> tuple[bool, tuple[str, ...]]:
    """Whether to pass ``--benchmark`` (:func:`wants_benchmark`), and the line for each cell's log when the binary's
    --help told no flags (hung, crashed)."""
    answer = help_answer(device, runner, timeout_s)
    notes = (assumed_flags_note(TOOL, answer, RELEASE_FLAGS),) if answer.flags is None else ()
    return wants_benchmark(answer.flags), notes


def push_chain(device, chain, settings: RunSettings) -> PushedChain:
    """Push the runner, the bundle, its processor and tokenizer, the audio and (for a qnn bundle) the QNN libraries;
    ask the binary which flags it has."""
    from harness.accuracy.corpus import read_manifest

    model = chain.parts["model"]
    runner = push_tool(device, "whisper_runner")
    env = push_libraries_for(device, model)  # without them the phone's loader refuses a qnn bundle
    remote = {"model": device.push(model.path, model.sha256),
              "processor": push_companion(device, model, "processor"),
              "tokenizer": push_companion(device, model, "tokenizer")}
    corpus = read_manifest(chain.corpus)
    utterances = corpus.utterances[: chain.limit or None]
    with tempfile.TemporaryDirectory() as scratch:
        audio = push_corpus_audio(device, corpus, utterances, Path(scratch), wav=True)
    benchmark, notes = benchmark_flag(device, runner, settings.timeout_s)

    def argv(utt_id: str) -> list[str]:
        return build_command(runner, remote["model"], remote["tokenizer"], remote["processor"], audio[utt_id][0],
                             benchmark)
    return PushedChain(argv, audio, utterances, env, notes)


def measure_chain(device, chain, settings: RunSettings) -> Measurement:
    """Push the bundle, its companions and the audio; transcribe each utterance; one sample per utterance."""
    pushed = push_chain(device, chain, settings)
    utterances, audio = pushed.utterances, pushed.audio
    warmups = [transcribe(device, pushed.argv(utterances[0].id), settings.timeout_s, "whisper runner (warm-up)",
                          pushed.env)[0]
               for _ in range(min(settings.warmup_iterations, 1))]  # one warm-up utterance, not recorded
    records, loads, peaks = [], [], []
    for utt in utterances:
        timing, text = transcribe(device, pushed.argv(utt.id), settings.timeout_s, f"whisper runner on {utt.id}",
                                  pushed.env)
        loads.append(timing.load_ms)
        peaks += [timing.peak_rss_mb] if timing.peak_rss_mb is not None else []
        records.append(asr_record(utt, text, timing, audio[utt.id][1]))
    loads = [l for l in loads if l is not None]
    return Measurement(samples_ms=[r["total_ms"] for r in records], transcripts=records,
                       warmup_ms=[w.samples_ms[0] for w in warmups],
                       load_ms=statistics.median(loads) if loads else None, peak_rss_mb=max(peaks, default=None),
                       extra={"utterances": len(records)},
                       notes=["samples are the runner's own 'Inference time' per utterance (encoder + decoding); "
                              "the preprocessor's log-mel and the model load are outside it",
                              *start_token_notes(chain.parts["model"], records), *pushed.notes])


def start_token_notes(model, records: list[dict]) -> list[str]:
    """What the cell must say when main.cpp's hard-coded first token is not the bundle's own."""
    start = (model.recipe or {}).get("decoder_start_token_id")
    if start is None or start == RUNNER_START_TOKEN:
        return []
    undecodable = sum(r.get("undecodable_tokens", 0) for r in records)
    return [f"this bundle starts decoding at token {start} (its decoder_start_token_id) but whisper_runner "
            f"always starts at {RUNNER_START_TOKEN} (examples/models/whisper/main.cpp), <|startoftranscript|> only "
            f"in multilingual vocabularies: an English-only model hears <|en|> first. The transcripts and times "
            f"are the runner's as it stands ({undecodable} generated tokens the tokenizer could not decode); "
            f"a multilingual model, or a runner built with the bundle's start token, measures the model itself"]


def asr_record(utt, text: str, timing: Measurement, audio_s: float) -> dict:
    """The stored transcript row of one utterance (the runner times encoder and decoding together)."""
    inference_ms = timing.samples_ms[0]
    return {"id": utt.id, "reference": utt.text, "hypothesis": text, "tokens": timing.extra.get("tokens") or 0,
            "undecodable_tokens": timing.extra.get("undecodable_tokens", 0),
            "mel_ms": None, "encoder_ms": None, "decoder_ms_per_token": None, "total_ms": inference_ms,
            "audio_s": audio_s, "rtf": inference_ms / 1000 / audio_s if audio_s else None}
