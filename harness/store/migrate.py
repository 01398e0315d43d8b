"""Explicit, tested steps from each older schema version to the next.

A database is migrated once, when a harness that reads a newer schema opens it: the file
is first copied beside itself (``NAME.v1.bak``, or ``NAME.v1.1.bak``... when that name is taken) with SQLite's backup API, then every step
runs in one transaction, so a failure leaves the original untouched.  Reads never
backfill anything.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

import numpy as np

from harness.stats import run_values

_V2_CELL_RUNS = """
CREATE TABLE cell_runs (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id), run_index INTEGER NOT NULL, status TEXT NOT NULL,
    reason TEXT NOT NULL, n INTEGER NOT NULL, p50_ms REAL, p95_ms REAL, summary_only INTEGER NOT NULL DEFAULT 0,
    load_ms REAL, first_inference_ms REAL, peak_rss_mb REAL, push_s REAL, cooldown_wait_s REAL,
    throttled INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    extra_json TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (cell_id, run_index)
) WITHOUT ROWID"""


def _v1_to_v2(db: sqlite3.Connection) -> None:
    """Runs: every v1 cell was one run.  Its run row is derived from its samples (or, for
    onnxruntime_perf_test, from the percentiles v1 kept in extra), and the cell_stats cache goes."""
    for statement in (
        "ALTER TABLE cells ADD COLUMN runs INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE cells ADD COLUMN runs_done INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE cells ADD COLUMN settings_json TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE samples ADD COLUMN run_index INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE thermal_samples ADD COLUMN run_index INTEGER NOT NULL DEFAULT 0",
        _V2_CELL_RUNS,
        "DROP TABLE IF EXISTS cell_stats",
    ):
        db.execute(statement)
    settings = {run_id: json.loads(text) for run_id, text in db.execute("SELECT run_id, settings_json FROM runs")}
    cells = db.execute("""SELECT cell_id, run_id, runner, status, reason, warmup_iterations, iterations, load_ms,
                          first_inference_ms, peak_rss_mb, push_s, cooldown_wait_s, throttled, started_at,
                          finished_at, extra_json FROM cells""").fetchall()
    for (cell_id, run_id, runner, status, reason, warmup, iterations, load_ms, first_ms, rss, push_s, cool_s,
         throttled, started, finished, extra_json) in cells:
        values = np.asarray([v for (v,) in db.execute(
            "SELECT latency_ms FROM samples WHERE cell_id=? AND phase='measured'", (cell_id,))], dtype=float)
        extra = json.loads(extra_json)
        summary_only = runner == "android-onnxruntime-perf-test"
        if summary_only:  # v1 stored the mean as its one "sample"; the runner's percentiles were in extra
            p50, p95, n = extra.get("p50_ms"), extra.get("p95_ms"), 0
            db.execute("DELETE FROM samples WHERE cell_id=?", (cell_id,))
        elif values.size:  # the run's percentiles exactly as a run stored today gets them
            run = run_values(values)
            p50, p95, n = run.p50_ms, run.p95_ms, run.n
        else:
            p50 = p95 = None
            n = 0
        db.execute("INSERT INTO cell_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (cell_id, 0, status, reason, n, p50, p95, int(summary_only), load_ms, first_ms, rss, push_s,
                    cool_s, throttled, started, finished, "{}"))
        cell_settings = {**settings.get(run_id, {}), "warmup_iterations": warmup, "iterations": iterations, "runs": 1}
        db.execute("UPDATE cells SET settings_json=? WHERE cell_id=?", (json.dumps(cell_settings), cell_id))


_V2_STATUS_CHECK = "CHECK (status IN ('ok', 'failed', 'timeout', 'crashed'))"
_V3_STATUS_CHECK = "CHECK (status IN ('ok', 'failed', 'timeout', 'crashed', 'lost'))"


def _v2_to_v3(db: sqlite3.Connection) -> None:
    """A cell may be 'lost' (its device stopped answering).  SQLite cannot change a CHECK in place, so the
    cells table is rebuilt from its own definition with the wider CHECK, rows and ids unchanged."""
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='cells'").fetchone()
    if _V2_STATUS_CHECK not in sql:
        raise RuntimeError(f"the cells table is not the v2 one this step knows: {sql}")
    columns = ", ".join(name for _, name, *_ in db.execute("PRAGMA table_info(cells)"))
    db.execute(sql.replace("CREATE TABLE cells", "CREATE TABLE cells_v3", 1).replace(
        "CREATE TABLE IF NOT EXISTS cells", "CREATE TABLE cells_v3", 1).replace(_V2_STATUS_CHECK, _V3_STATUS_CHECK))
    db.execute(f"INSERT INTO cells_v3 ({columns}) SELECT {columns} FROM cells")
    db.execute("DROP TABLE cells")
    db.execute("ALTER TABLE cells_v3 RENAME TO cells")


def _v3_to_v4(db: sqlite3.Connection) -> None:
    """Transcripts of a voice pipeline carry each stage's time; older rows (ASR alone) leave them NULL."""
    for column in ("vad_ms REAL", "llm_ms REAL", "pipeline_ms REAL", "speech_s REAL", "continuation TEXT"):
        db.execute(f"ALTER TABLE transcripts ADD COLUMN {column}")


