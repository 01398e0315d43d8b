"""The shipped corpora: Harvard sentences (lists 1-10) spoken by a TTS voice, rebuilt bit for bit.

* ``harvard-hibari``: the ``hibari-tts`` package's built-in voice (24 kHz, fixed noise seed).
* ``harvard-espeak``: Debian's ``espeak-ng`` (22.05 kHz), a harder, robotic voice.

Both are resampled to 16 kHz with a polyphase filter and written as 16-bit WAV by
Python's ``wave`` module, so the same package versions on the same kind of CPU give the same
bytes. ``SHA256SUMS`` beside each manifest proves it; ``harness corpus build NAME --verify``
rebuilds into a scratch folder and compares.

The kind of CPU matters for hibari: its voice is dynamically quantised (``MatMulInteger``), and
ONNX Runtime's u8 x s8 kernels on x86 without VNNI add product pairs in saturating 16-bit lanes
(``vpmaddubsw``), where VNNI and Arm's dot products are exact (onnxruntime#14642, #6004; ORT
PR #24220 adds a checker for it). Seen on 2026-12-01 on an AVX2-only AMD EPYC, against the shipped
``harvard-hibari`` (built where the products are exact): a plain rebuild gave some utterances other
durations; with the integer products computed exactly (``exact_int8``, which ``--verify`` uses on
such a CPU) every file had the shipped length and 25 of 100 were bit for bit, the rest differing
in float rounding. espeak-ng is plain C and does not depend on this.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Callable

import numpy as np

from harness.accuracy.corpus import SAMPLE_RATE, Utterance, write_manifest
from harness.errors import UserError
from harness.outfile import write_text

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


def exact_int8_model(src: Path, dst: Path) -> Path:
    """Write ``src`` with every ``MatMulInteger`` replaced by a float ``MatMul`` of the same integers.

    The products of u8 and s8 values and their sums stay exact integers in float32 (well below 2**24 for
    these layers), so the result is what VNNI computes, on any CPU: the saturating x86 path is bypassed.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    nodes = []
    for index, node in enumerate(model.graph.node):
        if node.op_type != "MatMulInteger":
            nodes.append(node)
            continue
        a, b, a_zero, b_zero = (list(node.input) + ["", "", ""])[:4]
        operands = []
        for side, (value, zero) in enumerate(((a, a_zero), (b, b_zero))):
            name = f"exact{index}_{side}"
            nodes.append(helper.make_node("Cast", [value], [name], to=TensorProto.FLOAT))
            if zero:
                nodes.append(helper.make_node("Cast", [zero], [name + "_zero"], to=TensorProto.FLOAT))
                nodes.append(helper.make_node("Sub", [name, name + "_zero"], [name + "_centred"]))
                name += "_centred"
            operands.append(name)
        nodes.append(helper.make_node("MatMul", operands, [f"exact{index}_product"]))
        nodes.append(helper.make_node("Cast", [f"exact{index}_product"], [node.output[0]], to=TensorProto.INT32))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(dst))
    return dst


def _hibari(exact_int8: bool = False) -> Callable[[str, int], np.ndarray]:
    try:
        from hibari import SAMPLE_RATE as rate
        from hibari import Hibari
    except ModuleNotFoundError:
        raise UserError("the harvard-hibari corpus needs the 'hibari-tts' package.", fix="pip install hibari-tts") from None
    model = None
    if exact_int8:
        from hibari.voices import DEFAULT, voice_path

        scratch = Path(tempfile.mkdtemp(prefix="hibari-exact-"))
        model = str(exact_int8_model(Path(voice_path(DEFAULT, download_missing=False)), scratch / "voice-exact-int8.onnx"))
    tts = Hibari(threads=1, model=model)  # one thread: reductions in a fixed order, so bit-identical output
    if model:
        shutil.rmtree(Path(model).parent, ignore_errors=True)  # the session holds the graph
    return lambda text, index: to_16k(tts(text, seed=SEED + index), rate)


