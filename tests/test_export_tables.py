"""`harness export --what cells|transcripts`: a row per cell with the report's summary, a row per utterance.

The stored run is written through the store's API with hand-picked numbers, so every expected value below is worked
by hand (or with scipy's t quantile), never read back from the code under test."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from scipy import stats

from harness.cli import main
from harness.devices.base import DeviceFacts
from harness.nightly.synthetic import SyntheticBuild
from harness.run.cell import CellResult
from harness.runners.base import Measurement, RunSettings
from harness.store import Store
from harness.thermal.energy import MEASURED_LOOP, WHOLE_RUN, RunEnergy

RUN_ID = "export-tables"
RUN_LEVELS_MS = (10.0, 11.0, 12.1)  # each run's every iteration: its median and P95 are that value
ENERGY_MJ = (2.0, 4.0, 3.0)  # each run's energy per inference over its measured loop
PEAK_MB = (100.0, 120.0, 110.0)
# Two utterances of a chain: one substitution ("a" for "the") in 8 words, one deletion ("a") in 10.
UTTERANCES = [("u1", "Glue the sheet to the dark blue background.", "glue the sheet to a dark blue background", 100.0),
              ("u2", "It is easy to tell the depth of a well.", "it is easy to tell the depth of well", 200.0)]


SHORT_LOOP = "1 battery reading in the 0.005 s measured loop (at least 2 needed)"


def _spec(build, task="latency", runner="executor_runner", runs=3, chain=None):
    return SimpleNamespace(key=f"phone-1/{build.sha256[:16]}/{task}", device=SimpleNamespace(id="phone-1"),
                           artifact=build, task=task, runner=runner, chain=chain,
                           settings=RunSettings(warmup_iterations=1, iterations=5, timeout_s=60, runs=runs))


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """One run on 'phone-1': a latency cell of 3 runs, one of a run too short for its loop's energy, a cell that
    crashed, a transcription chain."""
    db = tmp_path_factory.mktemp("tables") / "h.db"
    vad = SyntheticBuild("a" * 64, "silero", "vad", "fp32")
    crashy = SyntheticBuild("b" * 64, "crashy", "vad", "int8")
    short = SyntheticBuild("d" * 64, "short", "vad", "fp16")
    decoder = SyntheticBuild("c" * 64, "whisper", "asr-decoder", "int8", format="onnx", backend="ort-cpu")
    with Store(db, durable=False) as store:
        for build in (vad, crashy, short, decoder):
            store.record_artifact(build)
        store.create_run("tables", Path("t.yaml"), "0" * 64, {"vad": 15.0, "asr": 1000.0}, {}, run_id=RUN_ID,
                         plan_text="t", started_at="2026-12-01T01:00:00+00:00")
        store.record_device(RUN_ID, DeviceFacts("phone-1", "android", True, {}), {})
        spec = _spec(vad)
        for index, (level, mj, peak) in enumerate(zip(RUN_LEVELS_MS, ENERGY_MJ, PEAK_MB)):
            energy = RunEnergy(mj, "inference", idle_mw=500.0, active_mw=900.0, units=5, span=MEASURED_LOOP)
            measured = Measurement(samples_ms=[level] * 5, warmup_ms=[50.0], load_ms=30.0, peak_rss_mb=peak)
            store.record_run(RUN_ID, spec, index, CellResult(spec.key, "ok", started_at="t", finished_at="t",
                                                             measurement=measured, energy=energy))
        brief = _spec(short, runs=1)
        whole = RunEnergy(50.0, "inference", idle_mw=500.0, active_mw=2000.0, units=6, span=WHOLE_RUN,
                          span_why=SHORT_LOOP)
        store.record_run(RUN_ID, brief, 0, CellResult(brief.key, "ok", started_at="t", finished_at="t", energy=whole,
                                                      measurement=Measurement(samples_ms=[1.0] * 5, warmup_ms=[9.0])))
        failed = _spec(crashy, runs=1)
        store.record_run(RUN_ID, failed, 0, CellResult(failed.key, "crashed", reason="runner crashed (SIGSEGV)",
                                                       started_at="t", finished_at="t"))
        chain = SimpleNamespace(name="whisper-int8", corpus=Path("harvard"), limit=2,
                                parts={"encoder": decoder, "decoder": decoder})
        spoken = _spec(decoder, task="transcribe", runner="host-transcribe", runs=1, chain=chain)
        utts = [{"id": i, "reference": ref, "hypothesis": hyp, "tokens": 9, "mel_ms": 1.0, "encoder_ms": 20.0,
                 "decoder_ms_per_token": 3.0, "total_ms": total, "audio_s": 2.0, "rtf": total / 2000}
                for i, ref, hyp, total in UTTERANCES]
        store.record_run(RUN_ID, spoken, 0, CellResult(spoken.key, "ok", started_at="t", finished_at="t",
                         measurement=Measurement(samples_ms=[u["total_ms"] for u in utts], transcripts=utts)))
        store.set_run_status(RUN_ID, "complete")
    return db


def _export(db: Path, tmp_path: Path, what: str, fmt: str = "csv", capsys=None) -> tuple[pd.DataFrame, dict]:
    assert main(["export", RUN_ID, "--db", str(db), "--what", what, "--format", fmt, "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    path = tmp_path / written["path"]
    return (pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)), written


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cells_export_holds_the_reports_summary_of_each_cell(db, tmp_path, monkeypatch, capsys, fmt):
    """Before, --what had no 'cells': a cell's P50/P95 and intervals, status, memory and energy were in the report
    alone.  Worked by hand: runs of 10, 11 and 12.1 ms (a factor 1.1 apart) have run-level P50 = P95 = their
    geometric mean, 11 ms; the interval is exp(mean log +- t(0.975, 2) x sd(log) / sqrt(3)) with sd(log) = ln 1.1."""
    monkeypatch.chdir(tmp_path)
    frame, written = _export(db, tmp_path, "cells", fmt, capsys)
    assert Path(written["path"]).name == f"{RUN_ID}-cells.{fmt}" and written["rows"] == 4 == len(frame)
    vad = frame.set_index("model").loc["silero"]
    half = stats.t.ppf(0.975, 2) * math.log(1.1) / math.sqrt(3)
    assert vad["p50_ms"] == pytest.approx(11.0) and vad["p95_ms"] == pytest.approx(11.0)
    for key in ("p50", "p95"):
        assert vad[f"{key}_ci_low_ms"] == pytest.approx(11.0 * math.exp(-half), abs=1e-5)
        assert vad[f"{key}_ci_high_ms"] == pytest.approx(11.0 * math.exp(half), abs=1e-5)
    assert (vad["runs"], vad["measured_samples"], vad["iterations"], vad["warmup_iterations"]) == (3, 15, 5, 1)
    assert vad["mean_ms_pooled"] == pytest.approx((10 + 11 + 12.1) / 3)
    assert (vad["status"], vad["verdict"], vad["budget_name"], vad["budget_ms"]) == ("ok", "pass", "vad", 15.0)
    assert vad["peak_rss_mb"] == 120.0  # the highest run's
    assert (vad["energy_mj_per_unit"], vad["energy_unit"], vad["energy_span"]) == (3.0, "inference", MEASURED_LOOP)
    assert (vad["energy_runs"], vad["energy_runs_tried"]) == (3, 3)
    assert (vad["format"], vad["backend"], vad["quantization"], vad["artifact_sha256"]) == \
        ("pte", "xnnpack", "fp32", "a" * 64)
    short = frame.set_index("model").loc["short"]
    assert (short["energy_mj_per_unit"], short["energy_span"], short["energy_span_why"]) == (50.0, WHOLE_RUN,
                                                                                             SHORT_LOOP)
    crashed = frame.set_index("model").loc["crashy"]
    assert (crashed["status"], crashed["reason"], crashed["verdict"]) == ("crashed", "runner crashed (SIGSEGV)",
                                                                          "failed")
    assert pd.isna(crashed["p50_ms"]) and pd.isna(crashed["energy_mj_per_unit"])
    # The chain: per-utterance percentiles of 100 and 200 ms (linear interpolation: 150 and 195), WER 2 / 18.
    chain = frame.set_index("model").loc["whisper"]
    assert (chain["chain"], chain["percentiles"], chain["utterances"], chain["reference_words"]) == \
        ("whisper-int8", "per utterance", 2, 18)
    assert (chain["p50_ms"], chain["p95_ms"]) == (pytest.approx(150.0), pytest.approx(195.0))
    assert chain["wer"] == pytest.approx(2 / 18) and chain["verdict"] == "pass"


def test_transcripts_export_has_a_row_per_utterance_with_its_errors(db, tmp_path, monkeypatch, capsys):
    """Before, utterances were readable only on the report's worst-utterances list.  Each row: what was said and
    heard as stored, its time, and its errors counted by hand above (after normalisation: case, punctuation)."""
    monkeypatch.chdir(tmp_path)
    frame, written = _export(db, tmp_path, "transcripts", "csv", capsys)
    assert Path(written["path"]).name == f"{RUN_ID}-transcripts.csv" and written["rows"] == 2
    rows = frame.set_index("utt_id")
    assert list(rows.index) == ["u1", "u2"] and set(rows["chain"]) == {"whisper-int8"}
    assert rows.loc["u1", "reference"] == UTTERANCES[0][1] and rows.loc["u2", "hypothesis"] == UTTERANCES[1][2]
    assert list(rows["total_ms"]) == [100.0, 200.0] and list(rows["rtf"]) == [0.05, 0.1]
    assert list(rows["reference_words"]) == [8, 10]
    assert list(rows["substitutions"]) == [1, 0] and list(rows["deletions"]) == [0, 1]
    assert list(rows["insertions"]) == [0, 0] and list(rows["errors"]) == [1, 1]
    assert list(rows["utterance_wer"]) == [pytest.approx(1 / 8), pytest.approx(1 / 10)]


@pytest.mark.parametrize("what", ["cells", "transcripts", "operators"])
def test_et_v3_with_a_table_other_than_samples_is_one_clear_error(db, tmp_path, monkeypatch, capsys, what):
    """ExecuTorch's v3 records are latency figures: --what cells/transcripts with them wrote latency records and
    dropped the table asked for (before --what cells existed, argparse refused the name)."""
    monkeypatch.chdir(tmp_path)
    assert main(["export", RUN_ID, "--db", str(db), "--what", what, "--format", "et-v3"]) == 2
    err = capsys.readouterr().err
    assert f"--what {what} exports as csv or parquet" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_report_marks_a_whole_run_energy_and_says_why(db, tmp_path):
    """The column was headed "energy (whole run)" for every figure; now a measured-loop figure reads as such and a
    whole-run one is marked in its cell, with the reason on hover (the same figures the cells export holds)."""
    import re

    from harness.report.html import write_report

    page = write_report(db, RUN_ID, tmp_path / "rep").read_text()
    rows = {model: row for row in re.findall(r'<tr id="row-cell-\d+">(.*?)</tr>', page, re.S)
            for model in ("silero", "short") if f">{model}</a>" in row}
    assert ">3 mJ/inference</span>" in rows["silero"] and "measured loop" in rows["silero"]
    assert ">50 mJ/inference (whole run)</span>" in rows["short"]
    assert f"{WHOLE_RUN} ({SHORT_LOOP})" in rows["short"]
    assert ">energy (whole run)</th>" not in page