_V5_CHECKS = """
CREATE TABLE checks (
    run_id TEXT NOT NULL REFERENCES runs(run_id), position INTEGER NOT NULL, baseline_run_id TEXT,
    device_id TEXT NOT NULL, subject TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL,
    data_json TEXT NOT NULL DEFAULT '{}', group_name TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, position)
) WITHOUT ROWID"""


def _v4_to_v5(db: sqlite3.Connection) -> None:
    """A nightly's checks are stored when it judges a run; runs judged before have none (nothing is backfilled:
    the site says which nights it judged itself)."""
    db.execute(_V5_CHECKS)


_V6_PROFILE_RUNS = """
CREATE TABLE profile_runs (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id), profile_index INTEGER NOT NULL, iterations INTEGER NOT NULL,
    latency_json TEXT NOT NULL, operators_ms_json TEXT NOT NULL, notes TEXT NOT NULL,
    PRIMARY KEY (cell_id, profile_index)
) WITHOUT ROWID"""
_V6_OPERATORS = """
CREATE TABLE operators (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id), profile_index INTEGER NOT NULL, position INTEGER NOT NULL,
    name TEXT NOT NULL, backend TEXT NOT NULL, op_type TEXT NOT NULL, calls INTEGER NOT NULL, total_ms REAL NOT NULL,
    median_ms REAL NOT NULL, PRIMARY KEY (cell_id, profile_index, position)
) WITHOUT ROWID"""


def _v5_to_v6(db: sqlite3.Connection) -> None:
    """Cells gain operator profiles (profiling runs after the measured ones); cells measured before have none
    (nothing is backfilled: a report says a cell was not profiled)."""
    db.execute(_V6_PROFILE_RUNS)
    db.execute(_V6_OPERATORS)


# Step from version N to N + 1, keyed by N.
STEPS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6}


def snapshot(db: sqlite3.Connection, path: Path) -> Path:
    """A copy of the database beside it under a temporary name.  Taken before the write lock is
    held: SQLite's backup cannot read a database its own connection is in the middle of writing."""
    taken = path.with_name(f"{path.name}.{os.getpid()}.bak.tmp")
    with sqlite3.connect(taken) as copy:
        db.backup(copy)
    copy.close()
    return taken


def _keep_beside(taken: Path, path: Path, version: int) -> Path:
    """Give the snapshot its kept name, NAME.vN.bak, or NAME.vN.1.bak, ... when that is taken: a file already
    there (the user's own backup, or an earlier migration's) is never overwritten.  ``os.link`` fails rather
    than replace, so two harnesses cannot pick the same free name either."""
    for attempt in range(1000):
        backup = path.with_name(f"{path.name}.v{version}{f'.{attempt}' if attempt else ''}.bak")
        try:
            os.link(taken, backup)
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: the name checked free, then taken
            if backup.exists():
                continue
            taken.replace(backup)
            return backup
        taken.unlink()
        return backup
    raise FileExistsError(errno.EEXIST, "1000 backups of this database exist already", str(backup))


def migrate(db: sqlite3.Connection, path: Path, version: int, target: int, taken: Path | None = None) -> Path:
    """Bring ``db`` from ``version`` to ``target``; return the path of the backup made first
    (``taken``, a :func:`snapshot` the caller made before locking, or a new one).

    Inside a transaction the caller opened (``Store`` holds ``BEGIN IMMEDIATE`` while it re-reads the
    version, so two harnesses opening one old database cannot both migrate it) the steps join that
    transaction; otherwise they run in one of their own."""
    backup = _keep_beside(taken or snapshot(db, path), path, version)
    if db.in_transaction:
        try:
            _steps(db, version, target)
        except BaseException:
            _undo(db, backup)
            raise
        return backup
    db.isolation_level = None  # explicit transaction: DDL and data together, all or nothing
    db.execute("PRAGMA foreign_keys=OFF")  # a table is rebuilt under the rows that refer to it; checked in _steps
    db.execute("BEGIN IMMEDIATE")
    try:
        _steps(db, version, target)
        db.execute("COMMIT")
    except BaseException:
        _undo(db, backup)
        raise
    finally:
        db.isolation_level = ""
        db.execute("PRAGMA foreign_keys=ON")
    return backup


def _undo(db: sqlite3.Connection, backup: Path) -> None:
    """A step failed: the database goes back to what it was, and then the copy made of it is not needed."""
    db.execute("ROLLBACK")
    backup.unlink(missing_ok=True)


def _steps(db: sqlite3.Connection, version: int, target: int) -> None:
    for step in range(version, target):
        STEPS[step](db)
    broken = db.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration left rows pointing nowhere: {broken[:5]}")
    db.execute(f"PRAGMA user_version={target}")
