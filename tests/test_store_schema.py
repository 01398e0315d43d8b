"""The store owns its schema: a v1 database is migrated by explicit steps, a newer one is refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.errors import UserError
from harness.store import Store
from harness.store.db import SCHEMA_VERSION

V1_SCHEMA = (Path(__file__).parent / "data" / "schema_v1.sql").read_text()


def _v1_database(path: Path) -> list[float]:
    """A database as harness 0.1 (schema v1, git 5ef9e3c) wrote it: one host cell, one ORT summary cell."""
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA)
    con.execute("PRAGMA user_version=1")
    con.execute("INSERT INTO runs VALUES ('r1','lab','plan.yaml','ab','name: lab','{}',?,'0.1.0','h',"
                "'2026-11-20T02:30:00+00:00','2026-11-20T02:40:00+00:00','complete')",
                (json.dumps({"threads": 1, "warmup_iterations": 2, "iterations": 4}),))
    for sha in ("a" * 64, "b" * 64):
        con.execute("INSERT INTO artifacts VALUES (?,'m','vad','onnx','ort-cpu','fp32',10,'{}','[]')", (sha,))
    cell = ("INSERT INTO cells (run_id, cell_key, device_id, artifact_sha256, artifact_path, task, runner, status, "
            "reason, log, warmup_iterations, iterations, load_ms, first_inference_ms, peak_rss_mb, extra_json, push_s, "
            "cooldown_wait_s, cooldown_note, throttled, started_at, finished_at) "
            "VALUES ('r1',?,?,?,'m.onnx','latency',?,'ok','','',2,4,5,6,7,?,0,0,'',0,'t0','t1')")
    con.execute(cell, ("host/a/latency", "host", "a" * 64, "host-python", "{}"))
    samples = [3.0, 1.0, 4.0, 2.0]
    con.executemany("INSERT INTO samples VALUES (1,'measured',?,?)", list(enumerate(samples)))
    con.execute("INSERT INTO samples VALUES (1,'warmup',0,9.0)")
    con.execute(cell, ("phone/b/latency", "phone", "b" * 64, "android-onnxruntime-perf-test",
                       json.dumps({"p50_ms": 2.5, "p95_ms": 3.5, "mean_ms": 2.7})))
    con.execute("INSERT INTO samples VALUES (2,'measured',0,2.7)")  # v1 stored the mean as a 'sample'
    con.execute("INSERT INTO cell_stats VALUES (1,4,2.5,3.85)")
    con.commit()
    con.close()
    return samples


def test_v1_database_is_migrated_with_a_backup_and_nothing_lost(tmp_path):
    db = tmp_path / "old.db"
    samples = _v1_database(db)
    # Every schema line and row of the v1 file, read with SQLite itself: the backup must hold all of them
    # (catches a backup taken with the v1 schema but rows lost, e.g. one copied after a step had begun).
    before = list(sqlite3.connect(db).iterdump())
    assert sum(line.startswith('INSERT INTO "samples"') for line in before) == 6
    with Store(db) as store:
        assert store.migrated_from == 1
        backup = store.backup_path
        cells = {c.cell_key: c for c in store.cells("r1")}
    assert backup.exists() and sqlite3.connect(backup).execute("PRAGMA user_version").fetchone()[0] == 1
    assert list(sqlite3.connect(backup).iterdump()) == before
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "cell_stats" not in tables and "cell_runs" in tables
    host, phone = cells["host/a/latency"], cells["phone/b/latency"]
    # Every v1 sample survives, as run 0, and the one run's median is the median of those samples.
    assert sorted(host.samples_ms) == sorted(samples) and set(host.samples_run) == {0}
    assert list(host.warmup_ms) == [9.0] and host.runs_done == host.runs_planned == 1
    (run,) = host.runs
    assert run["n"] == 4 and run["p50_ms"] == pytest.approx(np.median(samples), abs=0.3)
    assert host.settings["threads"] == 1 and host.settings["runs"] == 1
    # The ORT cell becomes summary-only with the runner's own P50/P95, not the mean v1 stored as a sample.
    assert phone.summary_only and len(phone.samples_ms) == 0
    assert (phone.runs[0]["p50_ms"], phone.runs[0]["p95_ms"]) == (2.5, 3.5)


def test_v2_database_gains_the_lost_status_with_every_row_and_id_kept(tmp_path):
    from harness.store.migrate import migrate

    db = tmp_path / "v2.db"
    _v1_database(db)
    con = sqlite3.connect(db)
    migrate(con, db, 1, 2)
    with pytest.raises(sqlite3.IntegrityError):  # v2 had no word for a lost device
        con.execute("UPDATE cells SET status='lost' WHERE cell_id=1")
    tables = ("cells", "cell_runs", "samples", "thermal_samples", "artifacts", "runs")
    before = {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    con.close()
    with Store(db) as store:
        assert store.migrated_from == 2 and store.backup_path.name == "v2.db.v2.bak"
    con = sqlite3.connect(db)
    assert {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables} == before
    con.execute("PRAGMA foreign_keys=ON")
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.execute("UPDATE cells SET status='lost' WHERE cell_id=1")
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("UPDATE cells SET status='misplaced' WHERE cell_id=1")


def test_v3_transcripts_gain_the_pipeline_columns_with_old_rows_left_null(tmp_path):
    from harness.store.migrate import migrate

    db = tmp_path / "v3.db"
    _v1_database(db)
    con = sqlite3.connect(db)
    migrate(con, db, 1, 3)
    con.execute("INSERT INTO transcripts VALUES (1,'u1','a b','a b',3,1.0,2.0,0.5,4.5,2.0,0.002)")
    con.commit()
    con.close()
    with Store(db) as store:
        assert store.migrated_from == 3
    con = sqlite3.connect(db)
    row = con.execute("SELECT utt_id, total_ms, vad_ms, llm_ms, pipeline_ms, speech_s, continuation FROM transcripts")
    assert row.fetchall() == [("u1", 4.5, None, None, None, None, None)]


def test_reopening_a_migrated_database_does_not_migrate_again(tmp_path):
    db = tmp_path / "old.db"
    _v1_database(db)
    Store(db).close()
    with Store(db) as store:
        assert store.migrated_from is None and store.backup_path is None


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    db = tmp_path / "new.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE runs (run_id TEXT)")
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(UserError, match=f"schema version {SCHEMA_VERSION + 1}.*left untouched"):
        Store(db)
    assert db.read_bytes() == before


def _open_at_once(db: Path, barrier, results) -> None:
    barrier.wait()  # every process reaches Store() at the same moment: the race CI once lost
    try:
        with Store(db) as store:
            results.put(("ok", store.migrated_from))
    except BaseException as exc:  # reported to the parent, which fails the test with it
        results.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow  # several harness processes on one database
@pytest.mark.parametrize("start", ["new", "v1"])
def test_harnesses_opening_one_database_at_once_all_succeed_and_one_migrates(tmp_path, start):
    import multiprocessing

    context = multiprocessing.get_context("fork")  # no re-import: the processes really start together
    for trial in range(4):
        db = tmp_path / f"{start}{trial}.db"
        if start == "v1":
            _v1_database(db)
        barrier, results = context.Barrier(6), context.Queue()
        procs = [context.Process(target=_open_at_once, args=(db, barrier, results)) for _ in range(6)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert [kind for kind, _ in outcomes] == ["ok"] * 6, outcomes
        migrated = [m for _, m in outcomes if m is not None]
        assert migrated == ([1] if start == "v1" else []), outcomes
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_v4_database_gains_the_checks_table_and_keeps_its_runs(tmp_path):
    """v4 -> v5: a nightly's checks are stored; an older database has none and gains the empty table (fails
    without the _v4_to_v5 step: the store's table comparison refuses the migrated database, or no checks table)."""
    from harness.report.verdict import Check
    from harness.store.migrate import migrate

    db = tmp_path / "v4.db"
    _v1_database(db)
    con = sqlite3.connect(db)
    migrate(con, db, 1, 4)
    con.close()
    with Store(db) as store:
        assert store.migrated_from == 4 and store.stored_verdicts() == {}
        assert [r.run_id for r in store.every_run()] == ["r1"]
        store.record_checks("r1", None, [Check("phone", "m vad", "history", "regression", "stepped", {"ratio": 1.5},
                                               group="vad")])
        store.record_checks("r1", "r0", [Check("phone", "m vad", "latency", "pass", "same", group="vad")])
    with Store(db) as store:
        (verdict,) = store.stored_verdicts().values()
    assert verdict.baseline_run_id == "r0" and [(c.kind, c.status, c.group) for c in verdict.checks] == [
        ("latency", "pass", "vad")]  # judged again: replaced, not added to


