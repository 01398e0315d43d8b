"""The voice pipeline on an Android phone, per utterance: three runner invocations, one per stage.

Upstream ships no single program that runs Silero VAD, Whisper and an LLM together, so each utterance
goes through the phone's own benchmark binaries one after another, and each stage's time is what that
binary reports:

* **VAD**: ``onnxruntime_perf_test`` on the Silero VAD build with ``-r W``, W the utterance's 512-sample
  windows (as silero-vad's wrapper steps through a clip; harness/models/vad.py), fed the build's manifest
  inputs as test data (a 576-sample window, a zero state, 16 kHz). Its "Total inference time cost" is
  W window inferences, the work of listening to that clip (the same window each time, not the clip's
  samples: the VAD's cost does not depend on them).  It runs on the provider the VAD build's backend names,
  as a latency cell of it would (an ``ort-qnn`` VAD on the NPU through the QNN EP, CPU fallback disabled, so it
  is measured there or fails: onnxruntime_perf_test.PerfTestOnPhone).
* **ASR**: ExecuTorch's ``whisper_runner`` on the utterance's WAV (harness/runners/whisper_runner.py):
  the transcript, and the runner's inference time (encoder + decoding).
* **LLM**: ``llama_main`` with the transcript as ``--prompt`` (harness/runners/llama_main.py): its
  ``PyTorchObserver`` time to first token, the next-word latency.

A ``qnn`` part (the Whisper bundle, the LLM) gets what qnn_executor_runner gets: the QNN SDK's libraries and
ExecuTorch's QNN backend library pushed, and LD_LIBRARY_PATH / ADSP_LIBRARY_PATH set for its runner.

The utterance's pipeline time is the sum of the three. Model loads happen in every invocation and are
kept apart (medians per stage), as an app would load once. Differences from the host pipeline
(host_transcribe_worker), stated in the cell's notes: neither binary reports the VAD's decisions, so
Whisper hears the whole clip rather than the speech the VAD found (it pads to 30 s either way).

Peak memory: each stage's process peak as the phone's kernel accounted it (toybox ``time -v``,
harness/devices/peak_memory.py), the highest over utterances; the pipeline's is their sum, what an app holding
all three models at once would need (each binary's own runtime counted once per stage: an upper bound).
"""

from __future__ import annotations

import statistics

from harness.models.vad import SAMPLE_RATE, VAD_WINDOW
from harness.runners import llama_main, onnxruntime_perf_test, qnn_executor_runner, whisper_runner
from harness.runners.base import Measurement, RunnerFailure, RunSettings, push_companion, with_kernel_peak
from harness.runners.executor_runner import push_tool

NAME = "android-pipeline"
TOOL = "android_pipeline"  # `harness parse` reads one stage's log with that stage's own tool
TASK = "pipeline"


def parse(text: str) -> Measurement:
    """A pipeline has no single output: each stage's is read by its own runner's parser."""
    raise ValueError("the Android pipeline has no output of its own: parse each stage's log with "
                     "onnxruntime_perf_test, whisper_runner or llama_main")


def supports(platform: str, artifact) -> bool:
    return platform == "android" and artifact.format == "pte" and artifact.stage == "asr"


