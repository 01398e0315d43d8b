"""Parity of every reference build against its eager PyTorch source, before anything goes to a phone.

Per build: max absolute error and cosine similarity of its outputs on fixed sample
inputs (speech from the shipped corpus), and for ASR chains whether each sample's
greedy transcript is unchanged.  Core ML builds cannot run on Linux, so they are
checked statically (program type, ops, weight dtypes, size).  Thresholds live in
``THRESHOLDS``; a build that misses one is reported as failed, never dropped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.errors import UserError

# Minimum cosine similarity to the eager outputs, and minimum share of sample transcripts
# that must come out identical, by quantization.  FP32 must be numerically the same model;
# quantized builds may drift, but not so far that transcripts change wholesale.
THRESHOLDS = {
    "fp32": {"cosine": 0.99999, "transcripts_unchanged": 1.0},
    "fp16": {"cosine": 0.999, "transcripts_unchanged": 1.0},
    "int8": {"cosine": 0.99, "transcripts_unchanged": 0.6},
    "int4": {"cosine": 0.95, "transcripts_unchanged": 0.4},
}
# Silero VAD, per 32 ms window: FP32 must give the same speech probability (to 1e-4); any build
# must agree with the source on the speech / non-speech decision (probability > 0.5) this often.
VAD_FP32_MAX_PROB_ERROR = 1e-4
VAD_MIN_DECISION_AGREEMENT = 0.95


@dataclass
class Parity:
    build: str
    part: str
    quantization: str
    max_abs_error: float | None = None
    cosine: float | None = None
    top1_agreement: float | None = None  # decoder: argmax agreement; VAD: speech-decision agreement
    transcripts_unchanged: float | None = None
    static: dict | None = None
    passed: bool = True
    why: str = ""


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def _compare(row: Parity, got: list[np.ndarray], want: list[np.ndarray]) -> None:
    g = np.concatenate([x.ravel() for x in got])
    w = np.concatenate([x.ravel() for x in want])
    row.max_abs_error, row.cosine = float(np.abs(g - w).max()), _cosine(g, w)
    need = THRESHOLDS[row.quantization]["cosine"]
    if row.cosine < need:
        row.passed, row.why = False, f"cosine {row.cosine:.6f} < {need}"


def _manifests(builds: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(builds.glob("*.manifest.json")):
        found[path.name[: -len(".manifest.json")]] = json.loads(path.read_text())
    if not found:
        raise UserError("no builds with manifests here.", path=builds, fix="run 'harness zoo build' first.")
    return found


def _samples(corpus_dir: Path, count: int) -> list[np.ndarray]:
    from harness.accuracy.corpus import read_manifest

    corpus = read_manifest(corpus_dir)
    return [corpus.load_audio(u) for u in corpus.utterances[:count]]


def _validate_vad(builds: Path, manifests: dict, audio: list[np.ndarray]) -> list[Parity]:
    """Each VAD build against silero-vad's TorchScript model, window by window with state carried."""
    import onnxruntime as ort
    import torch

    from harness.models.vad import VAD_WINDOW, vad_frames
    from harness.zoo.recipes import _silero_file

    eager = torch.jit.load(str(_silero_file("silero_vad.jit"))).eval()
    want = []
    for clip in audio:
        eager.reset_states()
        for start in range(0, len(clip) - VAD_WINDOW + 1, VAD_WINDOW):
            with torch.no_grad():
                want.append(float(eager(torch.from_numpy(clip[None, start:start + VAD_WINDOW].copy()), 16000)))
    rows = []
    for name, man in manifests.items():
        if man.get("stage") != "vad":
            continue
        session = ort.InferenceSession(str(builds / name), providers=["CPUExecutionProvider"])
        got = []

        def step(feed):
            prob, state = session.run(None, feed)
            got.append(float(prob.ravel()[0]))
            return state

        for clip in audio:
            for _ in vad_frames(clip, step):
                pass
        row = Parity(name, "vad", man["quantization"])
        _compare(row, [np.array(got)], [np.array(want)])
        row.passed, row.why = True, ""
        row.top1_agreement = float(np.mean((np.array(got) > 0.5) == (np.array(want) > 0.5)))
        if row.quantization == "fp32" and row.max_abs_error > VAD_FP32_MAX_PROB_ERROR:
            row.passed, row.why = False, f"speech probability off by {row.max_abs_error:.3g} > {VAD_FP32_MAX_PROB_ERROR}"
        elif row.top1_agreement < VAD_MIN_DECISION_AGREEMENT:
            row.passed, row.why = False, (f"speech decisions agree {row.top1_agreement:.1%} < "
                                          f"{VAD_MIN_DECISION_AGREEMENT:.0%}")
        rows.append(row)
    return rows


def _coreml_static(path: Path, quantization: str) -> Parity:
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    ops: dict[str, int] = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                ops[op.type] = ops.get(op.type, 0) + 1
    compressed = sum(n for op, n in ops.items() if op.startswith("constexpr_"))
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    row = Parity(path.name, "asr-encoder", quantization,
                 static={"type": spec.WhichOneof("Type"), "spec_version": spec.specificationVersion,
                         "ops": len(ops), "compressed_weight_ops": compressed, "size_bytes": size})
    if spec.WhichOneof("Type") != "mlProgram":
        row.passed, row.why = False, "not an ML program"
    elif quantization in ("int8", "int4") and compressed == 0:
        row.passed, row.why = False, "no compressed (constexpr) weights: quantization did not apply"
    return row


