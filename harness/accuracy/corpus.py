"""Speech corpora: one JSON Lines manifest per corpus, one utterance a line.

Each line: ``{"id", "audio" (relative to the manifest), "text", "duration_s", "speaker"?}``.
Audio is 16 kHz mono WAV or FLAC.  :func:`check_corpus` finds everything that would
spoil a WER figure (missing or unreadable audio, wrong rate or channels, empty
references, duplicate ids, paths outside the corpus folder) before any decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, ValidationError

from harness.errors import UserError
from harness.jsontext import load_json
from harness.textfile import read_utf8
from harness.validation import DurationSeconds
from harness.yamlconf import PathText, StrictModel, format_loc

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = (".wav", ".flac")


class Utterance(StrictModel):
    id: str = Field(min_length=1)
    audio: PathText = Field(min_length=1)
    text: str
    duration_s: DurationSeconds
    speaker: str | None = None


@dataclass(frozen=True)
class Corpus:
    manifest: Path
    utterances: list[Utterance]

    @property
    def root(self) -> Path:
        return self.manifest.parent

    @property
    def name(self) -> str:
        return self.root.name

    def audio_path(self, utt: Utterance) -> Path:
        return self.root / utt.audio

    def load_audio(self, utt: Utterance) -> np.ndarray:
        """Mono float32 samples at 16 kHz."""
        import soundfile as sf

        data, rate = sf.read(self.audio_path(utt), dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE or data.shape[1] != 1:
            raise UserError(f"{utt.id}: audio is {rate} Hz with {data.shape[1]} channels; 16 kHz mono is needed.",
                            path=self.audio_path(utt), fix="run 'harness corpus check' and convert the audio.")
        return data[:, 0]


def read_manifest(manifest: Path) -> Corpus:
    """Parse a manifest; a bad line fails with its line number."""
    if manifest.is_dir():
        manifest = manifest / "manifest.jsonl"
    if not manifest.is_file():
        raise UserError("corpus manifest not found.", path=manifest,
                        fix="pass a corpus folder holding manifest.jsonl, or the manifest itself.")
    lines = read_utf8(manifest).split("\n")  # not splitlines(): U+2028 inside a JSON string is not a line break
    utterances = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            utterances.append(Utterance.model_validate(load_json(line, manifest, first_line=number)))
        except ValidationError as exc:
            err = exc.errors()[0]
            fix = (f"correct {format_loc(err['loc'])} on that line." if err["type"] == "value_error" else
                   "each line needs id, audio, text and duration_s (speaker is optional).")
            raise UserError(f"{format_loc(err['loc'])}: {err['msg']}.", path=manifest, line=number, fix=fix) from None
    if not utterances:
        raise UserError("the manifest holds no utterances.", path=manifest)
    return Corpus(manifest=manifest, utterances=utterances)


@dataclass(frozen=True)
class Problem:
    line: int
    utterance_id: str
    message: str
    # Scoreable but suspect (silent, clipped, noise): a corpus may hold them on purpose, e.g. silence to count
    # a recogniser's hallucinations, so they are reported, not refused.
    warning: bool = False


@dataclass(frozen=True)
class Suspect:
    """Audio that decodes and can be scored, but is probably not what its transcript says."""

    message: str


def check_corpus(corpus: Corpus, with_warnings: bool = False) -> list[Problem]:
    """Every problem in a corpus, one per utterance at most (the first found); suspect audio too with
    ``with_warnings``."""
    problems, seen = [], {}
    root = corpus.root.resolve()
    for line, utt in enumerate(corpus.utterances, start=1):
        def bad(message: str) -> None:
            problems.append(Problem(line, utt.id, message))

        if utt.id in seen:
            bad(f"duplicate id (first on line {seen[utt.id]})")
            continue
        seen[utt.id] = line
        path = (corpus.root / utt.audio).resolve()
        if not path.is_relative_to(root):
            bad(f"audio path '{utt.audio}' leaves the corpus folder; paths must stay inside it")
            continue
        if not utt.text.strip():
            bad("empty reference text (WER is undefined for it; remove the line or give its text)")
            continue
        problem = _words_problem(utt.text) or _audio_problem(utt, path)
        if isinstance(problem, Suspect):
            if with_warnings:
                problems.append(Problem(line, utt.id, problem.message, warning=True))
        elif problem:
            bad(problem)
    return problems


# What audio must look like to be scored: thresholds chosen so both shipped corpora pass with a wide margin
# (their quietest file peaks at 0.24, noisiest spectrum is 0.19 flat, at most 0.005 % of samples at full scale).
SILENT_PEAK = 10 ** (-60 / 20)  # -60 dBFS: nothing a recogniser could hear
NOISE_FLATNESS = 0.5  # spectral flatness of the whole file: white noise is ~1, speech ~0.05-0.2
CLIPPED_FRACTION = 0.01  # share of samples at full scale
DURATION_TOLERANCE_S = 0.1


def _words_problem(text: str) -> str | None:
    from harness.accuracy.wer import normalize

    if not any(ch.isalnum() for ch in normalize(text)):  # the normaliser keeps a lone '.' of "..."
        return f"reference text '{text.strip()[:40]}' has no words once normalised (WER is undefined for it)"
    return None


def _audio_problem(utt: Utterance, path: Path) -> str | Suspect | None:
    """What is wrong with an utterance's audio file (None when it is fit to be scored)."""
    import soundfile as sf

    suffix = path.suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        return f"audio '{utt.audio}' is not WAV or FLAC"
    if not path.is_file():  # checked before libsndfile opens it: a FIFO would block the open forever
        return f"audio '{utt.audio}' is not a regular file" if path.exists() else f"audio file '{utt.audio}' is missing"
    try:
        info = sf.info(str(path))
        if info.samplerate == SAMPLE_RATE and info.channels == 1:
            samples, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile's errors are all "cannot read"
        return f"audio '{utt.audio}' cannot be read ({' '.join(str(exc).split())})"
    container = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac"}.get(info.format)
    if container != suffix:
        return f"audio '{utt.audio}' is {info.format} inside, not what its name says; rename or convert it"
    if info.samplerate != SAMPLE_RATE:
        return f"audio '{utt.audio}' is {info.samplerate} Hz; 16000 Hz is needed"
    if info.channels != 1:
        return f"audio '{utt.audio}' has {info.channels} channels; mono is needed"
    return signal_problem(samples[:, 0], utt.duration_s, utt.audio)


