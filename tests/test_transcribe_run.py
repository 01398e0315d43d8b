"""Accuracy inside `harness run`: transcription cells store transcripts; the report scores them."""

from __future__ import annotations

import pytest

from harness.errors import UserError
from harness.report.html import write_report
from harness.run.engine import run_plan
from harness.store import Store
from tests.helpers import REPO, bundle_accuracy, measure, write
from tests.test_android_generation import harvard_subset  # a corpus of chosen Harvard utterances

# Slow: the tests that take the zoo's speech builds (they transcribe, or need the builds found or built first);
# a plan checked without them is fast.


def _plan(tmp_path, builds, corpus, limit=2):  # two clips: the second is the one every build gets right
    return write(tmp_path / "plan.yaml", f"""
        name: acc
        inventory: {REPO / 'devices.yaml'}
        devices: [host]
        threads: 1
        accuracy:
          corpus: {corpus}
          limit: {limit}
          chains:
            - name: onnx-fp32
              mel: {builds / 'whisper-logmel-fp32.onnx'}
              encoder: {builds / 'whisper-tiny.en-encoder-fp32.onnx'}
              decoder: {builds / 'whisper-tiny.en-decoder-fp32.onnx'}
            - name: onnx-int8
              mel: {builds / 'whisper-logmel-fp32.onnx'}
              encoder: {builds / 'whisper-tiny.en-encoder-int8.onnx'}
              decoder: {builds / 'whisper-tiny.en-decoder-int8.onnx'}
        """)


@pytest.mark.slow
def test_transcription_cells_store_transcripts_and_report_wer(asr_builds, tmp_path):
    builds = asr_builds
    corpus = REPO / "corpora" / "harvard-hibari"
    outcome = run_plan(_plan(tmp_path, builds, corpus), tmp_path / "r.db")
    assert outcome.statuses == {"ok": 2}
    with Store(tmp_path / "r.db") as store:
        cells = store.cells(outcome.run_id)
    for cell in cells:
        assert cell.task == "transcribe" and [t["utt_id"] for t in cell.transcripts] == ["h01-01", "h01-02"]
        assert all(t["total_ms"] > t["encoder_ms"] > 0 and t["rtf"] > 0 for t in cell.transcripts)
        assert cell.extra["chain"]["encoder"]["quantization"] in ("fp32", "int8")
        # "Glue the sheet to the dark blue background." is easy: every build should get it right.
        assert cell.transcripts[1]["hypothesis"] == "Glue the sheet to the dark blue background."
    html = write_report(tmp_path / "r.db", outcome.run_id, tmp_path / "rep").read_text()
    assert "Accuracy" in html and "Paired comparisons" in html and "onnx-int8" in html


@pytest.mark.slow
def test_bad_corpus_stops_the_run_before_it_starts(asr_builds, tmp_path):
    builds = asr_builds
    corpus = tmp_path / "c"
    write(corpus / "manifest.jsonl", '{"id": "a", "audio": "missing.wav", "text": "hi", "duration_s": 1}\n')
    with pytest.raises(UserError, match="missing") as err:
        run_plan(_plan(tmp_path, builds, corpus), tmp_path / "r.db")
    assert err.value.line == 1
    assert not (tmp_path / "r.db").exists()  # nothing was started


@pytest.mark.slow
def test_missing_chain_build_names_the_plan_line(asr_builds, tmp_path):
    builds = asr_builds
    plan = _plan(tmp_path, builds, REPO / "corpora" / "harvard-hibari")
    plan.write_text(plan.read_text().replace("whisper-tiny.en-encoder-int8.onnx", "nope.onnx"))
    with pytest.raises(UserError, match=r"accuracy.chains\[1\].encoder") as err:
        run_plan(plan, tmp_path / "r.db")
    assert err.value.line is not None


def test_plan_with_nothing_to_measure_is_rejected(tmp_path):
    from harness.plan import load_plan

    with pytest.raises(UserError, match="measures nothing"):
        load_plan(write(tmp_path / "p.yaml", "name: empty\n"))


@pytest.mark.slow
def test_a_bundled_program_transcribes_on_the_host_and_is_not_timed_as_one_call(whisper_bundle, tmp_path):
    bundle = whisper_bundle / "whisper-tiny.en-asr-fp32-xnnpack.pte"
    # One utterance, h01-02 (was: h01-01 and h01-02, and h01-01 again as the worker's warm-up): the easy clip is still
    # transcribed after another transcription in the same process (its warm-up), so a program whose KV cache or
    # cache position carried over would still get it wrong.
    corpus = harvard_subset(tmp_path / "corpus", ["h01-02"])
    accuracy = bundle_accuracy(bundle, limit=1).replace(str(REPO / "corpora" / "harvard-hibari"), str(corpus))
    plan = write(tmp_path / "plan.yaml", f"""
        name: bundle
        inventory: {REPO / 'devices.yaml'}
        devices: [host]
        artifacts: [{bundle}]
        iterations: 2
        runs: 1
{accuracy}
        """)
    measured = measure(plan, tmp_path / "r.db")
    (cell,), (skip,) = measured.cells, measured.skipped
    assert cell.status == "ok" and cell.extra["chain"]["model"]["sha256"] == cell.artifact["sha256"]
    (row,) = cell.transcripts
    assert row["utt_id"] == "h01-02" and row["hypothesis"] == "Glue the sheet to the dark blue background."
    assert "list it under accuracy.chains" in skip["reason"]


@pytest.mark.slow
def test_a_chain_is_either_three_builds_or_one_bundle(tmp_path, asr_builds):
    builds = asr_builds
    plan = write(tmp_path / "plan.yaml", f"""
        name: both
        inventory: {REPO / 'devices.yaml'}
        accuracy:
          corpus: {REPO / "corpora" / "harvard-hibari"}
          chains:
            - {{name: mixed, model: {builds / 'whisper-logmel-fp32.onnx'}, mel: {builds / 'whisper-logmel-fp32.onnx'}}}
        """)
    with pytest.raises(UserError, match="either 'model'") as err:
        run_plan(plan, tmp_path / "r.db")
    assert err.value.line is not None


@pytest.mark.slow
def test_an_onnx_chain_transcribes_without_importing_torch(asr_builds, tmp_path):
    """The transcription worker of an ONNX chain runs on onnxruntime and numpy: torch (about 2.5 s a process,
    reached through the whisper package's __init__ for its tokenizer, or through the modules that build the
    exported graphs for a constant) is never imported, and the tokenizer loaded without the package decodes as the
    package's does (the transcript is the clip's words).  Catches any of those imports coming back."""
    import json
    import subprocess
    import sys

    corpus = harvard_subset(tmp_path / "corpus", ["h01-02"])
    code = ("import sys; from harness.runners.host_transcribe_worker import main; rc = main(sys.argv[1:]); "
            "print('TORCH_IMPORTED', 'torch' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "--corpus", str(corpus),
                          "--mel", str(asr_builds / "whisper-logmel-fp32.onnx"),
                          "--encoder", str(asr_builds / "whisper-tiny.en-encoder-int8.onnx"),
                          "--decoder", str(asr_builds / "whisper-tiny.en-decoder-int8.onnx"), "--threads", "1"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    (utt,) = [json.loads(line.split(" ", 1)[1]) for line in out.stdout.splitlines() if line.startswith("HARNESS_UTT ")]
    words = lambda text: "".join(c for c in text.lower() if c.isalpha() or c == " ").split()  # noqa: E731
    assert words(utt["hypothesis"]) == words(utt["reference"]), utt
    assert "TORCH_IMPORTED False" in out.stdout, out.stdout[-500:]