def test_migration_never_overwrites_a_file_with_the_backup_name(tmp_path):
    """The user's own NAME.v3.bak stays byte for byte; the backup takes the next free name.  Fails with the
    snapshot renamed onto NAME.v3.bak (replace), which destroyed the user's file."""
    from harness.store.migrate import migrate

    db = tmp_path / "h.db"
    _v1_database(db)
    con = sqlite3.connect(db)
    migrate(con, db, 1, 3)
    con.close()
    (tmp_path / "h.db.v3.bak").write_text("MY OWN BACKUP\n")
    users = (tmp_path / "h.db.v3.bak").read_bytes()
    with Store(db) as store:
        assert store.migrated_from == 3 and store.backup_path.name == "h.db.v3.1.bak"
    assert (tmp_path / "h.db.v3.bak").read_bytes() == users
    assert sqlite3.connect(store.backup_path).execute("PRAGMA user_version").fetchone()[0] == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_a_command_that_only_reads_never_migrates_and_names_the_command_that_does(tmp_path, capsys):
    # Catches: 'harness runs' migrating (and writing a backup beside) an older database; 'harness migrate' is
    # the command the refusal names, and it does migrate.
    from harness.cli import main
    from harness.store.migrate import migrate

    db = tmp_path / "h.db"
    _v1_database(db)
    con = sqlite3.connect(db)
    migrate(con, db, 1, 3)
    con.close()
    for old in tmp_path.glob("*.bak"):
        old.unlink()
    before = db.read_bytes()
    assert main(["runs", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "schema version 3" in err and f"harness migrate --db {db}" in err, err
    assert db.read_bytes() == before and not list(tmp_path.glob("*.bak"))
    assert main(["migrate", "--db", str(db)]) == 0
    assert "from schema version 3" in capsys.readouterr().err and (tmp_path / "h.db.v3.bak").is_file()
    assert main(["runs", "--db", str(db)]) == 0 and "r1" in capsys.readouterr().out


@pytest.mark.slow  # several harness processes on one database
def test_a_later_run_of_the_same_bytes_under_another_name_does_not_relabel_earlier_runs(tmp_path, model_dir):
    """The artifacts table holds one row per sha256; a later run of the same bytes as 'copy.onnx' without a
    manifest rewrote the model, stage and budget of every earlier run, in reports, history and exports (an
    outside tester).  Each cell keeps the identity it was measured with."""
    import shutil

    from harness.store import Store
    from tests.helpers import copy_model, measure, write

    write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    copy_model(model_dir, "tiny.onnx", tmp_path / "a", manifest={"model": "silero-vad", "stage": "vad",
                                                               "backend": "ort-cpu", "quantization": "fp32"})
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "tiny.onnx", tmp_path / "b" / "copy.onnx")  # the same bytes, no manifest
    settings = "inventory: devices.yaml\nwarmup_iterations: 0\niterations: 3\nruns: 1\n"
    first = measure(tmp_path / "a.yaml", tmp_path / "h.db", "name: a\nartifacts: [a/tiny.onnx]\n" + settings)
    measure(tmp_path / "b.yaml", tmp_path / "h.db", "name: b\nartifacts: [b/copy.onnx]\n" + settings)
    with Store(tmp_path / "h.db") as store:
        (cell,) = store.cells(first.outcome.run_id)
        history = store.history("a")
    assert (cell.artifact["model"], cell.artifact["stage"]) == ("silero-vad", "vad"), cell.artifact
    assert {(h["model"], h["stage"]) for h in history} == {("silero-vad", "vad")}, history
    from harness.store.export import samples_frame

    with Store(tmp_path / "h.db") as store:
        frame = samples_frame(store, first.outcome.run_id)
    assert set(zip(frame["model"], frame["stage"])) == {("silero-vad", "vad")}


def test_v5_database_gains_the_profile_tables_and_keeps_its_cells(tmp_path):
    """v5 -> v6: cells gain operator profiles; cells measured before have none (fails without the _v5_to_v6 step:
    the store's table comparison refuses the migrated database, or reading a cell finds no operators table)."""
    from harness.store.migrate import migrate

    db = tmp_path / "v5.db"
    _v1_database(db)
    con = sqlite3.connect(db)
    migrate(con, db, 1, 5)
    con.close()
    with Store(db) as store:
        assert store.migrated_from == 5
        cells = store.cells("r1")
    assert [c.cell_key for c in cells] == ["host/a/latency", "phone/b/latency"] and all(c.profiles == [] for c in cells)
    con = sqlite3.connect(db)
    assert {"profile_runs", "operators"} <= {n for (n,) in con.execute("SELECT name FROM sqlite_master")}


def test_a_later_run_of_the_same_bytes_keeps_each_runs_own_build_facts(tmp_path):
    """The artifacts table's INSERT OR REPLACE let a later run of a byte-identical copy with no manifest rewrite the
    first run's build facts: its report then showed "Inferred build facts" and lost the zoo manifest's source (an
    outside tester).  Each run keeps the facts it ran with; a cell stored before cells kept them reads the first
    row, which a later run no longer rewrites."""
    from harness.devices.base import DeviceFacts
    from harness.nightly.synthetic import SyntheticBuild
    from harness.run.cell import CellResult
    from harness.runners.base import Measurement, RunSettings

    class ZooBuild(SyntheticBuild):
        def manifest_dict(self) -> dict:
            return {"model": self.model, "stage": self.stage, "source": {"weights": "hf:snakers4/silero-vad"}}

    sha = "f" * 64
    zoo = ZooBuild(sha, "silero-vad", "vad", "fp32", path=Path("a/tiny.pte"))
    copy = SyntheticBuild(sha, "copy", "vad", "fp32", path=Path("b/copy.pte"), inferred=["model", "stage"])

    def one_run(store, build, name):
        spec = SimpleNamespace(key=f"host/{name}", device=SimpleNamespace(id="host"), artifact=build, task="latency",
                               runner="host-ort", chain=None,
                               settings=RunSettings(warmup_iterations=0, iterations=1, timeout_s=1))
        store.record_artifact(build)
        run_id = store.create_run(name, Path(f"{name}.yaml"), "0" * 64, {}, {}, plan_text=name)
        store.record_device(run_id, DeviceFacts("host", "host", False, {}), {})
        store.record_run(run_id, spec, 0, CellResult(spec.key, "ok", started_at="t", finished_at="t",
                                                     measurement=Measurement(samples_ms=[1.0])))
        store.set_run_status(run_id, "complete")
        return run_id

    with Store(tmp_path / "h.db", durable=False) as store:
        first = one_run(store, zoo, "a")
        second = one_run(store, copy, "b")
        store.record_skipped(second, "phone", sha, "no backend")
        (a,), (b,) = store.cells(first), store.cells(second)
        # A build the later run skipped on a device is named as that run measured it elsewhere.
        assert [(r["model"], r["sha256"]) for r in store.skipped(second)] == [("copy", sha)]
        # An older cell (no build facts of its own) reads the artifacts row: the first run's, never rewritten.
        store.db.execute("UPDATE cells SET extra_json='{}' WHERE run_id=?", (first,))
        (legacy,) = store.cells(first)
    assert (a.artifact["inferred"], a.artifact["source"]) == ([], {"weights": "hf:snakers4/silero-vad"})
    assert (b.artifact["inferred"], b.artifact["source"]) == (["model", "stage"], None)
    assert (legacy.artifact["inferred"], legacy.artifact["source"]) == ([], {"weights": "hf:snakers4/silero-vad"})
