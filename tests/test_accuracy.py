"""WER you can trust: checked against NIST sclite, hand-counted cases, and a paired bootstrap that behaves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import wave

import numpy as np
import pytest

from harness.accuracy.bootstrap import paired_bootstrap
from harness.accuracy.corpus import check_corpus, load_checked, read_manifest
from harness.accuracy.wer import normalize, score_corpus
from harness.errors import UserError
from tests.helpers import REPO, cli_in_process, run_cli, write


def _sclite_counts(refs, hyps, tmp_path):
    """Run Debian's sclite on trn files and read its error counts from the detailed report."""
    exe = shutil.which("sclite") or "/usr/lib/sctk/bin/sclite"
    assert shutil.which("sctk") or shutil.which("sclite"), "sctk is missing: make test installs it"
    (tmp_path / "ref.trn").write_text("".join(f"{r} (spk_u{i:03d})\n" for i, r in enumerate(refs)))
    (tmp_path / "hyp.trn").write_text("".join(f"{h} (spk_u{i:03d})\n" for i, h in enumerate(hyps)))
    cmd = ([exe] if shutil.which("sclite") or not shutil.which("sctk") else ["sctk", "sclite"])
    out = subprocess.run(cmd + ["-r", str(tmp_path / "ref.trn"), "trn", "-h", str(tmp_path / "hyp.trn"), "trn",
                                "-i", "rm", "-o", "dtl", "stdout"], capture_output=True, text=True, check=True).stdout
    grab = lambda label: int(re.search(rf"{label}\s*=.*\(\s*(\d+)\)", out).group(1))
    return {"substitutions": grab("Percent Substitution"), "deletions": grab("Percent Deletions"),
            "insertions": grab("Percent Insertions"), "words": grab("Ref. words")}


def test_error_counts_agree_with_sclite_on_real_transcripts(tmp_path):
    """Whisper-style hypotheses of the shipped corpus (with typical errors) scored by both tools."""
    corpus = read_manifest(REPO / "corpora" / "harvard-hibari")
    rng = np.random.default_rng(4)
    refs, hyps = [], []
    for utt in corpus.utterances[:40]:
        words = normalize(utt.text).split()
        edited = []
        for w in words:
            r = rng.random()
            if r < 0.08:
                continue  # deletion
            edited.append("blah" if r < 0.16 else w)  # substitution
            if rng.random() < 0.05:
                edited.append("um")  # insertion
        refs.append(" ".join(words))
        hyps.append(" ".join(edited))
    ours = score_corpus([str(i) for i in range(len(refs))], refs, hyps, normalise=False).totals()
    theirs = _sclite_counts(refs, hyps, tmp_path)
    assert {k: ours[k] for k in theirs} == theirs
    assert ours["errors"] > 10  # the comparison exercised all three error kinds
    assert min(ours["substitutions"], ours["deletions"], ours["insertions"]) > 0


def test_hand_counted_case():
    # ref "the cat sat on the mat" vs hyp "the cat sat on mat": one deletion; "hello world" vs
    # "hello big world": one insertion -> 2 errors over 8 reference words.
    s = score_corpus(["a", "b"], ["the cat sat on the mat", "hello world"], ["the cat sat on mat", "hello big world"])
    t = s.totals()
    assert (t["words"], t["deletions"], t["insertions"], t["substitutions"]) == (8, 1, 1, 0)
    assert t["wer"] == pytest.approx(2 / 8)
    assert ("D", "the", "") in s.utterances[0].alignment and ("I", "", "big") in s.utterances[1].alignment


def test_corpus_level_wer_is_not_a_mean_of_rates():
    # 1 error in a 1-word utterance and 0 in a 9-word one: corpus WER is 1/10, the mean of rates would be 0.5.
    s = score_corpus(["a", "b"], ["yes", "one two three four five six seven eight nine"],
                     ["no", "one two three four five six seven eight nine"], normalise=False)
    assert s.wer == pytest.approx(0.1)


def test_empty_references_are_explicit():
    s = score_corpus(["a", "b"], ["", "hello world"], ["stray words", "hello world"], normalise=False)
    assert s.totals()["insertions"] == 2 and s.empty_references == 1
    assert s.wer == pytest.approx(2 / 2)
    only_empty = score_corpus(["a"], [""], ["anything"], normalise=False)
    assert only_empty.wer is None and only_empty.insertions == 1  # undefined, not a count pretending to be a rate


