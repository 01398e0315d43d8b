"""SQLite results store: the only place in the harness that runs SQL.

A cell is measured as several runs (processes or runner invocations).  Each finished run
(its row, every sample, its thermal series) is committed in one transaction the moment
it finishes, so an interrupted run loses at most the run in flight.  Reads return typed
records.  Cell-level statistics are computed by the caller from the raw samples and the
runs' own percentiles (the P50/P95 of each run, which for a summary-only runner are all
there is), so a better estimator can re-read old nights.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__
from harness.clock import utc_now
from harness.errors import UserError
from harness.stats import percentile, run_values
from harness.thermal.energy import RunEnergy, cell_energy

SCHEMA_VERSION = 6
LOCK_WAIT_S = 30.0  # how long a harness waits for another one writing the same database
# Where a database path comes from (harness.project): a fix names all three, as this module is not told which.
DB_SETTING = "--db (or HARNESS_DB, or db in harness.toml)"


def damaged(path: Path, detail: str) -> UserError:
    detail = " ".join(detail.replace("*** in database main ***", "").split())  # quick_check's report, on one line
    return UserError(f"the results database is damaged ({detail}); nothing more was written to it.", path=path,
                     fix=f"recover what it holds with: sqlite3 {path} .recover | sqlite3 recovered.db (sqlite3 "
                         "3.41 or newer: Debian 12's 3.40 fails at .recover; there, '.dump' instead of '.recover' "
                         "saves the tables it can still read), then pass --db recovered.db (or a new file name to "
                         "start afresh).")


def store_fault(exc: BaseException, path: Path | None) -> UserError | None:
    """The one line a user sees when the results database cannot be read or written (damaged, read-only,
    locked, full, over a file-size limit, or a failing disk), or None for an error that is a harness bug."""
    text = str(exc)
    where = path or "the results database"
    if isinstance(exc, UnicodeDecodeError):  # a table's name in the schema that is no longer UTF-8
        return damaged(where, f"its schema holds bytes that are not UTF-8: {exc.reason}")
    if isinstance(exc, sqlite3.IntegrityError) or not isinstance(exc, sqlite3.DatabaseError):
        return None
    if "malformed" in text or "Could not decode to UTF-8" in text:  # the second: a text cell's bytes changed
        return damaged(where, text)
    if "readonly" in text or "unable to open" in text:
        return UserError(f"cannot open the results database for writing ({text}): its file or folder is read-only "
                         "or out of reach.", path=where,
                         fix="make it writable (mount it read-write, check permissions), or pass --db with a "
                             "writable place.")
    if "locked" in text:
        return UserError(f"another process kept the database locked for longer than the harness waits "
                         f"({LOCK_WAIT_S:.0f} s); nothing stored was lost.", path=where,
                         fix="wait for it to finish, or give this run its own --db.")
    if "full" in text or "disk I/O error" in text:
        return UserError(f"the database could not be written ({text}): its disk is full, a file-size limit "
                         "(ulimit -f) was reached, or the disk failed; every run finished before this is stored.",
                         path=where, fix="free space on that disk or raise the limit ('df -h', 'ulimit -f').")
    return None


def _loads(text: str):
    """A JSON column's value.  The harness wrote it as JSON: text that no longer parses is damage, raised as
    SQLite raises its own (store_fault turns it into one line)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise sqlite3.DatabaseError(f"database disk image is malformed: a stored JSON value does not parse "
                                    f"({exc})") from None


def _statements(script: str) -> list[str]:
    """The complete SQL statements of ``script``, so they can run inside one transaction
    (``executescript`` would commit first)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


_SCHEMA_STATEMENTS = _statements((Path(__file__).with_name("schema.sql")).read_text())


def _schema_columns() -> dict[str, set[str]]:
    """Each table's columns as schema.sql makes them (read once, from an in-memory database); a set, since a
    migrated table may hold them in another order."""
    if not _SCHEMA_COLUMNS:
        memory = sqlite3.connect(":memory:")
        for statement in _SCHEMA_STATEMENTS:
            memory.execute(statement)
        for (table,) in memory.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            _SCHEMA_COLUMNS[table] = {row[1] for row in memory.execute(f"PRAGMA table_info({table})")}
        memory.close()
    return _SCHEMA_COLUMNS


_SCHEMA_COLUMNS: dict[str, set[str]] = {}


def _until_unlocked(step, wait_s: float = LOCK_WAIT_S):
    """Run ``step``, retrying while another connection holds the lock it needs.  SQLite's busy
    handler does not cover every case (a journal-mode switch, or two connections that both hold a
    read lock and want to write, get SQLITE_BUSY at once), so this waits out the rest."""
    import random
    import time

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.01, 0.1))


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    plan_name: str
    plan_path: str
    plan_sha256: str
    plan_text: str
    budgets: dict[str, float | None]
    settings: dict[str, Any]
    harness_version: str
    controller_host: str
    started_at: str
    finished_at: str | None
    status: str


@dataclass(frozen=True)
class StoredCheck:
    """One check of a nightly's verdict as stored (the fields of ``harness.report.verdict.Check``)."""

    device_id: str
    subject: str
    kind: str
    status: str
    detail: str
    data: dict[str, Any]
    group: str


@dataclass(frozen=True)
class StoredVerdict:
    """What a nightly judged a run on: its baseline and every check, in order."""

    baseline_run_id: str | None
    checks: list[StoredCheck]


@dataclass
class CellRecord:
    cell_id: int
    run_id: str
    cell_key: str
    device_id: str
    task: str
    runner: str
    status: str
    reason: str
    log: str
    artifact: dict[str, Any]  # sha256, model, stage, format, backend, quantization, size_bytes, path, inferred
    warmup_iterations: int
    iterations: int
    load_ms: float | None
    first_inference_ms: float | None
    peak_rss_mb: float | None
    extra: dict[str, Any]
    push_s: float | None
    cooldown_wait_s: float | None
    cooldown_note: str
    throttled: bool
    started_at: str
    finished_at: str
    runs_planned: int = 1
    runs_done: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)  # cell_runs rows, by run_index
    samples_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    samples_run: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))  # run index of each sample
    warmup_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    thermals: list[dict[str, Any]] = field(default_factory=list)
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    profiles: list = field(default_factory=list)  # harness.profile.Profile per profiling run (v6), in order

    @property
    def label(self) -> str:
        """How the cell is named everywhere: its build, or for a transcription cell its chain (the cell's artifact
        is the chain's decoder, which names the build in results but is not what ran: a failed chain read as
        its decoder build)."""
        chain = self.extra.get("chain") if self.task == "transcribe" else None
        if chain and chain.get("name"):
            return f"chain {chain['name']}"
        a = self.artifact
        return f"{a['model']} {a['stage']} {a['quantization']} {a['backend']}"

    def run_values(self) -> list:
        """Each successful run's own P50/P95 (stats.RunValues), in run order."""
        from harness.stats import RunValues

        return [RunValues(r["p50_ms"], r["p95_ms"], r["n"]) for r in self.runs
                if r["status"] == "ok" and r["p50_ms"] is not None]

    def run_quantile_ms(self, q: float) -> dict[int, float]:
        """Each successful run's own q-th percentile (Harrell-Davis) from its iterations, by run index;
        empty for a summary-only cell (the runner printed only its own percentiles)."""
        from harness.stats.summary import hd_percentile

        ok = {r["run_index"] for r in self.runs if r["status"] == "ok"}
        return {int(i): hd_percentile(self.samples_ms[self.samples_run == i], q)
                for i in np.unique(self.samples_run) if int(i) in ok}

    @property
    def summary_only(self) -> bool:
        return bool(self.runs) and all(r["summary_only"] for r in self.runs)


