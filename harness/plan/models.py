"""The plan file's model."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from harness.vocab import HtpPerformanceMode
from harness.validation import (Celsius, Count, Int, Megabytes, Milliseconds, PeriodSeconds, PositiveCount, Seconds,
                                Seed, Threads)
from harness.yamlconf import LocalPath, PathText, StrictModel, load_data, validate


DEFAULT_RUNS = 6


def _each_once(ids: list[str]) -> list[str]:
    """A device listed twice would be measured twice into one cell of the run: refused at plan load."""
    twice = sorted({d for d in ids if ids.count(d) > 1})
    if twice:
        raise ValueError(f"{', '.join(twice)} listed more than once; list each device once")
    return ids


DeviceIds = Annotated[list[str], AfterValidator(_each_once)]


class Cooldown(StrictModel):
    """Wait before each cell until the hottest CPU sensor is below ``max_temp_c``."""

    max_temp_c: Celsius = Field(45.0, description="Start a cell once the hottest CPU sensor is below this (°C).")
    timeout_s: Seconds = Field(300.0, description="The longest to wait for the phone to cool (seconds); past it "
                                                  "the cell goes ahead and the wait's outcome is recorded.")
    poll_s: PeriodSeconds = Field(2.0, description="How often to read the temperature while waiting (seconds).")


class Budgets(StrictModel):
    """P95 latency budgets in ms.  ``asr`` covers mel + encoder + decoder together."""

    vad: Milliseconds | None = Field(10.0, description="P95 latency budget of a VAD build (ms); null: none.")
    asr: Milliseconds | None = Field(150.0, description="P95 latency budget of ASR, mel + encoder + decoder "
                                                        "together (ms); null: none.")
    llm_npu: Milliseconds | None = Field(200.0, description="P95 latency budget of an LLM on the NPU (ms); "
                                                            "null: none.")
    llm_cpu: Milliseconds | None = Field(500.0, description="P95 latency budget of an LLM on the CPU (ms); "
                                                            "null: none.")
    pipeline: Milliseconds | None = Field(350.0, description="P95 budget per utterance of a voice pipeline: VAD + "
                                                             "ASR + the LLM's next-word latency (ms); null: none.")
    pipeline_memory_mb: Megabytes | None = Field(1024.0, description="Budget of a pipeline's peak resident memory "
                                                                     "with every stage loaded (MB); null: none.")


# The stage (the manifest's 'stage') each role of a chain takes: an encoder must be an encoder build, etc.
ROLE_STAGES = {"mel": "mel", "encoder": "asr-encoder", "decoder": "asr-decoder", "model": "asr", "vad": "vad",
               "llm": "llm"}


class Chain(StrictModel):
    """An ASR build to transcribe with (paths relative to the plan), in one of two forms.

    * ``mel`` + ``encoder`` + ``decoder``: three separate builds (log-mel -> encoder -> decoder step).
    * ``model``: one bundled program with ``encoder`` and ``text_decoder`` methods, as ExecuTorch's
      Whisper runner takes it; its manifest names the ``processor`` and ``tokenizer`` companions.

    With ``vad`` and ``llm`` as well, the chain is a voice pipeline: per utterance, the VAD finds the
    speech, the ASR transcribes only that, and the LLM predicts the next words from the transcript;
    each stage's time and their total are stored per utterance.
    """

    name: str = Field(min_length=1, description="The chain's name, as reports show it.")
    mel: PathText | None = Field(None, description="The log-mel build (path relative to the plan); with "
                                                   "encoder and decoder.")
    encoder: PathText | None = Field(None, description="The ASR encoder build (path relative to the plan).")
    decoder: PathText | None = Field(None, description="The ASR decoder-step build (path relative to the plan).")
    model: PathText | None = Field(None, description="One bundled ASR build instead of mel + encoder + decoder "
                                                     "(path relative to the plan).")
    vad: PathText | None = Field(None, description="A Silero VAD build (.onnx, path relative to the plan); with "
                                                   "llm, makes the chain a voice pipeline.")
    llm: PathText | None = Field(None, description="An LLM build (.pte with a tokenizer companion, path relative "
                                                   "to the plan); with vad, makes the chain a voice pipeline.")

    @model_validator(mode="after")
    def _one_form(self) -> "Chain":
        split = [self.mel, self.encoder, self.decoder]
        if self.model is not None and any(split):
            raise ValueError("give either 'model' (a bundled build) or 'mel', 'encoder' and 'decoder', not both")
        if self.model is None and not all(split):
            raise ValueError("give 'mel', 'encoder' and 'decoder' (three builds) or 'model' (one bundled build)")
        if (self.vad is None) != (self.llm is None):
            raise ValueError("a pipeline needs both 'vad' and 'llm' (or neither, for ASR alone)")
        return self

    @property
    def is_pipeline(self) -> bool:
        return self.vad is not None

    def roles(self) -> dict[str, str]:
        """Role -> path, for the form given."""
        asr = {"model": self.model} if self.model is not None else {
            "mel": self.mel, "encoder": self.encoder, "decoder": self.decoder}
        return {**asr, **({"vad": self.vad, "llm": self.llm} if self.is_pipeline else {})}


class Accuracy(StrictModel):
    """Transcribe a corpus through each chain on each device; WER is scored from the stored transcripts."""

    corpus: PathText = Field(description="The corpus to transcribe: a folder or manifest of audio with "
                                         "reference transcripts (path relative to the plan).")
    chains: list[Chain] = Field(min_length=1, description="The ASR builds to transcribe with, one chain each.")
    devices: DeviceIds | None = Field(None, description="Inventory ids of the devices to transcribe on; "
                                                        "default: the plan's devices.")
    limit: PositiveCount | None = Field(None, description="Transcribe only the first N utterances of the corpus; "
                                                          "default: all.")


class Llm(StrictModel):
    """How LLM builds are driven: next-word prediction is a short prompt and a few new tokens."""

    prompt: str = Field(default="The weather today is", min_length=1,
                        description="The text an LLM build continues when measured.")
    seq_len: Int = Field(default=16, ge=2, le=4096,
                         description="Prompt + generated tokens, in tokens (llama_main's --seq_len).")


class Plan(StrictModel):
    """What to measure.  Paths are relative to the plan file."""

    name: str = Field(min_length=1, description="The plan's name; runs and reports are filed under it.")
    description: str = Field("", description="Free text shown in reports.")
    inventory: LocalPath | None = Field(None, description="The inventory (devices.yaml) to use, relative to the "
                                                          "plan; default: the project's.")
    devices: DeviceIds = Field(default=["*"], min_length=1,
                               description="Inventory ids of the devices to measure on; \"*\": every device.")
    artifacts: list[PathText] = Field([], description="Model builds to measure (paths relative to the plan; "
                                                      "globs allowed), each with its manifest.")
    warmup_iterations: Count = Field(default=5, le=100_000,
                                     description="Unmeasured iterations at the start of each run.")
    iterations: PositiveCount = Field(default=30, le=1_000_000, description="Measured iterations per run.")
    # Separate processes (host) or runner invocations (phones) per cell: the noise that decides whether
    # tomorrow looks like today lives between processes, not between iterations of one process.
    runs: PositiveCount = Field(default=DEFAULT_RUNS, le=1000,
                                description="Separate processes (host) or runner invocations (phones) per cell.")
    # Per cell, after its measured runs: separate runs with the runtime's operator profiler on (host builds), so
    # the report can say which operators the time went to; their overhead never touches the latency samples.
    # 0 turns profiling off.
    profile_runs: Count = Field(default=1, le=100, description="Extra runs per cell with the operator profiler "
                                                               "on (host builds); 0 turns profiling off.")
    threads: Threads | None = Field(None, description="CPU threads the runtime may use; default: the runtime's "
                                                      "own choice.")
    timeout_s: Seconds = Field(600.0, description="The longest one runner invocation may take (seconds); past it, "
                                                  "it is killed and the cell fails.")
    cooldown: Cooldown | None = Field(None, description="Wait before each cell until the device has cooled; "
                                                        "default: no waiting.")
    thermal_period_s: PeriodSeconds = Field(1.0, description="How often temperatures are sampled during a cell "
                                                             "(seconds).")
    budgets_p95_ms: Budgets = Field(Budgets(), description="P95 latency budgets per kind of build (ms); a cell "
                                                           "over its budget is flagged.")
    accuracy: Accuracy | None = Field(None, description="Transcribe a corpus and score its word error rate.")
    llm: Llm = Field(Llm(), description="How LLM builds are driven.")
    seed: Seed = Field(0, description="Seed of the random inputs, so runs compare.")
    # One power mode for both QNN paths (qnn_executor_runner and ONNX Runtime's QNN EP), so their cells compare;
    # burst is the exporter's default. Recorded in each QNN cell's settings: a change is "not comparable".
    htp_performance_mode: HtpPerformanceMode = Field("burst", description="The Hexagon NPU's power mode for "
                                                                         "both QNN paths.")

    @model_validator(mode="after")
    def _something_to_do(self) -> "Plan":
        if not self.artifacts and self.accuracy is None:
            raise ValueError("the plan measures nothing: give 'artifacts', an 'accuracy' section, or both")
        return self


def _refuse_folder(path: Path) -> None:
    """A folder given as the plan (a lab's folder, say) is answered with the YAML files inside it."""
    from shlex import quote

    from harness.errors import UserError

    if not path.is_dir():
        return
    inside = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    shown = ", ".join(quote(str(p)) for p in inside[:5]) + (", ..." if len(inside) > 5 else "")
    raise UserError("this is a folder, not a plan file.", path=path,
                    fix=f"give the plan's YAML file instead; the YAML files in this folder: {shown}." if inside else
                        "give the plan's YAML file instead (this folder holds none; see plans/host-demo.yaml).")


def load_plan(path: Path) -> tuple[Plan, str, dict]:
    """Read and validate a plan; return it with its text's sha256 and its line map."""
    from harness.errors import UserError

    _refuse_folder(path)
    data, lines = load_data(path)
    if data is None:
        raise UserError("the plan is empty.", path=path, fix="see plans/host-demo.yaml for an example.")
    plan = validate(Plan, data, path, lines)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return plan, digest, lines