def vad_windows(audio_s: float) -> int:
    """How many 512-sample windows silero-vad's wrapper steps through in a clip (at least one)."""
    return max(1, (int(round(audio_s * SAMPLE_RATE)) - VAD_WINDOW) // VAD_WINDOW + 1)


class _Stages:
    """The three binaries and their builds, pushed once; one call per stage and utterance."""

    def __init__(self, device, chain, settings: RunSettings) -> None:
        self.device, self.settings = device, settings
        vad, llm = chain.parts["vad"], chain.parts["llm"]
        if not onnxruntime_perf_test.supports("android", vad) or llm.format != "pte":  # before anything is pushed
            raise RunnerFailure("failed", "an Android pipeline takes an ONNX VAD on an ONNX Runtime backend "
                                          "(onnxruntime_perf_test) and a .pte LLM (llama_main); this VAD is "
                                          f"{vad.format} on {vad.backend}")
        self.asr = whisper_runner.push_chain(device, chain, settings)
        # The VAD runs on the provider its backend names (an ort-qnn VAD on the NPU, CPU fallback disabled).
        self.vad_tool = onnxruntime_perf_test.push_perf_test(device, vad.backend)
        self.vad_path = device.push(vad.path, vad.sha256)
        self.vad_test_data = onnxruntime_perf_test.stage_test_data(device, self.vad_path, vad)
        self.llama = push_tool(device, "llama_main")
        self.llm_path = device.push(llm.path, llm.sha256)
        self.llm_env = qnn_executor_runner.push_libraries_for(device, llm)
        self.tokenizer = push_companion(device, llm, "tokenizer")

    def listen(self, audio_s: float) -> Measurement:
        argv = self.vad_tool.command(self.vad_path, vad_windows(audio_s), self.settings, self.vad_test_data)
        result = self.vad_tool.run(self.device, argv, self.settings.timeout_s)
        try:
            measured = with_kernel_peak(onnxruntime_perf_test.parse(result.stdout), result)
        except ValueError as exc:
            raise RunnerFailure("failed", f"could not read onnxruntime_perf_test's summary ({exc})", result.log()) from None
        if "total_ms" not in measured.extra:
            raise RunnerFailure("failed", "onnxruntime_perf_test printed no 'Total inference time cost'", result.log())
        return measured

    def next_words(self, prompt: str) -> tuple[Measurement, str]:
        argv = llama_main.build_command(self.llama, self.llm_path, self.tokenizer, prompt, self.settings.llm_seq_len,
                                        self.settings.threads)
        measured, text = llama_main.generate(self.device, argv, self.settings, "llama_main (pipeline)",
                                             env=self.llm_env)
        text = text.strip()
        return measured, text[len(prompt):].strip() if text.startswith(prompt) else text

    def utterance(self, utt) -> tuple[dict, dict[str, float | None], dict[str, float | None]]:
        """One utterance through the three stages: its stored row, the stages' load times and peak memory."""
        audio_s = self.asr.audio[utt.id][1]
        vad = self.listen(audio_s)
        timing, text = whisper_runner.transcribe(self.device, self.asr.argv(utt.id), self.settings.timeout_s,
                                                 f"whisper runner on {utt.id}", self.asr.env)
        record = whisper_runner.asr_record(utt, text, timing, audio_s)
        llm, continuation = self.next_words(text) if text else (None, "")
        vad_ms, llm_ms = vad.extra["total_ms"], llm.samples_ms[0] if llm else None
        record.update(vad_ms=vad_ms, speech_s=audio_s, llm_ms=llm_ms, continuation=continuation,
                      pipeline_ms=vad_ms + record["total_ms"] + (llm_ms or 0.0))
        loads = {"vad": vad.load_ms, "asr": timing.load_ms, "llm": llm.load_ms if llm else None}
        peaks = {"vad": vad.peak_rss_mb, "asr": timing.peak_rss_mb, "llm": llm.peak_rss_mb if llm else None}
        return record, loads, peaks


def measure_chain(device, chain, settings: RunSettings) -> Measurement:
    """Push everything once, warm up on the first utterance (not recorded), then each utterance's three stages."""
    stages = _Stages(device, chain, settings)
    utterances = stages.asr.utterances
    warmups = [stages.utterance(utterances[0])[0]["pipeline_ms"] for _ in range(min(settings.warmup_iterations, 1))]
    records, loads, peaks = [], {"vad": [], "asr": [], "llm": []}, {"vad": [], "asr": [], "llm": []}
    for utt in utterances:
        record, load, peak = stages.utterance(utt)
        records.append(record)
        for figures, measured in ((loads, load), (peaks, peak)):
            for stage, value in measured.items():
                if value is not None:
                    figures[stage].append(value)
    load_ms = {f"load_ms_{stage}": statistics.median(values) for stage, values in loads.items() if values}
    peak_mb = {f"peak_rss_mb_{stage}": max(values) for stage, values in peaks.items() if values}
    return Measurement(
        samples_ms=[r["pipeline_ms"] for r in records], transcripts=records, warmup_ms=warmups,
        load_ms=sum(load_ms.values()) if len(load_ms) == 3 else None,
        peak_rss_mb=sum(peak_mb.values()) if len(peak_mb) == 3 else None,
        extra={"utterances": len(records), **load_ms, **peak_mb},
        notes=["samples are each utterance's VAD + ASR + LLM time, three runner invocations on the phone: "
               f"onnxruntime_perf_test over the clip's VAD windows (-e {stages.vad_tool.provider}), "
               "whisper_runner's inference time, "
               "llama_main's time to first token; model loads are outside them (medians per stage in extra)",
               "Whisper hears the whole clip (no binary reports the VAD's decisions)",
               "peak memory is the sum of the three stages' peaks (each the highest over utterances, from the "
               "phone's kernel), what an app holding all three models would need; per stage in extra"
               if len(peak_mb) == 3 else "no peak memory: the phone did not report every stage's",
               *whisper_runner.start_token_notes(chain.parts["model"], records), *stages.asr.notes])