RUN_ID_FORM = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")  # what new_run_id makes
# The whole content of every run lock file (see Store.claim_run): a file of that name without it is someone else's.
CLAIM_MARKER = b"harness run lock: removed by the harness once no process holds it\n"
CLAIM_RETRIES, CLAIM_RETRY_S = 5, 0.05


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, typeable and unique enough: ``20261121-143000-7f3a``."""
    import secrets

    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


# What a build was measured as (its manifest, or what was inferred), kept with each cell: the artifacts table holds
# one row per sha256, which the newest run's manifest updates, and a later run naming the same bytes otherwise
# (a copy under another name) relabelled every earlier run's model, stage, backend and budget.
IDENTITY_KEYS = ("model", "stage", "format", "backend", "quantization")


def identity_columns(cell: str = "c", artifact: str = "a") -> str:
    """SQL: the identity columns of a cell as measured (its own record first, the artifacts row for older cells)."""
    return ", ".join(f"COALESCE(json_extract({cell}.extra_json, '$.identity.{k}'), {artifact}.{k}) AS {k}"
                     for k in IDENTITY_KEYS)


PROFILED_KEY = "profiled"  # in cells.extra_json: the cell's profiling step ended, with this many profiles
PROFILING_FAILURE_KEY = "profiling_failure"  # in cells.extra_json: why its profiling runs stopped, when one failed

ENERGY_KEY = "energy"  # in cell_runs.extra_json and cells.extra_json: a RunEnergy as a dict

# A cell measured in several runs keeps its first failed run's reason behind "run N of M: " (Store._update_cell).
RUN_OF_RUNS = re.compile(r"run \d+ of \d+: ")


def reason_of_run(cell_reason: str) -> str:
    """A stored cell's reason as its failed run gave it, without the "run N of M: " the cell puts before it: what a
    reader that looks at how the reason begins ("phone busy: ...") has to read."""
    prefix = RUN_OF_RUNS.match(cell_reason)
    return cell_reason[prefix.end():] if prefix else cell_reason


def run_energy_of(run: dict[str, Any]) -> RunEnergy | None:
    """The energy of a stored run (a ``CellRecord.runs`` entry), None when its device reported no battery."""
    stored = (run.get("extra") or {}).get(ENERGY_KEY)
    return RunEnergy.from_dict(stored) if stored else None


def cell_energy_of(cell: "CellRecord") -> RunEnergy | None:
    """The energy of a stored cell (the median of its runs'), None when its device reported no battery."""
    stored = cell.extra.get(ENERGY_KEY)
    return RunEnergy.from_dict(stored) if stored else None


BUILD_FACTS_KEY = "build"  # in cells.extra_json: the build's manifest and inferred fields as this cell ran it


def build_facts(artifact) -> dict:
    """What a cell keeps of its build beside its identity: the manifest it ran with (where the weights came from,
    its recipe) and which fields were inferred from the file name.  The artifacts table keeps the first run's
    row per sha256; a later run of the same bytes named otherwise (a copy with no manifest) has its own here."""
    manifest = getattr(artifact, "manifest_dict", None)
    return {"manifest": manifest() if manifest else {}, "inferred": list(getattr(artifact, "inferred", None) or [])}


def _cell_extra(spec, measurement) -> dict:
    """Runner figures, the build's identity and facts as measured, and for a transcription cell which chain and
    corpus."""
    extra = dict(measurement.extra) if measurement else {}
    extra["identity"] = {key: getattr(spec.artifact, key) for key in IDENTITY_KEYS}
    extra[BUILD_FACTS_KEY] = build_facts(spec.artifact)
    if spec.chain is not None:
        extra["chain"] = {"name": spec.chain.name, "corpus": spec.chain.corpus.name, "limit": spec.chain.limit,
                          **{role: {"sha256": a.sha256, "path": str(a.path), "quantization": a.quantization,
                                    "backend": a.backend, "size_bytes": a.size_bytes}
                             for role, a in spec.chain.parts.items()}}
    return extra


def _utf8_only(row: tuple, path: Path, what: str) -> tuple:
    """``row`` when all its text is UTF-8 (the store's one text encoding); else a UserError naming ``path``.  A file
    name that is not UTF-8 (caf\\xe9.onnx) or a manifest's lone surrogate ("b\\ud800x") would otherwise fail mid-write."""
    for value in row:
        if isinstance(value, str) and _escaped(value) != value:
            raise UserError(f"'{_escaped(value)}' is not UTF-8 text, and the results database stores UTF-8 only; "
                            "nothing was stored.", path=_escaped(str(path)),
                            fix=f"rename {what} (and the names and fields in it) with UTF-8 characters only.")
    return row


def _escaped(text: str) -> str:
    """``text`` with what UTF-8 cannot encode shown escaped: a file name's undecodable byte as \\xe9, a lone
    surrogate as \\ud800."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


_NOT_A_FILE = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
               (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def refuse_non_file(path: Path) -> None:
    """A --db that exists but is not a regular file (a folder, a FIFO, a device) is named as such before SQLite
    opens it: SQLite would report a permission or disk fault, and opening a FIFO blocks until a writer comes."""
    try:
        mode = os.stat(path).st_mode  # stat, never open: a FIFO is not opened
    except (OSError, ValueError):
        return  # missing or out of reach: the open says so
    if stat.S_ISREG(mode):
        return
    from shlex import quote

    kind = next((name for test, name in _NOT_A_FILE if test(mode)), "not a regular file")
    if stat.S_ISDIR(mode):
        inside = sorted(p.name for p in path.glob("*.db") if p.is_file())[:3]
        fix = (f"give the database file inside it: --db {' or --db '.join(quote(str(path / n)) for n in inside)}."
               if inside else f"give a database file's path, e.g. --db {quote(str(path / 'harness.db'))} ('harness "
                              "run PLAN --db PATH' starts a new one).")
    else:
        fix = (f"point {DB_SETTING} at a harness results database file, or at a new file name for 'harness run "
               "PLAN --db PATH' to start one.")
    raise UserError(f"this is {kind}, not a SQLite database file; nothing was read or written.", path=path, fix=fix)


def _unmigratable(path: Path, version: int, exc: BaseException) -> UserError:
    """The tables are not those of the version the file says it has (its user_version was changed, or the file
    was edited by hand): no step of the migration fits them."""
    import shlex

    return UserError(f"this database says it has schema version {version}, but its tables are not those of version "
                     f"{version} ({exc}); it was left untouched.", path=path,
                     fix=f"restore it from a backup; or, if its tables are already version {SCHEMA_VERSION} and only "
                         f"the number was changed, set it back with: sqlite3 {shlex.quote(str(path))} 'PRAGMA user_version="
                         f"{SCHEMA_VERSION}'.")


def refuse_missing(path: Path, creates_none: str = "a command that only reads creates none") -> None:
    """A command that only reads (or migrate) never creates a database: a typo in --db would leave an empty one
    (and its folders) behind, and the next command would read that instead of the user's results.
    ``creates_none`` says why this command made none."""
    if not path.is_file():
        raise UserError(f"no results database here ({creates_none}).", path=path,
                        fix="check the --db path; 'harness run PLAN --db PATH' creates a database.")


def _refuse_empty(path: Path) -> None:
    """A read-only open of a missing or 0-byte file: SQLite would read it as an empty database (and a writing
    open would fill it with the schema)."""
    refuse_missing(path)
    if path.stat().st_size == 0:
        raise UserError("not a harness results database (an empty file); it was left untouched.", path=path,
                        fix=f"point {DB_SETTING} at a harness database, or remove the empty file and let 'harness run "
                            "PLAN --db PATH' create one.")


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(path, timeout=LOCK_WAIT_S)
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        # Opened as usual (SQLite then tidies NAME-wal and NAME-shm away on close, as a writer does), but
        # query_only: not one byte of the file changes.
        db = sqlite3.connect(path, timeout=LOCK_WAIT_S)
        db.execute("PRAGMA query_only=ON")
        return db
    from urllib.parse import quote

    wal = path.with_name(f"{path.name}-wal")
    # A WAL database on a read-only disk cannot get its index file (NAME-shm) made beside it; when no log is
    # waiting to be read (no NAME-wal) and nobody can write that folder, the file is read as it is (immutable).
    frozen = not os.access(path.parent, os.W_OK) and not (wal.exists() and wal.stat().st_size)
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro{'&immutable=1' if frozen else ''}",
                           uri=True, timeout=LOCK_WAIT_S)


class Store:
    """A results database.  Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path, durable: bool = True, read_only: bool = False) -> None:
        """Open (creating or migrating) the database at ``path``.  ``durable=False`` skips fsync: only
        for scratch databases that a crash may lose (synthetic histories for benchmarks and tests).
        ``read_only``: for commands that only read; the file is opened read-only (it may sit on a read-only
        disk) and never created, written or migrated."""
        self.path = path
        self.migrated_from: int | None = None  # the schema version this open migrated from, if it did
        self.backup_path: Path | None = None
        self._claims: list[tuple[int, Path]] = []  # runs this process measures (see claim_run)
        refuse_non_file(path)
        if read_only:
            _refuse_empty(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = _connect(path, read_only)
            self.db.row_factory = sqlite3.Row
            version, tables = self._shape()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            if "disk I/O error" in str(exc) or "full" in str(exc):
                # A WAL database needs room beside it for its index (NAME-shm) before the first read.
                import shutil

                free_kb = shutil.disk_usage(path.parent).free // 1024
                raise UserError(f"cannot open the results database ({exc}); its disk has {free_kb} KB of space "
                                "free. Nothing stored was changed.", path=path,
                                fix="free space on that disk or raise the file-size limit ('ulimit -f'), or point "
                                    f"{DB_SETTING} at a database on another disk.") from None
            raise store_fault(exc, path) or UserError(
                f"not a harness results database ({exc}).", path=path,
                fix=f"point {DB_SETTING} at a harness database or at a new file name.") from None
        self._refuse_foreign(version, tables)
        if tables:
            self._refuse_damaged(version)
        if read_only:
            self._refuse_unmigrated(version, tables)
            return
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # persistent: set once per file
            _until_unlocked(lambda: self.db.execute("PRAGMA journal_mode=WAL").fetchall())
        self.db.execute("PRAGMA foreign_keys=ON")
        if not durable:
            self.db.execute("PRAGMA synchronous=OFF")
        if not tables or version < SCHEMA_VERSION:  # a current database is opened without a single write
            self._create_or_migrate(old=bool(tables))

    def _shape(self) -> tuple[int, set[str]]:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        return version, {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _refuse_foreign(self, version: int, tables: set[str]) -> None:
        if version > SCHEMA_VERSION:
            self.db.close()
            raise UserError(f"this database has schema version {version}; this harness reads up to {SCHEMA_VERSION}. "
                            "It was left untouched.", path=self.path,
                            fix="upgrade harness (the database was written by a newer version).")
        if tables and "runs" not in tables:
            self.db.close()
            raise UserError("this SQLite file holds other tables, not harness results; it was left untouched.",
                            path=self.path, fix=f"point {DB_SETTING} at a harness database or at a new file name.")

    def _refuse_unmigrated(self, version: int, tables: set[str]) -> None:
        """A command that only reads cannot migrate: it says which command does, once."""
        if tables and version == SCHEMA_VERSION:
            return
        self.db.close()
        if not tables:
            raise UserError("not a harness results database (it holds no tables); it was left untouched.",
                            path=self.path, fix=f"point {DB_SETTING} at a harness database, or at a new file name for "
                                                "'harness run PLAN --db PATH' to start one.")
        raise UserError(f"this database has schema version {version}; this harness reads version {SCHEMA_VERSION} "
                        "once it is migrated, and a command that only reads never changes the file.", path=self.path,
                        fix=f"migrate it once with: harness migrate --db {self.path} (it keeps a copy of the "
                            "file as it is first), then run this again.")

    def _refuse_damaged(self, version: int) -> None:
        """Damaged pages are found before anything is written (a run would otherwise store its row, then fail
        at the first sample).  quick_check reads every page once: 0.2 s for 115 MB.  It does not read the
        schema's text, so a current database's tables are also compared with the ones this harness makes."""
        try:
            found = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if found == "ok" and version == SCHEMA_VERSION:
                found = next((f"table {table} is not as this harness made it"
                              for table, columns in _schema_columns().items() if self._columns(table) != columns),
                             "ok")
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            found = str(exc)
        if found != "ok":
            self.db.close()
            raise damaged(self.path, found)

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}

    def _create_or_migrate(self, old: bool) -> None:
        """Create or migrate the schema under one write lock, re-reading the version once the lock is held:
        two harnesses opening one new (or old) database at once must not both create (or migrate) it, and
        neither may read the other's half-made schema as version 0."""
        from harness.store.migrate import migrate, snapshot

        db = self.db
        taken = snapshot(db, self.path) if old else None  # an old database: copied before the lock
        db.isolation_level = None
        db.execute("PRAGMA foreign_keys=OFF")  # a migration rebuilds tables under rows that refer to them
        _until_unlocked(lambda: db.execute("BEGIN IMMEDIATE"))
        refused = None
        try:
            version, tables = self._shape()
            if (tables and "runs" not in tables) or version > SCHEMA_VERSION:
                refused = (version, tables)  # another program wrote it meanwhile: left untouched, refused below
            elif tables and version < SCHEMA_VERSION:
                self.migrated_from = version
                try:
                    self.backup_path = migrate(db, self.path, version, SCHEMA_VERSION, taken)
                except (sqlite3.OperationalError, RuntimeError) as exc:
                    raise store_fault(exc, self.path) or _unmigratable(self.path, version, exc) from None
                taken = None
            if refused is None and (not tables or self.migrated_from is not None):
                for statement in _SCHEMA_STATEMENTS:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT" if refused is None else "ROLLBACK")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.isolation_level = ""
            db.execute("PRAGMA foreign_keys=ON")
            if taken is not None:  # another harness migrated it first: its backup is the one to keep
                taken.unlink(missing_ok=True)
        if refused is not None:
            self._refuse_foreign(*refused)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()
        for fd, lock_path in self._claims:
            lock_path.unlink(missing_ok=True)  # while still locked: a process waiting on it retries on a new file
            os.close(fd)
        self._claims.clear()

    def claim_run(self, run_id: str) -> None:
        """Hold ``run_id`` for this process until :meth:`close`: two harnesses measuring one run (two --resume
        at once) would both store the runs it lacks.  An OS lock beside the database, so a killed harness
        releases it; the lock files it leaves are removed by the next claim (see _sweep_claims).

        A lock file is born whole: made and locked under a name of its own, its marker written, then linked to
        its real name (a link never replaces a file), so a file there without the marker is not ours and is
        neither taken nor removed."""
        import fcntl
        import time

        self._sweep_claims()
        lock_path = self._claim_path(run_id)
        # is_claimed() holds a shared lock for an instant: a lock refused that often is another claimer's.
        refusals_left = CLAIM_RETRIES
        while True:
            fd = self._new_claim_file(lock_path)
            if fd is not None:
                self._claims.append((fd, lock_path))
                return
            fd = _open_claim_file(lock_path)
            if fd is None:
                if os.path.lexists(lock_path):
                    raise UserError(f"a file the harness did not make is in the way of run {run_id}'s lock file; "
                                    "it was left untouched and nothing was written.", path=lock_path,
                                    fix="move or rename that file, then run this again.")
                continue  # its holder removed it meanwhile: make a new one
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                named = _names(lock_path, fd)
                os.close(fd)
                if not named:  # its holder was removing a file nobody held: try the new one
                    continue
                if refusals_left:
                    refusals_left -= 1
                    time.sleep(CLAIM_RETRY_S)
                    continue
                raise UserError(f"run {run_id} is being measured by another harness process right now; nothing "
                                "was written.", path=self.path,
                                fix="wait for that process to finish ('harness runs' then shows the run complete); "
                                    "resume it only if it stops before.") from None
            if _names(lock_path, fd):  # a killed harness's file, or one its holder unlinked while we opened it
                self._claims.append((fd, lock_path))
                return
            os.close(fd)

    @staticmethod
    def _new_claim_file(lock_path: Path) -> int | None:
        """A new lock file at ``lock_path``, locked and marked, as an open descriptor; None when a file is
        already there."""
        import errno
        import secrets

        draft = lock_path.with_name(f"{lock_path.name}.{secrets.token_hex(4)}.new")
        fd = _locked_marked(draft)
        try:
            os.link(draft, lock_path)
        except FileExistsError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            # A file system without hard links (FAT, some network shares): made in place, marked at once.
            try:
                return _locked_marked(lock_path)
            except FileExistsError:
                return None
        except BaseException:
            os.close(fd)
            raise
        finally:
            draft.unlink(missing_ok=True)
        return fd

    def is_claimed(self, run_id: str) -> bool:
        """Whether a live process holds ``run_id`` (claim_run): a run stored as 'running' that none holds was
        stopped without its controller saying so (SIGKILL, a power cut).  Asked with a shared lock, taken and
        dropped at once, and never removing anything; a claimer that meets it retries (see claim_run)."""
        import fcntl

        fd = _open_claim_file(self._claim_path(run_id))
        if fd is None:
            return False  # no lock file claim_run made: no process has held this run since the last sweep
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the shared lock
        return False

    def _claim_path(self, run_id: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{run_id}.lock")

    def _sweep_claims(self) -> None:
        """Remove the lock files of runs no process holds (a SIGKILLed harness leaves its file behind): each is
        unlinked while this process holds its lock, so a claimer that opened it retries on a new file.  Only
        files claim_run made: named as it names them, with its marker inside."""
        import fcntl

        for lock_path in self.path.parent.glob(f"{glob_escape(self.path.name)}.*.lock"):
            if not RUN_ID_FORM.fullmatch(lock_path.name[len(self.path.name) + 1:-len(".lock")]):
                continue  # not a name claim_run makes: not ours to remove
            fd = _open_claim_file(lock_path)
            if fd is None:
                continue  # gone meanwhile, or not ours
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _names(lock_path, fd):
                    lock_path.unlink(missing_ok=True)
            except OSError:
                pass  # held: that run is being measured
            finally:
                os.close(fd)

    # -- writing ---------------------------------------------------------------------------

    def create_run(self, plan_name: str, plan_path: Path, plan_sha256: str, budgets: dict,
                   settings: dict, run_id: str | None = None, plan_text: str | None = None,
                   started_at: str | None = None) -> str:
        """A new run row (status 'running'); ``plan_text`` defaults to the plan file's text."""
        run_id = run_id or new_run_id()
        row = _utf8_only((run_id, plan_name, str(plan_path), plan_sha256,
                          plan_text if plan_text is not None else plan_path.read_text(encoding="utf-8"),
                          json.dumps(budgets), json.dumps(settings), __version__, socket.gethostname(),
                          started_at or utc_now(), None, "running"), plan_path, "the plan file")
        with self.db:
            self.db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
        return run_id

    def set_run_status(self, run_id: str, status: str) -> None:
        with self.db:
            finished = utc_now() if status == "complete" else None
            self.db.execute("UPDATE runs SET status=?, finished_at=? WHERE run_id=?", (status, finished, run_id))

    def record_device(self, run_id: str, facts, config: dict) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO devices VALUES (?,?,?,?,?,?)",
                (run_id, facts.device_id, facts.platform, int(facts.simulated),
                 json.dumps(facts.facts, sort_keys=True), json.dumps(config, sort_keys=True, default=str)),
            )

    def record_artifact(self, artifact) -> None:
        row = _utf8_only((artifact.sha256, artifact.model, artifact.stage, artifact.format, artifact.backend,
                          artifact.quantization, artifact.size_bytes, json.dumps(artifact.manifest_dict(), default=str),
                          json.dumps(artifact.inferred)), getattr(artifact, "manifest_path", None) or artifact.path,
                         "the build file and its manifest")
        with self.db:
            # The first row stays: a finished run's cells read it (those stored before each cell kept its own build
            # facts), and a later run of the same bytes under another name or manifest must not rewrite them.
            self.db.execute("INSERT OR IGNORE INTO artifacts VALUES (?,?,?,?,?,?,?,?,?)", row)

    def record_skipped(self, run_id: str, device_id: str, sha256: str, reason: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO skipped VALUES (?,?,?,?)", (run_id, device_id, sha256, reason))

    def record_run(self, run_id: str, spec, run_index: int, result) -> int:
        """Store one finished run of a cell, atomically: the cell row (created by its first run, its
        aggregates brought up to date by every later one), the run row, its samples and thermals."""
        m = result.measurement
        settings = spec.settings
        with self.db:
            row = self.db.execute("SELECT cell_id FROM cells WHERE run_id=? AND cell_key=?",
                                  (run_id, spec.key)).fetchone()
            if row is None:
                cur = self.db.execute(
                    """INSERT INTO cells (run_id, cell_key, device_id, artifact_sha256, artifact_path, task, runner,
                       status, reason, log, warmup_iterations, iterations, load_ms, first_inference_ms, peak_rss_mb,
                       extra_json, push_s, cooldown_wait_s, cooldown_note, throttled, started_at, finished_at, runs,
                       runs_done, settings_json)
                       VALUES (?,?,?,?,?,?,?,'ok','','',?,?,NULL,NULL,NULL,?,NULL,NULL,?,0,?,?,?,0,?)""",
                    (run_id, spec.key, spec.device.id, spec.artifact.sha256, str(spec.artifact.path), spec.task,
                     spec.runner, settings.warmup_iterations, settings.iterations,
                     json.dumps(_cell_extra(spec, m)), result.cooldown_note, result.started_at,
                     result.finished_at, settings.runs, json.dumps(settings.as_dict())))
                cell_id = cur.lastrowid
            else:
                cell_id = row[0]
                # A resumed run measured again where the device was lost: the new run replaces the lost one.
                lost = self.db.execute("SELECT 1 FROM cell_runs WHERE cell_id=? AND run_index=? AND status='lost'",
                                       (cell_id, run_index)).fetchone()
                if lost:
                    for table in ("cell_runs", "samples", "thermal_samples"):
                        self.db.execute(f"DELETE FROM {table} WHERE cell_id=? AND run_index=?", (cell_id, run_index))
            self._insert_run(cell_id, run_index, result)
            self._update_cell(cell_id, run_index, settings.runs, result)
        return cell_id

    def record_profiles(self, run_id: str, cell_key: str, result) -> None:
        """A cell's profiling step (after its last measured run, stored apart from it): its profiles, its notes in
        the cell's log, and that it was profiled (so --resume profiles only a cell whose profiling never ended).
        The cell's measured runs, status and finished_at are left as they were."""
        with self.db:
            row = self.db.execute("SELECT cell_id, log, extra_json FROM cells WHERE run_id=? AND cell_key=?",
                                  (run_id, cell_key)).fetchone()
            if row is None:  # no measured run stored: nothing to profile against
                return
            self._replace_profiles(row["cell_id"], result.profiles)
            log = row["log"]
            if result.log:
                entry = "\n".join(f"[profiling] {line}" for line in result.log.splitlines())
                log = f"{log}\n{entry}" if log else entry
            extra = _loads(row["extra_json"])
            extra[PROFILED_KEY] = len(result.profiles)
            extra.pop(PROFILING_FAILURE_KEY, None)  # a resumed cell profiled again keeps only its new outcome
            if result.profiling_failure:
                extra[PROFILING_FAILURE_KEY] = result.profiling_failure
            self.db.execute("UPDATE cells SET log=?, extra_json=? WHERE cell_id=?",
                            (log, json.dumps(extra), row["cell_id"]))

    def has_profiles(self, run_id: str) -> bool:
        """Whether any cell of the run has an operator profile (without loading its samples)."""
        return bool(self.db.execute("SELECT EXISTS (SELECT 1 FROM profile_runs p JOIN cells c ON c.cell_id = p.cell_id "
                                    "WHERE c.run_id=?)", (run_id,)).fetchone()[0])

    def profiled_cells(self, run_id: str) -> set[str]:
        """The keys of a run's cells whose profiling step ended (profiles stored, or a profiling run failed and
        said why); a cell stored before profiling was a step of its own counts as profiled when it has a profile."""
        return {r[0] for r in self.db.execute(
            f"""SELECT c.cell_key FROM cells c WHERE c.run_id=? AND (json_extract(c.extra_json, '$.{PROFILED_KEY}')
                IS NOT NULL OR EXISTS (SELECT 1 FROM profile_runs p WHERE p.cell_id = c.cell_id))""", (run_id,))}

    def _replace_profiles(self, cell_id: int, profiles: list) -> None:
        """A cell's profiling runs (harness.profile.Profile), replacing any it had (a resumed cell profiled again)."""
        for table in ("profile_runs", "operators"):
            self.db.execute(f"DELETE FROM {table} WHERE cell_id=?", (cell_id,))
        for index, profile in enumerate(profiles):
            self.db.execute("INSERT INTO profile_runs VALUES (?,?,?,?,?,?)",
                            (cell_id, index, profile.iterations, json.dumps(profile.latency_ms),
                             json.dumps(profile.operators_ms), "\n".join(profile.notes)))
            self.db.executemany("INSERT INTO operators VALUES (?,?,?,?,?,?,?,?,?)",
                                [(cell_id, index, position, r.name, r.backend, r.op_type, r.calls, r.total_ms,
                                  r.median_ms) for position, r in enumerate(profile.operators)])

    def _insert_run(self, cell_id: int, run_index: int, result) -> None:
        m = result.measurement
        summary = getattr(m, "summary_ms", None) or {}
        if m is not None and summary:  # the runner printed a summary only; a mean-only runner's centre is its mean
            p50, p95, n = summary.get("p50_ms", summary.get("mean_ms")), summary.get("p95_ms"), 0
        else:
            values = run_values(m.samples_ms if m else [])
            p50, p95, n = values.p50_ms, values.p95_ms, values.n
        # Per-run facts: where the measured iterations fell, which process measured them, and the runner's own
        # scalar figures for this run (an LLM run's prompt tokens, prefill and decode rates).
        extra = {k: v for k, v in (m.extra if m else {}).items()
                 if k.startswith("measured_") or k in ("pid", "ppid") or isinstance(v, (int, float))}
        if summary:
            extra["summary_ms"] = summary
        if getattr(result, "energy", None) is not None:
            extra[ENERGY_KEY] = result.energy.as_dict()
        self.db.execute(
            "INSERT INTO cell_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (cell_id, run_index, result.status, result.reason, n, p50, p95, int(bool(summary)),
             m.load_ms if m else None, m.first_inference_ms if m else None, m.peak_rss_mb if m else None,
             result.push_s, result.cooldown_wait_s, int(result.throttled), result.started_at, result.finished_at,
             json.dumps(extra)))
        if m is not None:
            offsets = {phase: self.db.execute("SELECT COUNT(*) FROM samples WHERE cell_id=? AND phase=?",
                                              (cell_id, phase)).fetchone()[0] for phase in ("warmup", "measured")}
            rows = [(cell_id, "warmup", offsets["warmup"] + i, v, run_index) for i, v in enumerate(m.warmup_ms)]
            rows += [(cell_id, "measured", offsets["measured"] + i, v, run_index) for i, v in enumerate(m.samples_ms)]
            self.db.executemany("INSERT INTO samples (cell_id, phase, idx, latency_ms, run_index) VALUES (?,?,?,?,?)",
                                rows)
            if m.transcripts:
                self.db.executemany(
                    "INSERT INTO transcripts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(cell_id, t["id"], t["reference"], t["hypothesis"], t["tokens"], t["mel_ms"], t["encoder_ms"],
                      t["decoder_ms_per_token"], t["total_ms"], t["audio_s"], t["rtf"], t.get("vad_ms"),
                      t.get("llm_ms"), t.get("pipeline_ms"), t.get("speech_s"), t.get("continuation"))
                     for t in m.transcripts])
        self.db.executemany(
            "INSERT INTO thermal_samples (cell_id, t_s, sensor, kind, value, unit, run_index) VALUES (?,?,?,?,?,?,?)",
            [(cell_id, s.t_s, s.sensor, s.kind, s.value, s.unit, run_index) for s in result.thermals])

    def _update_cell(self, cell_id: int, run_index: int, runs_planned: int, result) -> None:
        """The cell's columns as aggregates of its runs: median load and first inference, the highest
        peak RSS, total push and cooldown time, throttled if any run was, the first failure's status."""
        runs = self.db.execute("""SELECT run_index, status, reason, load_ms, first_inference_ms, peak_rss_mb, push_s,
                                  cooldown_wait_s, throttled FROM cell_runs WHERE cell_id=? ORDER BY run_index""",
                               (cell_id,)).fetchall()
        median = lambda key: (percentile(vals, 50) if (vals := [r[key] for r in runs if r[key] is not None])
                              else None)
        total = lambda key: (sum(vals) if (vals := [r[key] for r in runs if r[key] is not None]) else None)
        peaks = [r["peak_rss_mb"] for r in runs if r["peak_rss_mb"] is not None]
        failed = next((r for r in runs if r["status"] != "ok"), None)
        status, reason = ("ok", "") if failed is None else (failed["status"], failed["reason"])
        if failed is not None and runs_planned > 1:
            # The run that failed, not the one just recorded (a later run of a failed cell is stored too).
            reason = f"run {failed['run_index'] + 1} of {runs_planned}: {reason}"  # read back by reason_of_run
        log = self.db.execute("SELECT log FROM cells WHERE cell_id=?", (cell_id,)).fetchone()[0]
        if result.log:  # each run's notes, labelled with the run when there are several
            entry = result.log if runs_planned == 1 else f"[run {run_index + 1}/{runs_planned}] {result.log}"
            log = f"{log}\n{entry}" if log else entry
        self.db.execute(
            """UPDATE cells SET status=?, reason=?, log=?, load_ms=?, first_inference_ms=?, peak_rss_mb=?, push_s=?,
               cooldown_wait_s=?, throttled=?, finished_at=?, runs_done=? WHERE cell_id=?""",
            (status, reason, log, median("load_ms"), median("first_inference_ms"),
             max(peaks) if peaks else None, total("push_s"), total("cooldown_wait_s"),
             int(any(r["throttled"] for r in runs)), result.finished_at, len(runs), cell_id))
        self._update_cell_energy(cell_id)

    def _update_cell_energy(self, cell_id: int) -> None:
        """The cell's energy in its extra_json: the median of its runs' (harness.thermal.energy.cell_energy)."""
        runs = [run_energy_of({"extra": _loads(r[0])}) for r in self.db.execute(
            "SELECT extra_json FROM cell_runs WHERE cell_id=? AND status='ok' ORDER BY run_index", (cell_id,))]
        energy = cell_energy([r for r in runs if r is not None])
        if energy is None:
            return
        extra = _loads(self.db.execute("SELECT extra_json FROM cells WHERE cell_id=?", (cell_id,)).fetchone()[0])
        extra[ENERGY_KEY] = energy.as_dict()
        self.db.execute("UPDATE cells SET extra_json=? WHERE cell_id=?", (json.dumps(extra), cell_id))

    # -- reading ---------------------------------------------------------------------------

    def stored_runs(self, run_id: str) -> dict[str, tuple[str, set[int]]]:
        """For resuming: cell key -> (cell status, run indices already stored).  Runs whose device was lost
        are left out of the indices: they are to be measured again, and replace their lost row when they are."""
        out: dict[str, tuple[str, set[int]]] = {}
        for key, status, run_index, run_status in self.db.execute(
                """SELECT c.cell_key, c.status, r.run_index, r.status FROM cells c
                   JOIN cell_runs r ON r.cell_id = c.cell_id WHERE c.run_id=?""", (run_id,)):
            done = out.setdefault(key, (status, set()))[1]
            if run_status != "lost":
                done.add(run_index)
        return out

    def cell_statuses(self, run_id: str, keys) -> dict[str, str]:
        """Final status of the given cells of a run (those stored)."""
        wanted = set(keys)
        return {k: s for k, s in self.db.execute("SELECT cell_key, status FROM cells WHERE run_id=?", (run_id,))
                if k in wanted}

    def history(self, plan_name: str, until: str | None = None) -> list[dict[str, Any]]:
        """Every complete run of a plan, oldest first: one row per run x successful latency cell, with the
        run-level P50s and P95s of the cell, its build's sha256 and its settings (the nightly's noise floor
        and comparability read these)."""
        return self._history(plan_name, until)

    def history_of_every_plan(self) -> list[dict[str, Any]]:
        """``history`` of every plan at once (rows also name their plan), oldest first: the history site."""
        return self._history(None, None)

    def _history(self, plan_name: str | None, until: str | None) -> list[dict[str, Any]]:
        rows = self.db.execute(
            f"""SELECT r.run_id, r.started_at, r.plan_name, r.settings_json AS run_settings, c.cell_id, c.cell_key,
                      c.device_id, c.throttled, c.artifact_sha256 AS sha256, c.settings_json,
                      {identity_columns()}, cr.p50_ms, cr.p95_ms
               FROM cells c JOIN runs r ON r.run_id = c.run_id JOIN artifacts a ON a.sha256 = c.artifact_sha256
               JOIN cell_runs cr ON cr.cell_id = c.cell_id
               WHERE (? IS NULL OR r.plan_name = ?) AND r.status = 'complete' AND c.task = 'latency'
                     AND c.status = 'ok' AND cr.status = 'ok' AND (? IS NULL OR r.started_at <= ?)
                     AND c.cell_key NOT LIKE '%/ref'
               ORDER BY r.started_at, r.rowid, c.cell_id, cr.run_index""", (plan_name, plan_name, until, until))
        out: dict[int, dict[str, Any]] = {}
        calibration: dict[str, bool] = {}  # per run: its settings are read once, not once per cell
        for r in rows:
            entry = out.get(r["cell_id"])
            if entry is None:
                entry = out[r["cell_id"]] = {k: r[k] for k in ("run_id", "started_at", "plan_name", "cell_key",
                                                              "device_id", "sha256", "model", "stage", "format",
                                                              "backend", "quantization")}
                if r["run_id"] not in calibration:
                    calibration[r["run_id"]] = bool(_loads(r["run_settings"]).get("calibration"))
                entry["calibration"] = calibration[r["run_id"]]
                entry.update(throttled=bool(r["throttled"]), settings=_loads(r["settings_json"]),
                             run_p50_ms=[], run_p95_ms=[])
            entry["run_p50_ms"].append(r["p50_ms"])
            entry["run_p95_ms"].append(r["p95_ms"])
        return list(out.values())

    def latest_complete_run(self, plan_name: str, before_run_id: str | None = None) -> str | None:
        """The newest complete measuring run of a plan (that started no later than ``before_run_id``)."""
        return next(iter(self.complete_runs(plan_name, before_run_id)), None)

    def complete_runs(self, plan_name: str, before_run_id: str | None = None) -> list[str]:
        """The complete measuring runs of a plan (that started no later than ``before_run_id``), newest first;
        A/A calibration runs are not baselines."""
        started = self.run(before_run_id).started_at if before_run_id else "9999"
        rows = self.db.execute(
            """SELECT run_id, settings_json FROM runs WHERE plan_name=? AND status='complete' AND run_id != ?
               AND started_at <= ? ORDER BY started_at DESC, rowid DESC""", (plan_name, before_run_id or "", started))
        return [run_id for run_id, settings in rows if not _loads(settings).get("calibration")]

    def recent_build_shas(self, keep_runs: int) -> set[str]:
        """The builds of each plan's newest ``keep_runs`` complete runs, and of every unfinished run."""
        keep: set[str] = set()
        per_plan: dict[str, int] = {}
        for run_id, plan, status in self.db.execute(
                "SELECT run_id, plan_name, status FROM runs ORDER BY started_at DESC, rowid DESC"):
            if status == "complete":
                per_plan[plan] = per_plan.get(plan, 0) + 1
                if per_plan[plan] > keep_runs:
                    continue
            keep.update(sha for (sha,) in self.db.execute(
                "SELECT DISTINCT artifact_sha256 FROM cells WHERE run_id=?", (run_id,)))
        return keep

    def record_checks(self, run_id: str, baseline_run_id: str | None, checks) -> None:
        """Store a nightly's verdict on ``run_id`` (checks with Check's fields), replacing an earlier one."""
        rows = [(run_id, i, baseline_run_id, c.device_id, c.subject, c.kind, c.status, c.detail,
                 json.dumps(c.data, sort_keys=True, default=str), c.group) for i, c in enumerate(checks)]
        with self.db:
            self.db.execute("DELETE FROM checks WHERE run_id=?", (run_id,))
            self.db.executemany("INSERT INTO checks VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

    def stored_verdicts(self, run_id: str | None = None) -> dict[str, StoredVerdict]:
        """run id -> the verdict a nightly stored for it, for every judged run (or only ``run_id``); one query."""
        out: dict[str, StoredVerdict] = {}
        where, args = ("WHERE run_id=?", (run_id,)) if run_id is not None else ("", ())
        for row in self.db.execute(f"SELECT * FROM checks {where} ORDER BY run_id, position", args):
            verdict = out.setdefault(row["run_id"], StoredVerdict(row["baseline_run_id"], []))
            verdict.checks.append(StoredCheck(row["device_id"], row["subject"], row["kind"], row["status"],
                                              row["detail"], _loads(row["data_json"]), row["group_name"]))
        return out

    def every_run(self) -> list[RunRecord]:
        """Every stored run, oldest first (the history site's index)."""
        rows = self.db.execute("SELECT * FROM runs ORDER BY started_at, rowid")
        return [self._run(r) for r in rows]

    def device_ids_by_run(self) -> dict[str, list[str]]:
        """run id -> the ids of the devices it recorded, sorted; one query for the whole store."""
        out: dict[str, list[str]] = {}
        for run_id, device_id in self.db.execute("SELECT run_id, device_id FROM devices ORDER BY run_id, device_id"):
            out.setdefault(run_id, []).append(device_id)
        return out

    def runs(self, limit: int = 20) -> list[RunRecord]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
        return [self._run(r) for r in rows]

    def run(self, run_id: str) -> RunRecord:
        row = self.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            recent = ", ".join(r.run_id for r in self.runs(5)) or "none yet"
            raise UserError(f"no run '{run_id}' in this database (recent: {recent}).", path=self.path,
                            fix="pick a run id from 'harness runs', or pass the right --db.")
        return self._run(row)

    @staticmethod
    def _run(row: sqlite3.Row) -> RunRecord:
        d = dict(row)
        d["budgets"] = _loads(d.pop("budgets_json"))
        d["settings"] = _loads(d.pop("settings_json"))
        return RunRecord(**d)

    def devices(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM devices WHERE run_id=? ORDER BY device_id", (run_id,))
        return [{**dict(r), "facts": _loads(r["facts_json"]), "config": _loads(r["config_json"])} for r in rows]

    def skipped(self, run_id: str) -> list[dict[str, Any]]:
        """The (device, build) pairs a run skipped, each build named as the run's own cells of it were measured
        (the artifacts row is the first run's of those bytes, which may have named them otherwise)."""
        rows = self.db.execute(
            f"""SELECT s.device_id, s.reason, a.sha256, a.size_bytes, a.manifest_json, a.inferred_json,
                      {identity_columns(cell="c", artifact="a")}
               FROM skipped s JOIN artifacts a ON a.sha256 = s.artifact_sha256
               LEFT JOIN cells c ON c.cell_id = (SELECT MIN(cell_id) FROM cells WHERE run_id = s.run_id
                                                 AND artifact_sha256 = s.artifact_sha256)
               WHERE s.run_id=? ORDER BY s.device_id, model, stage""", (run_id,))
        return [dict(r) for r in rows]

    def cells(self, run_id: str, with_samples: bool = True) -> list[CellRecord]:
        """The cells of a run with their runs, samples, thermals and transcripts (``with_samples``).  A cell's
        runs_done leaves its lost runs out (the column counts them): they hold nothing, and --resume measures them."""
        rows = self.db.execute(
            """SELECT c.*, a.model, a.stage, a.format, a.backend, a.quantization, a.size_bytes, a.inferred_json,
                      a.manifest_json, (SELECT COUNT(*) FROM cell_runs r WHERE r.cell_id = c.cell_id
                                        AND r.status != 'lost') AS runs_kept
               FROM cells c JOIN artifacts a ON a.sha256 = c.artifact_sha256
               WHERE c.run_id=? ORDER BY c.device_id, a.stage, a.model, a.quantization, c.cell_id""", (run_id,))
        cells = []
        for r in rows:
            artifact = {k: r[k] for k in ("model", "stage", "format", "backend", "quantization", "size_bytes")}
            extra = _loads(r["extra_json"])
            artifact.update(extra.get("identity") or {})  # as measured (older cells: as stored)
            facts = extra.get(BUILD_FACTS_KEY) or {"inferred": _loads(r["inferred_json"]),
                                                   "manifest": _loads(r["manifest_json"])}
            artifact.update(sha256=r["artifact_sha256"], path=r["artifact_path"], inferred=facts["inferred"],
                            source=facts["manifest"].get("source"))  # where the weights came from
            cells.append(CellRecord(
                cell_id=r["cell_id"], run_id=r["run_id"], cell_key=r["cell_key"], device_id=r["device_id"],
                task=r["task"], runner=r["runner"], status=r["status"], reason=r["reason"], log=r["log"],
                artifact=artifact, warmup_iterations=r["warmup_iterations"], iterations=r["iterations"],
                load_ms=r["load_ms"], first_inference_ms=r["first_inference_ms"], peak_rss_mb=r["peak_rss_mb"],
                extra=extra, push_s=r["push_s"], cooldown_wait_s=r["cooldown_wait_s"],
                cooldown_note=r["cooldown_note"], throttled=bool(r["throttled"]), started_at=r["started_at"],
                finished_at=r["finished_at"], runs_planned=r["runs"], runs_done=r["runs_kept"],
                settings=_loads(r["settings_json"]),
            ))
        if with_samples and cells:
            self._attach_samples(cells)
        return cells

    def _attach_samples(self, cells: list[CellRecord]) -> None:
        by_id = {c.cell_id: c for c in cells}
        marks = ",".join("?" * len(by_id))
        series: dict[tuple[int, str], list[tuple[float, int]]] = {}
        for cell_id, phase, value, run_index in self.db.execute(
                f"""SELECT cell_id, phase, latency_ms, run_index FROM samples WHERE cell_id IN ({marks})
                    ORDER BY cell_id, phase, idx""", list(by_id)):
            series.setdefault((cell_id, phase), []).append((value, run_index))
        for (cell_id, phase), values in series.items():
            arr = np.asarray([v for v, _ in values], dtype=float)
            if phase == "measured":
                by_id[cell_id].samples_ms = arr
                by_id[cell_id].samples_run = np.asarray([k for _, k in values], dtype=int)
            else:
                by_id[cell_id].warmup_ms = arr
        for r in self.db.execute(f"SELECT * FROM cell_runs WHERE cell_id IN ({marks}) ORDER BY cell_id, run_index",
                                 list(by_id)):
            by_id[r["cell_id"]].runs.append({**dict(r), "extra": _loads(r["extra_json"])})
        for r in self.db.execute(
                f"SELECT * FROM thermal_samples WHERE cell_id IN ({marks}) ORDER BY cell_id, t_s", list(by_id)):
            by_id[r["cell_id"]].thermals.append(dict(r))
        for r in self.db.execute(
                f"SELECT * FROM transcripts WHERE cell_id IN ({marks}) ORDER BY cell_id, utt_id", list(by_id)):
            by_id[r["cell_id"]].transcripts.append(dict(r))
        self._attach_profiles(by_id, marks)

    def _attach_profiles(self, by_id: dict[int, CellRecord], marks: str) -> None:
        from harness.profile import OperatorTime, Profile

        operators: dict[tuple[int, int], list[OperatorTime]] = {}
        for r in self.db.execute(f"""SELECT * FROM operators WHERE cell_id IN ({marks})
                                     ORDER BY cell_id, profile_index, position""", list(by_id)):
            operators.setdefault((r["cell_id"], r["profile_index"]), []).append(OperatorTime(
                name=r["name"], backend=r["backend"], calls=r["calls"], total_ms=r["total_ms"],
                median_ms=r["median_ms"], op_type=r["op_type"]))
        for r in self.db.execute(f"""SELECT * FROM profile_runs WHERE cell_id IN ({marks})
                                     ORDER BY cell_id, profile_index""", list(by_id)):
            by_id[r["cell_id"]].profiles.append(Profile(
                iterations=r["iterations"], latency_ms=_loads(r["latency_json"]) or [],
                operators_ms=_loads(r["operators_ms_json"]) or [],
                operators=operators.get((r["cell_id"], r["profile_index"]), []),
                notes=r["notes"].splitlines()))


def _locked_marked(path: Path) -> int:
    """A new file at ``path`` (never an existing one), flocked, holding CLAIM_MARKER: its open descriptor."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, CLAIM_MARKER)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd


def _open_claim_file(lock_path: Path) -> int | None:
    """``lock_path`` open for locking if it is a run lock file claim_run made (a regular file holding only
    CLAIM_MARKER), else None (missing, or someone else's file: a symlink, a FIFO, a folder, other content)."""
    try:
        # O_NONBLOCK: a FIFO of that name would otherwise block the open, and every claim with it.
        fd = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode) and os.pread(fd, len(CLAIM_MARKER) + 1, 0) == CLAIM_MARKER:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (another process may have unlinked or replaced it)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