def validate_builds(builds: Path, corpus_dir: Path, samples: int = 5) -> list[Parity]:
    """Check every build in ``builds`` against its eager source; return one row per build."""
    from harness.accuracy.chains import bundle_chain, eager_chain, file_chain, load_part
    from harness.accuracy.decode import greedy_decode
    from harness.models.whisper import load_whisper
    from harness.models.whisper_facts import MAX_TOKENS, decoding_config
    from harness.models.whisper_split import empty_cache

    manifests = _manifests(builds)
    audio = _samples(corpus_dir, samples)
    rows = _validate_vad(builds, manifests, audio)

    whisper = load_whisper()
    eager = eager_chain(whisper)
    cfg = decoding_config()
    decode = lambda chain, clip: greedy_decode(chain, clip, cfg["suppress_ids"], cfg["suppress_ids_begin"], MAX_TOKENS)
    from harness.accuracy.decode import pad_audio

    mels = [eager.mel(pad_audio(clip)) for clip in audio]
    crosses = [eager.encoder(mel) for mel in mels]
    reference = [decode(eager, clip).tokens for clip in audio]
    cache_shape = tuple(empty_cache(whisper).shape)

    for name, man in manifests.items():
        path, stage, quant = builds / name, man.get("stage"), man.get("quantization")
        if man.get("model") != "whisper-tiny.en":
            continue
        if man["format"] == "mlpackage":
            rows.append(_coreml_static(path, quant))
            continue
        if stage == "asr":  # a bundle (encoder + decoder methods): judged by its transcripts
            chain = bundle_chain(path, builds / man["companions"]["processor"])
            rows.append(_transcript_row(name, "asr-bundle", quant, chain, audio, reference, decode))
            continue
        part = load_part(path)
        row = Parity(name, stage, quant)
        if stage == "mel":
            _compare(row, [part(pad_audio(c)) for c in audio], mels)
        elif stage == "asr-encoder":
            got = [np.concatenate([np.ravel(x) for x in part(m)]) for m in mels]
            _compare(row, got, [np.concatenate([np.ravel(x) for x in c]) for c in crosses])
        elif stage == "asr-decoder":
            got, want, agree, steps = [], [], 0, 0
            for (ck, cv), tokens in zip(crosses, reference):
                sk = np.zeros(cache_shape, np.float32); sv = sk.copy(); ek = sk.copy(); ev = sk.copy()
                for pos, tok in enumerate([50257, 50362, *tokens]):  # teacher-forced on the eager transcript
                    t, p = np.array([[tok]], np.int64), np.array([pos], np.int64)
                    logits, sk, sv = part(t, p, sk, sv, ck, cv)
                    ref_logits, ek, ev = eager.step(t, p, ek, ev, ck, cv)
                    got.append(logits); want.append(ref_logits)
                    agree += int(np.argmax(logits) == np.argmax(ref_logits)); steps += 1
            _compare(row, got, want)
            row.top1_agreement = agree / steps
        rows.append(row)

    # Whole chains: this format's mel + encoder + decoder at one quantization, transcripts vs eager.
    by_key = {(m["format"], m["stage"], m["quantization"]): n for n, m in manifests.items()
              if m.get("model") == "whisper-tiny.en"}
    for fmt in ("onnx", "pte"):
        mel = by_key.get((fmt, "mel", "fp32"))
        for quant in ("fp32", "int8", "int4"):
            enc, dec = by_key.get((fmt, "asr-encoder", quant)), by_key.get((fmt, "asr-decoder", quant))
            if not (mel and enc and dec):
                continue
            chain = file_chain(builds / mel, builds / enc, builds / dec, cache_shape)
            rows.append(_transcript_row(f"{fmt} chain {quant}", "asr-chain", quant, chain, audio, reference, decode))
    return rows


def _transcript_row(name: str, part: str, quant: str, chain, audio, reference, decode) -> Parity:
    """Share of sample transcripts identical to the eager model's, against the quantization's threshold."""
    same = sum(decode(chain, clip).tokens == ref for clip, ref in zip(audio, reference)) / len(audio)
    row = Parity(name, part, quant, transcripts_unchanged=same)
    need = THRESHOLDS[quant]["transcripts_unchanged"]
    if same < need:
        row.passed, row.why = False, f"{same:.0%} of transcripts unchanged < {need:.0%}"
    return row


def write_report(rows: list[Parity], out: Path) -> None:
    out.write_text(json.dumps({"thresholds": THRESHOLDS, "vad_fp32_max_prob_error": VAD_FP32_MAX_PROB_ERROR,
                               "vad_min_decision_agreement": VAD_MIN_DECISION_AGREEMENT,
                               "builds": [asdict(r) for r in rows]}, indent=2) + "\n")
