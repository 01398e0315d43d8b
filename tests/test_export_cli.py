"""`harness export`'s output: -o - is CSV on stdout, the format follows -o's suffix, and an empty operators export
says why (profiling off).  The run is written through the store's API; expected values are worked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.devices.base import DeviceFacts
from harness.nightly.synthetic import SyntheticBuild
from harness.run.cell import CellResult
from harness.runners.base import Measurement
from harness.store import Store
from tests.test_export_tables import _spec

RUN_ID = "export-cli"
SAMPLES_MS = [10.0, 20.0, 30.0]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """One run measured with profile_runs 0: one cell, one run of one warm-up and three measured iterations."""
    db = tmp_path_factory.mktemp("export-cli") / "h.db"
    build = SyntheticBuild("e" * 64, "silero", "vad", "fp32")
    with Store(db, durable=False) as store:
        store.record_artifact(build)
        store.create_run("cli", Path("t.yaml"), "0" * 64, {}, {"profile_runs": 0, "runs": 1}, run_id=RUN_ID,
                         plan_text="t")
        store.record_device(RUN_ID, DeviceFacts("phone-1", "android", True, {}), {})
        spec = _spec(build, runs=1)
        store.record_run(RUN_ID, spec, 0, CellResult(spec.key, "ok", started_at="t", finished_at="t",
                                                     measurement=Measurement(samples_ms=SAMPLES_MS, warmup_ms=[99.0])))
        store.set_run_status(RUN_ID, "complete")
    return db


def test_dash_writes_the_csv_to_stdout_and_no_file(db, tmp_path, monkeypatch, capsys):
    # Catches: -o - writing a file literally named "-".
    monkeypatch.chdir(tmp_path)
    assert main(["export", RUN_ID, "--db", str(db), "-o", "-"]) == 0
    out, err = capsys.readouterr()
    assert not (tmp_path / "-").exists() and list(tmp_path.iterdir()) == []
    from io import StringIO

    frame = pd.read_csv(StringIO(out))
    assert sorted(frame.loc[frame["phase"] == "measured", "latency_ms"]) == SAMPLES_MS
    assert list(frame.loc[frame["phase"] == "warmup", "latency_ms"]) == [99.0]
    assert "4 samples written to stdout" in err


def test_the_format_follows_the_outputs_suffix(db, tmp_path, monkeypatch, capsys):
    # Catches: -o x.parquet without --format silently writing CSV text into the .parquet file.
    monkeypatch.chdir(tmp_path)
    assert main(["export", RUN_ID, "--db", str(db), "-o", "x.parquet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "parquet"
    assert (tmp_path / "x.parquet").read_bytes()[:4] == b"PAR1"  # Parquet's magic number
    assert len(pd.read_parquet(tmp_path / "x.parquet")) == 4
    # No suffix that names a format: CSV when --format says so.
    assert main(["export", RUN_ID, "--db", str(db), "-o", "x.txt", "--format", "csv"]) == 0
    assert len(pd.read_csv(tmp_path / "x.txt")) == 4


@pytest.mark.parametrize("name", ["z.json", "noext"])
def test_an_output_whose_suffix_names_no_table_format_is_refused_without_format(db, tmp_path, monkeypatch, capsys,
                                                                                 name):
    # Catches: -o z.json / -o noext silently writing CSV under a name that says otherwise (or nothing).
    monkeypatch.chdir(tmp_path)
    assert main(["export", RUN_ID, "--db", str(db), "-o", name]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--format" in err and ".csv" in err and ".parquet" in err
    assert list(tmp_path.iterdir()) == []


def test_an_empty_transcripts_export_says_the_run_has_no_transcription_cells(db, tmp_path, monkeypatch, capsys):
    # Catches: "0 transcripts written" and a header-only file with no word why (the run measured latency only).
    monkeypatch.chdir(tmp_path)
    assert main(["export", RUN_ID, "--db", str(db), "--what", "transcripts"]) == 0
    err = capsys.readouterr().err
    assert "0 transcripts written" in err and "note: " in err and "no transcription cells" in err


def test_an_empty_operators_export_says_profiling_was_off(db, tmp_path, monkeypatch, capsys):
    # Catches: a header-only file and "0 operators written" with no word that the run was not profiled.
    monkeypatch.chdir(tmp_path)
    assert main(["export", RUN_ID, "--db", str(db), "--what", "operators"]) == 0
    err = capsys.readouterr().err
    assert "0 operators written" in err and "profile_runs: 0 (profiling off)" in err