def test_whisper_normaliser_is_applied():
    assert normalize("It's easy, Mr. Smith!") == normalize("it is easy mister smith")
    s = score_corpus(["a"], ["The colour is GREY."], ["the color is gray"])
    assert s.wer == 0


def test_paired_bootstrap_is_deterministic_and_sensible():
    refs = [f"word{i} other{i} third{i}" for i in range(60)]
    good = score_corpus([str(i) for i in range(60)], refs, refs, normalise=False)
    worse_h = [(r if i % 3 else "x " + r.split(" ", 1)[1]) for i, r in enumerate(refs)]  # every 3rd: 1 substitution
    worse = score_corpus([str(i) for i in range(60)], refs, worse_h, normalise=False)
    a = paired_bootstrap(good, worse, resamples=2000, seed=1)
    assert a == paired_bootstrap(good, worse, resamples=2000, seed=1)
    assert a.delta == pytest.approx(20 / 180)  # 20 substitutions over 180 words
    assert a.low > 0 and a.low < a.delta < a.high and a.p_b_better == 0.0
    same = paired_bootstrap(good, good, resamples=500)
    assert same.delta == 0 and same.low == 0 == same.high


def test_corpus_check_finds_every_kind_of_problem(tmp_path):
    def wav(path, rate=16000, channels=1):
        with wave.open(str(path), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(b"\0\0" * channels * 1600)

    (tmp_path / "a").mkdir()
    wav(tmp_path / "a" / "ok.wav")
    wav(tmp_path / "a" / "rate.wav", rate=8000)
    wav(tmp_path / "a" / "stereo.wav", channels=2)
    (tmp_path / "a" / "junk.wav").write_text("not audio")
    wav(tmp_path / "outside.wav")
    lines = [
        {"id": "ok", "audio": "a/ok.wav", "text": "fine", "duration_s": 0.1},
        {"id": "ok", "audio": "a/ok.wav", "text": "again", "duration_s": 0.1},
        {"id": "rate", "audio": "a/rate.wav", "text": "x", "duration_s": 0.1},
        {"id": "stereo", "audio": "a/stereo.wav", "text": "x", "duration_s": 0.1},
        {"id": "junk", "audio": "a/junk.wav", "text": "x", "duration_s": 0.1},
        {"id": "gone", "audio": "a/missing.wav", "text": "x", "duration_s": 0.1},
        {"id": "empty", "audio": "a/ok.wav", "text": "  ", "duration_s": 0.1},
        {"id": "escape", "audio": "../outside.wav", "text": "x", "duration_s": 0.1},
    ]
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    write(corpus_dir / "manifest.jsonl", "\n".join(json.dumps(l) for l in lines) + "\n")
    shutil.copytree(tmp_path / "a", corpus_dir / "a")
    problems = [(p.line, p.message) for p in check_corpus(read_manifest(corpus_dir))]
    messages = dict(problems)
    assert "duplicate id" in messages[2] and "8000 Hz" in messages[3] and "2 channels" in messages[4]
    assert "cannot be read" in messages[5] and "missing" in messages[6] and "empty reference" in messages[7]
    assert "leaves the corpus folder" in messages[8] and 1 not in messages
    with pytest.raises(UserError) as err:
        load_checked(corpus_dir)
    assert err.value.line == 2 and "6 more" in str(err.value)  # lines 2-8: seven problems
    proc = run_cli("corpus", "check", str(corpus_dir))
    assert proc.returncode == 2 and "manifest.jsonl:3: rate" in proc.stderr and "Traceback" not in proc.stderr


def test_corpus_audio_that_is_a_fifo_is_named_not_missing(tmp_path):
    """Catches a FIFO given as audio reported as 'missing' (it exists; it is not a file the harness reads)."""
    import os

    os.mkfifo(tmp_path / "u.wav")
    write(tmp_path / "manifest.jsonl", '{"id": "u", "audio": "u.wav", "text": "x", "duration_s": 1}\n')
    (problem,) = check_corpus(read_manifest(tmp_path))
    assert problem.message == "audio 'u.wav' is not a regular file", problem.message


def test_bad_manifest_line_is_named(tmp_path):
    write(tmp_path / "manifest.jsonl", '{"id": "a", "audio": "a.wav", "text": "x", "duration_s": 1}\n{"id": "b"}\n')
    with pytest.raises(UserError) as err:
        read_manifest(tmp_path)
    assert err.value.line == 2 and "audio" in str(err.value)


def test_importers_write_checked_manifests(tmp_path):
    from harness.accuracy.synth import write_wav16

    libri = tmp_path / "LibriSpeech" / "test-clean" / "1089" / "134686"
    libri.mkdir(parents=True)
    for utt in ("1089-134686-0000", "1089-134686-0001"):
        write_wav16(libri / f"{utt}.wav", np.zeros(1600, np.float32))
        import soundfile as sf

        data, _ = sf.read(libri / f"{utt}.wav")
        sf.write(libri / f"{utt}.flac", data, 16000)
        (libri / f"{utt}.wav").unlink()
    (libri / "1089-134686.trans.txt").write_text("1089-134686-0000 HE HOPED THERE WOULD BE STEW\n"
                                                 "1089-134686-0001 STUFF IT INTO YOU\n")
    outside = cli_in_process("corpus", "import", "librispeech", str(tmp_path / "LibriSpeech"), "-o", str(tmp_path / "elsewhere"))
    assert outside.returncode == 2 and "outside" in outside.stderr and "Traceback" not in outside.stderr
    proc = cli_in_process("corpus", "import", "librispeech", str(tmp_path / "LibriSpeech"))
    assert proc.returncode == 0, proc.stderr
    corpus = load_checked(tmp_path / "LibriSpeech")
    assert [u.id for u in corpus.utterances] == ["1089-134686-0000", "1089-134686-0001"]
    assert corpus.utterances[0].speaker == "1089" and corpus.utterances[0].duration_s == pytest.approx(0.1)

    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    write_wav16(kaldi / "u1.wav", np.zeros(3200, np.float32))
    write(kaldi / "wav.scp", "u1 u1.wav\n")
    write(kaldi / "text", "u1 hello there\n")
    write(kaldi / "utt2spk", "u1 spk7\n")
    from harness.accuracy.importers import import_kaldi

    assert load_checked(import_kaldi(kaldi, kaldi)).utterances[0].speaker == "spk7"
    write(kaldi / "wav.scp", "u1 sox in.wav -t wav - |\n")
    with pytest.raises(UserError, match="commands"):
        import_kaldi(kaldi, kaldi)

    write(tmp_path / "nemo.jsonl", json.dumps({"audio_filepath": "kaldi/u1.wav", "text": "hello", "duration": 0.2}) + "\n")
    proc = cli_in_process("corpus", "import", "jsonl", str(tmp_path / "nemo.jsonl"))
    assert proc.returncode == 0 and load_checked(tmp_path).utterances[0].id == "u1"


def test_wer_cli_json(tmp_path):
    ref = write(tmp_path / "ref.txt", "the cat sat on the mat\n\nhello world\n")
    hyp = write(tmp_path / "hyp.txt", "the cat sat on mat\nstray\nhello big world\n")
    proc = cli_in_process("wer", str(ref), str(hyp), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["totals"]["words"] == 8 and data["totals"]["insertions"] == 2 and data["totals"]["deletions"] == 1
    assert data["totals"]["wer"] == pytest.approx(3 / 8) and len(data["utterances"]) == 3
    short = write(tmp_path / "short.txt", "one line\n")
    bad = cli_in_process("wer", str(ref), str(short))
    assert bad.returncode == 2 and "3 lines" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow  # synthesises three utterances twice from the corpus recipe
def test_shipped_corpus_is_intact_and_its_recipe_rebuilds_it(tmp_path):
    """The shipped files are what SHA256SUMS says; the recipe is deterministic on this machine; a rebuild with exact
    int8 products has the shipped durations on any CPU.  (The native int8 path against the exact one: the test
    below, whose id names this CPU's path.)"""
    from harness.accuracy.synth import build_corpus, compare_corpora, sha256sums

    shipped_root = REPO / "corpora" / "harvard-hibari"
    corpus = load_checked(shipped_root)
    assert len(corpus.utterances) == 100 and corpus.utterances[0].text == "The birch canoe slid on the smooth planks."
    shipped = (shipped_root / "SHA256SUMS").read_text().splitlines()
    assert sha256sums(shipped_root).splitlines() == shipped  # the files are what SHA256SUMS says
    exact = build_corpus("harvard-hibari", tmp_path / "a", limit=3, exact_int8=True)
    again = build_corpus("harvard-hibari", tmp_path / "b", limit=3, exact_int8=True)
    assert sha256sums(exact) == sha256sums(again)  # one machine, one recipe: the same bytes
    check = compare_corpora(shipped_root, exact, partial=True)
    assert check.compared == 3 and check.lengths_match, check
    espeak = load_checked(REPO / "corpora" / "harvard-espeak")
    assert espeak.utterances[0].speaker == "espeak-ng"


def _int8_kind() -> str:
    from harness.accuracy.synth import int8_path

    return "int8-" + int8_path().split(" ", 1)[0]  # int8-exact, int8-saturating or int8-unknown


def _matmul_integer(tmp_path, a_zero: int, b_values: np.ndarray):
    """ONNX Runtime's own MatMulInteger (u8 x s8, A's zero point) and exact_int8_model's rewrite of it, as two
    functions of A."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from harness.accuracy.synth import exact_int8_model

    m, k, n = 8, b_values.shape[0], b_values.shape[1]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b", "a_zero"], ["y"])], "mmi",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
        [numpy_helper.from_array(b_values.astype(np.int8), "b"), numpy_helper.from_array(np.uint8(a_zero), "a_zero")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "native.onnx")
    exact_int8_model(tmp_path / "native.onnx", tmp_path / "exact.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = [ort.InferenceSession(str(tmp_path / f), options, providers=["CPUExecutionProvider"])
                for f in ("native.onnx", "exact.onnx")]
    return [lambda a, s=s: s.run(None, {"a": a.astype(np.uint8)})[0] for s in sessions]


@pytest.mark.slow  # ONNX Runtime int8 sessions and, on an exact-int8 CPU, a 3-utterance corpus rebuild
@pytest.mark.parametrize("int8_kind", [_int8_kind()])  # the id names this CPU's int8 path: what was checked
def test_the_exact_int8_rewrite_is_ort_s_int8_arithmetic(tmp_path, int8_kind):
    """On every CPU: exact_int8_model's rewrite computes (A - zero) @ B exactly over the whole u8 x s8 range, and
    ONNX Runtime's own int8 kernels give the same integers where no pair of products can saturate a 16-bit lane
    (|a * b| sums below 2 * 63 * 191 < 32767, even were B offset to u8).  Where this CPU's kernels are exact
    (VNNI, Arm dot products) also over the whole range, and a 3-utterance hibari rebuild through them has the
    exact rewrite's bytes.  On an x86 CPU without VNNI the whole-range products may saturate (the reason the
    rewrite exists), so those two checks cannot hold there; the id says which path ran.  Catches a rewrite that
    drops A's zero point or casts the product wrong, and ORT's kernels and the rewrite parting anywhere."""
    from harness.accuracy.synth import build_corpus, sha256sums

    rng = np.random.default_rng(3)
    full_b = rng.integers(-128, 128, (64, 16))
    native, exact = _matmul_integer(tmp_path, 7, full_b)
    full_a = rng.integers(0, 256, (8, 64))
    assert (exact(full_a) == (full_a - 7) @ full_b).all()  # integer arithmetic by numpy, int64

    small_b = rng.integers(-63, 64, (64, 16))
    small_a = rng.integers(0, 64, (8, 64))
    (tmp_path / "small").mkdir()
    native_small, exact_small = _matmul_integer(tmp_path / "small", 7, small_b)
    assert (native_small(small_a) == (small_a - 7) @ small_b).all()
    assert (exact_small(small_a) == native_small(small_a)).all()

    if int8_kind == "int8-exact":
        assert (native(full_a) == exact(full_a)).all()
        native_corpus = build_corpus("harvard-hibari", tmp_path / "native", limit=3)
        exact_corpus = build_corpus("harvard-hibari", tmp_path / "exact", limit=3, exact_int8=True)
        assert sha256sums(native_corpus) == sha256sums(exact_corpus)


def test_a_rebuilt_corpus_is_compared_file_by_file(tmp_path):
    """compare_corpora on corpora made by hand: equal files, a file with noise added, one of another length."""
    from harness.accuracy.corpus import Utterance, write_manifest
    from harness.accuracy.synth import compare_corpora, sha256sums, write_wav16

    tone = 0.5 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)

    def corpus(root, second):
        (root / "audio").mkdir(parents=True)
        write_wav16(root / "audio" / "u1.wav", tone)
        write_wav16(root / "audio" / "u2.wav", second)
        write_manifest(root, [Utterance(id=u, audio=f"audio/{u}.wav", text="a tone", duration_s=1.0) for u in ("u1", "u2")])
        (root / "SHA256SUMS").write_text(sha256sums(root))
        return root

    shipped = corpus(tmp_path / "shipped", tone)
    same = compare_corpora(shipped, corpus(tmp_path / "same", tone))
    assert same.bit_for_bit and same.lengths_match and same.compared == 2
    noisy = compare_corpora(shipped, corpus(tmp_path / "noisy", tone + 0.05 * np.random.default_rng(7).standard_normal(16000)))
    assert [line.split("  ")[1] for line in noisy.differing] == ["audio/u2.wav"] and noisy.lengths_match
    short = compare_corpora(shipped, corpus(tmp_path / "short", tone[:8000]))
    assert not short.lengths_match and [line.split("  ")[1] for line in short.differing] == ["audio/u2.wav"]


@pytest.mark.slow  # imports openai-whisper, hence torch (3 s alone)
def test_the_wer_normaliser_is_whisper_s_own():
    """whisper-normalizer (the light install's normaliser) must normalise as openai-whisper's does: the same
    text in, the same words out, over the corpus references and the cases the normaliser exists for."""
    import json

    from whisper.normalizers import EnglishTextNormalizer

    from harness.accuracy.wer import normalize

    reference = EnglishTextNormalizer()
    corpus = REPO / "corpora" / "harvard-hibari" / "manifest.jsonl"
    texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines() if line.strip()]
    texts += ["Mr. Smith paid $3.50 for 2 apples, didn't he?", "I'm gonna colour the centre at 10:30 PM — okay?",
              "twenty-five thousand and one", "Dr. Who's 1st episode aired in '63.", "It's 5% off, ain't it?",
              "The U.S.A. won 3-2 in the 2nd half", "[inaudible] uh hmm, well (laughs) yes"]
    assert [normalize(t) for t in texts] == [reference(t) for t in texts]


def _kaldi_folder(kaldi):
    """A one-utterance Kaldi data folder (wav.scp, text, u1.wav: 0.2 s of silence at 16 kHz)."""
    from harness.accuracy.synth import write_wav16

    kaldi.mkdir()
    write_wav16(kaldi / "u1.wav", np.zeros(3200, np.float32))
    write(kaldi / "wav.scp", "u1 u1.wav\n")
    write(kaldi / "text", "u1 hello there\n")
    return kaldi


def test_import_never_replaces_a_manifest_without_force(tmp_path):
    # Catches: 'corpus import kaldi k1' silently overwriting k1/manifest.jsonl (a hand-checked corpus).
    kaldi = _kaldi_folder(tmp_path / "k1")
    mine = write(kaldi / "manifest.jsonl", '{"id": "u1", "audio": "u1.wav", "text": "checked by hand"}\n').read_text()
    proc = cli_in_process("corpus", "import", "kaldi", str(kaldi))
    assert proc.returncode == 2 and "manifest.jsonl" in proc.stderr and "--force" in proc.stderr, proc.stderr
    assert (kaldi / "manifest.jsonl").read_text() == mine
    proc = cli_in_process("corpus", "import", "kaldi", str(kaldi), "--force")
    assert proc.returncode == 0, proc.stderr
    assert load_checked(kaldi).utterances[0].text == "hello there"


def test_import_refuses_a_dangling_manifest_link_even_with_force(tmp_path):
    # Catches: 'corpus import' writing through k1/manifest.jsonl -> elsewhere/made.jsonl, a link to nothing,
    # creating that file outside the corpus folder (exists() is False for a dangling link, so it was not refused).
    kaldi = _kaldi_folder(tmp_path / "k1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (kaldi / "manifest.jsonl").symlink_to(elsewhere / "made.jsonl")
    for force in ([], ["--force"]):
        proc = cli_in_process("corpus", "import", "kaldi", str(kaldi), *force)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert str(kaldi / "manifest.jsonl") in proc.stderr and "does not exist" in proc.stderr, proc.stderr
        assert "Fix: remove the link" in proc.stderr, proc.stderr
        assert not (elsewhere / "made.jsonl").exists(), "the import created a file outside the corpus folder"
        assert (kaldi / "manifest.jsonl").is_symlink()
