"""The shipped corpora: Harvard sentences (lists 1-10) spoken by a TTS voice, rebuilt bit for bit.

* ``harvard-hibari``: the ``hibari-tts`` package's built-in voice (24 kHz, fixed noise seed).
* ``harvard-espeak``: Debian's ``espeak-ng`` (22.05 kHz), a harder, robotic voice.

Both are resampled to 16 kHz with a polyphase filter and written as 16-bit WAV by
Python's ``wave`` module, so the same package versions give the same bytes.
``SHA256SUMS`` beside each manifest proves it; ``harness corpus build NAME --verify``
rebuilds into a scratch folder and compares.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import wave
from math import gcd
from pathlib import Path
from typing import Callable

import numpy as np

from harness.accuracy.corpus import SAMPLE_RATE, Utterance, write_manifest
from harness.errors import UserError

# Package data, not the checkout: an installed harness rebuilds the corpora too.
SENTENCES = Path(__file__).resolve().parent / "data" / "harvard-lists-1-10.txt"
SEED = 20261121


def harvard_sentences() -> list[tuple[str, str]]:
    """``[(id, text)]`` with ids ``h01-01`` .. ``h10-10``."""
    lines = [l.strip() for l in SENTENCES.read_text(encoding="utf-8").splitlines()
             if l.strip() and not l.startswith("#")]
    return [(f"h{i // 10 + 1:02d}-{i % 10 + 1:02d}", text) for i, text in enumerate(lines)]


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = gcd(rate, SAMPLE_RATE)
    return resample_poly(audio.astype(np.float64), SAMPLE_RATE // g, rate // g).astype(np.float32)


def write_wav16(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def _hibari() -> Callable[[str, int], np.ndarray]:
    try:
        from hibari import SAMPLE_RATE as rate
        from hibari import Hibari
    except ModuleNotFoundError:
        raise UserError("the harvard-hibari corpus needs the 'hibari-tts' package.", fix="pip install hibari-tts") from None
    tts = Hibari(threads=1)  # one thread: reductions in a fixed order, so bit-identical output
    return lambda text, index: to_16k(tts(text, seed=SEED + index), rate)


def _espeak() -> Callable[[str, int], np.ndarray]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise UserError("the harvard-espeak corpus needs Debian's espeak-ng.",
                        fix="apt-get install espeak-ng (or run scripts/install-system-deps.sh).")

    def speak(text: str, index: int) -> np.ndarray:
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "u.wav"
            subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(out), text], check=True,
                           capture_output=True, timeout=60)
            audio, rate = sf.read(out, dtype="float32")
        return to_16k(audio, rate)
    return speak


VOICES = {"harvard-hibari": ("hibari", _hibari), "harvard-espeak": ("espeak-ng", _espeak)}


def sha256sums(root: Path) -> str:
    files = sorted([root / "manifest.jsonl", *sorted((root / "audio").glob("*.wav"))])
    return "".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.relative_to(root)}\n" for f in files)


def build_corpus(name: str, out_root: Path, limit: int | None = None,
                 progress: Callable[[int, int], None] = lambda done, total: None) -> Path:
    """Synthesize corpus ``name`` into ``out_root/name``; return its folder."""
    if name not in VOICES:
        raise UserError(f"no corpus recipe '{name}'.", fix=f"choose from {', '.join(VOICES)}.")
    speaker, make = VOICES[name]
    speak = make()
    root = out_root / name
    (root / "audio").mkdir(parents=True, exist_ok=True)
    sentences = harvard_sentences()[:limit]
    utterances = []
    for index, (utt_id, text) in enumerate(sentences):
        audio = speak(text, index)
        write_wav16(root / "audio" / f"{utt_id}.wav", audio)
        utterances.append(Utterance(id=utt_id, audio=f"audio/{utt_id}.wav", text=text,
                                    duration_s=round(len(audio) / SAMPLE_RATE, 3), speaker=speaker))
        progress(index + 1, len(sentences))
    write_manifest(root, utterances)
    (root / "SHA256SUMS").write_text(sha256sums(root))
    return root


def verify_corpus(name: str, shipped_root: Path) -> list[str]:
    """Rebuild ``name`` in a scratch folder; return the files whose bytes differ from SHA256SUMS."""
    expected = (shipped_root / "SHA256SUMS").read_text().splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = build_corpus(name, Path(tmp)).joinpath("SHA256SUMS").read_text().splitlines()
    return sorted(set(expected) ^ set(rebuilt))