def _espeak(exact_int8: bool = False) -> Callable[[str, int], np.ndarray]:  # plain C: nothing to make exact
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
                 progress: Callable[[int, int], None] = lambda done, total: None, exact_int8: bool = False) -> Path:
    """Synthesize corpus ``name`` into ``out_root/name``; return its folder.

    ``exact_int8``: compute hibari's int8 layers exactly even where this CPU's kernels saturate
    (see the module docstring); no effect on espeak-ng.
    """
    if name not in VOICES:
        raise UserError(f"no corpus recipe '{name}'.", fix=f"choose from {', '.join(VOICES)}.")
    speaker, make = VOICES[name]
    speak = make(exact_int8)
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
    write_text(root / "SHA256SUMS", sha256sums(root))
    return root


def int8_path() -> str:
    """How ONNX Runtime's CPU kernels multiply u8 x s8 here: 'exact (…)' or 'saturating (…)'.

    x86 without VNNI adds pairs of products in 16-bit lanes that saturate; VNNI (avx512_vnni,
    avx_vnni) and Arm's dot-product instructions accumulate in 32 bits.
    """
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return f"exact ({machine} dot products)"
    try:
        flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo", encoding="ascii", errors="replace")
                      if line.startswith("flags")), [])
    except OSError:
        return f"unknown ({machine}, no /proc/cpuinfo)"
    vnni = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    if vnni:
        return f"exact ({', '.join(vnni)})"
    return "saturating (x86 without VNNI: u8 x s8 pairs summed in 16-bit lanes)"


@dataclass(frozen=True)
class CorpusCheck:
    """A rebuilt corpus compared with the shipped one."""

    differing: list[str]        # SHA256SUMS lines in one and not the other
    compared: int               # audio files compared
    lengths_match: bool         # every rebuilt audio file has as many samples as the shipped one
    int8_path: str              # this CPU's, from int8_path()
    exact_int8: bool            # the rebuild computed hibari's int8 layers exactly (build_corpus(exact_int8=True))

    @property
    def bit_for_bit(self) -> bool:
        return not self.differing


def _sums_by_path(root: Path) -> dict[str, str]:
    lines = (root / "SHA256SUMS").read_text().splitlines()
    return {line.split("  ", 1)[1]: line for line in lines if "  " in line}


def _samples(path: Path) -> int:
    with wave.open(str(path), "rb") as src:
        return src.getnframes()


def compare_corpora(shipped_root: Path, rebuilt_root: Path, partial: bool = False, exact_int8: bool = False) -> CorpusCheck:
    """Compare checksums, and the length of every rebuilt audio file with the shipped one's.

    ``partial``: the rebuild holds only some utterances (``build_corpus(limit=)``); compare those
    and not the manifest, instead of counting every file it lacks as a difference.
    """
    expected, rebuilt = _sums_by_path(shipped_root), _sums_by_path(rebuilt_root)
    paths = set(rebuilt) - {"manifest.jsonl"} if partial else set(rebuilt) | set(expected)
    differing = sorted(rebuilt.get(path) or expected[path] for path in paths if rebuilt.get(path) != expected.get(path))
    wavs = sorted((rebuilt_root / "audio").glob("*.wav"))
    lengths_match = all((shipped_root / "audio" / wav.name).is_file()
                        and _samples(wav) == _samples(shipped_root / "audio" / wav.name) for wav in wavs)
    return CorpusCheck(differing, len(wavs), lengths_match, int8_path(), exact_int8)


def verify_corpus(name: str, shipped_root: Path) -> CorpusCheck:
    """Rebuild ``name`` in a scratch folder and compare it with the shipped one.

    On a CPU whose int8 kernels saturate, hibari's int8 layers are computed exactly instead, as the
    shipped corpus's CPU computed them; what may still differ is float rounding.
    """
    exact = int8_path().startswith("saturating")
    with tempfile.TemporaryDirectory() as tmp:
        return compare_corpora(shipped_root, build_corpus(name, Path(tmp), exact_int8=exact), exact_int8=exact)
