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
from harness.textfile import read_utf8
from harness.validation import DurationSeconds
from harness.yamlconf import StrictModel, format_loc

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = (".wav", ".flac")


class Utterance(StrictModel):
    id: str = Field(min_length=1)
    audio: str = Field(min_length=1)
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
            utterances.append(Utterance.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UserError(f"not valid JSON: {exc.msg}.", path=manifest, line=number,
                            fix="one JSON object per line.") from None
        except RecursionError:
            raise UserError("JSON nested too deeply.", path=manifest, line=number,
                            fix="one flat JSON object per line.") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UserError(f"{format_loc(err['loc'])}: {err['msg']}.", path=manifest, line=number,
                            fix="each line needs id, audio, text and duration_s (speaker is optional).") from None
    if not utterances:
        raise UserError("the manifest holds no utterances.", path=manifest)
    return Corpus(manifest=manifest, utterances=utterances)


@dataclass(frozen=True)
class Problem:
    line: int
    utterance_id: str
    message: str


def check_corpus(corpus: Corpus) -> list[Problem]:
    """Every problem in a corpus, one per utterance at most (the first found)."""
    import soundfile as sf

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
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            bad(f"audio '{utt.audio}' is not WAV or FLAC")
            continue
        if not path.is_file():
            bad(f"audio file '{utt.audio}' is missing")
            continue
        try:
            info = sf.info(str(path))
        except Exception as exc:  # noqa: BLE001 - libsndfile's errors are all "cannot read"
            bad(f"audio '{utt.audio}' cannot be read ({exc})")
            continue
        if info.samplerate != SAMPLE_RATE:
            bad(f"audio '{utt.audio}' is {info.samplerate} Hz; 16000 Hz is needed")
        elif info.channels != 1:
            bad(f"audio '{utt.audio}' has {info.channels} channels; mono is needed")
    return problems


def load_checked(path: Path) -> Corpus:
    """Read a corpus and refuse it (exit 2) when any utterance has a problem."""
    corpus = read_manifest(path)
    problems = check_corpus(corpus)
    if problems:
        first = problems[0]
        more = f" ({len(problems) - 1} more; see 'harness corpus check {path}')" if len(problems) > 1 else ""
        raise UserError(f"utterance '{first.utterance_id}': {first.message}{more}.", path=corpus.manifest,
                        line=first.line, fix="correct the manifest or the audio.")
    return corpus


def write_manifest(root: Path, utterances: list[Utterance]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(u.model_dump(exclude_none=True), ensure_ascii=False) + "\n"
                                for u in utterances), encoding="utf-8")
    return manifest