def signal_problem(samples: np.ndarray, duration_s: float, name: str) -> str | Suspect | None:
    """Audio that decodes but cannot be what its transcript says (empty, NaN, another length than the manifest
    gives), or probably is not (silent, clipped, noise: a Suspect)."""
    if samples.size == 0:
        return f"audio '{name}' holds no samples"
    if not np.isfinite(samples).all():
        return f"audio '{name}' holds NaN or infinite samples"
    actual_s = samples.size / SAMPLE_RATE
    if abs(actual_s - duration_s) > DURATION_TOLERANCE_S:
        return (f"duration_s is {duration_s:g} but audio '{name}' lasts {actual_s:.3f} s; correct duration_s "
                "(or the audio is not the one meant)")
    peak = float(np.abs(samples).max())
    if peak < SILENT_PEAK:
        return Suspect(f"audio '{name}' is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
    clipped = float(np.mean(np.abs(samples) >= 0.999))
    if clipped > CLIPPED_FRACTION:
        return Suspect(f"audio '{name}' is clipped ({clipped:.0%} of its samples at full scale)")
    flatness = spectral_flatness(samples)
    if flatness is not None and flatness > NOISE_FLATNESS:
        return Suspect(f"audio '{name}' sounds like noise, not speech (spectral flatness {flatness:.2f})")
    return None


def spectral_flatness(samples: np.ndarray, frame: int = 512) -> float | None:
    """Geometric over arithmetic mean of the file's average power spectrum; None for under one frame."""
    frames = samples.size // frame
    if frames < 1:
        return None
    windowed = samples[:frames * frame].reshape(frames, frame).astype(np.float64) * np.hanning(frame)
    power = (np.abs(np.fft.rfft(windowed, axis=1)) ** 2).mean(axis=0)[1:] + 1e-20
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


def load_checked(path: Path) -> Corpus:
    """Read a corpus and refuse it (exit 2) when any utterance has a problem."""
    corpus = read_manifest(path)
    found = check_corpus(corpus, with_warnings=True)
    problems = [p for p in found if not p.warning]
    if problems:
        first = problems[0]
        more = f" ({len(problems) - 1} more; see 'harness corpus check {path}')" if len(problems) > 1 else ""
        raise UserError(f"utterance '{first.utterance_id}': {first.message}{more}.", path=corpus.manifest,
                        line=first.line, fix="correct the manifest or the audio.")
    if found:  # scored all the same, but not silently
        import sys

        from harness.termsafe import term_safe

        print(term_safe(f"warning: {corpus.manifest}:{found[0].line}: {found[0].message}"
                        + (f" ({len(found) - 1} more)" if len(found) > 1 else "")
                        + f"; 'harness corpus check {path}' lists them"), file=sys.stderr)
    return corpus


def write_manifest(root: Path, utterances: list[Utterance]) -> Path:
    from harness.outfile import write_text

    return write_text(root / "manifest.jsonl", "".join(json.dumps(u.model_dump(exclude_none=True), ensure_ascii=False)
                                                       + "\n" for u in utterances))
