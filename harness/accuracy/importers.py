"""Manifests for corpora users already have: LibriSpeech, Kaldi data dirs, NeMo / Hugging Face JSONL.

The importers only write ``manifest.jsonl`` (audio stays where it is, referenced by a
path relative to the manifest); ``harness corpus check`` then vets the result.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from harness.accuracy.corpus import Utterance, write_manifest
from harness.errors import UserError
from harness.jsontext import load_json
from harness.textfile import read_utf8
from harness.yamlconf import format_loc


def _duration(path: Path) -> float:
    import soundfile as sf

    try:
        return round(sf.info(str(path)).duration, 3)
    except Exception:  # noqa: BLE001 - unreadable audio is reported by 'corpus check'
        return 0.0


def _utterance(source: Path, line: int | None, **fields) -> Utterance:
    """An utterance from an imported line; a field the manifest cannot hold names the source line."""
    try:
        return Utterance(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"{format_loc(err['loc'])}: {err['msg']}.", path=source, line=line,
                        fix="correct that line of the source.") from None


def _lines(path: Path) -> list[tuple[int, str]]:
    """The numbered non-blank lines of a UTF-8 text file."""
    return [(number, line) for number, line in enumerate(read_utf8(path).split("\n"), start=1) if line.strip()]


def _rel(path: Path, root: Path, source: Path, line: int) -> str:
    if "\x00" in str(path):  # no file system takes it; Path.resolve() would raise ValueError
        raise UserError("the audio path holds a NUL character.", path=source, line=line,
                        fix="correct that line of the source.")
    # Corpus paths may not leave the corpus folder, so the manifest must sit above its audio.
    if not path.resolve().is_relative_to(root.resolve()):
        raise UserError(f"audio {path} lies outside {root}; a manifest's paths must stay inside its folder.",
                        fix="leave out -o (the manifest is then written beside the source), or give a folder "
                            "that contains the audio.")
    return os.path.relpath(path.resolve(), root.resolve())


def import_librispeech(source: Path, out: Path) -> Path:
    """``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` lines: ``<utt-id> <TEXT>``; audio ``<utt-id>.flac``."""
    transcripts = sorted(source.rglob("*.trans.txt"))
    if not transcripts:
        raise UserError("no *.trans.txt files: not a LibriSpeech layout.", path=source,
                        fix="point at a LibriSpeech subset folder, e.g. LibriSpeech/test-clean.")
    utts = []
    for trans in transcripts:
        for number, line in _lines(trans):
            utt_id, _, text = line.strip().partition(" ")
            audio = trans.parent / f"{utt_id}.flac"
            utts.append(_utterance(trans, number, id=utt_id, audio=_rel(audio, out, trans, number),
                                   text=text.strip(), duration_s=_duration(audio), speaker=utt_id.split("-")[0]))
    return write_manifest(out, utts).parent


def import_kaldi(source: Path, out: Path) -> Path:
    """A Kaldi data dir: ``wav.scp`` (``<utt> <path>``) and ``text`` (``<utt> <words>``), optional ``utt2spk``."""
    def table(name: str, required: bool = True) -> dict[str, str]:
        path = source / name
        if not path.is_file():
            if required:
                raise UserError(f"no {name} in the data dir.", path=source, fix="a Kaldi data dir has wav.scp and text.")
            return {}
        rows = {}
        for number, line in _lines(path):
            key, _, value = line.strip().partition(" ")
            if name == "wav.scp" and value.rstrip().endswith("|"):
                raise UserError("wav.scp entries that are commands (ending in '|') are not supported.",
                                path=path, line=number, fix="extract the audio to files first.")
            if key in rows:  # the second line would silently replace the first
                raise UserError(f"utterance {key} is listed twice (lines {rows[key][0]} and {number}).", path=path,
                                line=number, fix=f"give each utterance one line in {name}; rename or remove one.")
            rows[key] = (number, value.strip())
        return rows

    wavs, texts, speakers = table("wav.scp"), table("text"), table("utt2spk", required=False)
    utts = []
    for utt_id, (number, text) in texts.items():
        if utt_id not in wavs:
            raise UserError(f"utterance {utt_id} is in text but not in wav.scp.", path=source / "text", line=number,
                            fix="give every utterance of text a line in wav.scp.")
        audio = Path(wavs[utt_id][1])
        audio = audio if audio.is_absolute() else source / audio
        audio_rel = _rel(audio, out, source / "wav.scp", wavs[utt_id][0])
        utts.append(_utterance(source / "text", number, id=utt_id, audio=audio_rel, text=text,
                               duration_s=_duration(audio), speaker=speakers.get(utt_id, (0, None))[1]))
    return write_manifest(out, utts).parent


_AUDIO_KEYS, _TEXT_KEYS = ("audio_filepath", "audio", "path", "file"), ("text", "sentence", "transcript", "transcription")


def import_jsonl(source: Path, out: Path) -> Path:
    """NeMo (``audio_filepath``, ``text``, ``duration``) or Hugging Face style JSONL."""
    if (out / "manifest.jsonl").resolve() == source.resolve():
        raise UserError("the harness manifest would overwrite the source manifest.", path=source,
                        fix="rename the source file, or pass -o with another folder that contains the audio.")
    utts = []
    for number, line in _lines(source):
        row = load_json(line, source, first_line=number)
        if not isinstance(row, dict):
            raise UserError("not a JSON object.", path=source, line=number, fix="one JSON object per line.")
        audio_key = next((k for k in _AUDIO_KEYS if k in row), None)
        text_key = next((k for k in _TEXT_KEYS if k in row), None)
        if audio_key is None or text_key is None:
            raise UserError(f"no audio ({'/'.join(_AUDIO_KEYS)}) or text ({'/'.join(_TEXT_KEYS)}) field.",
                            path=source, line=number, fix="rename the fields, or write a harness manifest directly.")
        audio_value = row[audio_key].get("path") if isinstance(row[audio_key], dict) else row[audio_key]
        if not isinstance(audio_value, str) or not audio_value.strip():
            raise UserError(f"{audio_key}: not a file path.", path=source, line=number,
                            fix="give the audio file's path as a string.")
        audio = Path(audio_value)
        audio = audio if audio.is_absolute() else source.parent / audio
        utt_id = str(row.get("id") or row.get("utt_id") or audio.stem)
        utts.append(_utterance(source, number, id=utt_id, audio=_rel(audio, out, source, number), text=row[text_key],
                               duration_s=row.get("duration") or _duration(audio),
                               speaker=(str(row["speaker"]) if row.get("speaker") is not None else None)))
    return write_manifest(out, utts).parent


def default_output(layout: str, source: Path) -> Path:
    """Where a manifest goes when no -o is given: the source folder (a JSONL manifest's own folder)."""
    return source.parent if layout == "jsonl" else source


IMPORTERS = {"librispeech": import_librispeech, "kaldi": import_kaldi, "jsonl": import_jsonl}


def import_corpus(layout: str, source: Path, out: Path | None = None, force: bool = False) -> Path:
    """Import ``source`` with the ``layout`` importer into ``out`` (default: beside the source); an existing
    manifest.jsonl there is replaced only with ``force`` (it may be a corpus someone checked and edited by hand)."""
    out = out or default_output(layout, source)
    manifest = out / "manifest.jsonl"
    if manifest.is_symlink() and not manifest.exists():  # even with force: writing through it makes a file elsewhere
        raise UserError(f"manifest.jsonl here is a link to {os.readlink(manifest)}, which does not exist; importing "
                        "would create that file outside this folder. Nothing was written.", path=manifest,
                        fix=f"remove the link (rm {manifest}) and import again, or -o another folder (one that "
                            "contains the audio).")
    if manifest.exists() and not force and manifest.resolve() != source.resolve():  # the source: import_jsonl says
        raise UserError("a manifest is already here; importing would replace it.", path=manifest,
                        fix="pass --force to replace it, or -o another folder (one that contains the audio).")
    return IMPORTERS[layout](source, out)
