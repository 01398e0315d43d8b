"""SQLite results store.

Each finished cell (its row, every sample, its thermal series) is committed in one
transaction the moment it finishes, so an interrupted run loses at most the cell
in flight.  Reads return typed records; statistics are computed from raw samples
by the caller, never stored, so a better estimator can re-read old nights.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__
from harness.clock import utc_now
from harness.errors import UserError

SCHEMA_VERSION = 1
_SCHEMA = (Path(__file__).with_name("schema.sql")).read_text()


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
    samples_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    warmup_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    thermals: list[dict[str, Any]] = field(default_factory=list)
    transcripts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        a = self.artifact
        return f"{a['model']} {a['stage']} {a['quantization']} {a['backend']}"


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, typeable and unique enough: ``20261121-143000-7f3a``."""
    import secrets

    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _stats_row(cell_id: int, samples_ms) -> tuple:
    data = np.asarray(samples_ms, dtype=float)
    return cell_id, int(data.size), float(np.percentile(data, 50)), float(np.percentile(data, 95))


def _cell_extra(spec, measurement) -> dict:
    """Runner figures, plus for a transcription cell which chain and corpus it ran."""
    extra = dict(measurement.extra) if measurement else {}
    if spec.chain is not None:
        extra["chain"] = {"name": spec.chain.name, "corpus": spec.chain.corpus.name, "limit": spec.chain.limit,
                          **{role: {"sha256": a.sha256, "path": str(a.path), "quantization": a.quantization,
                                    "backend": a.backend, "size_bytes": a.size_bytes}
                             for role, a in spec.chain.parts.items()}}
    return extra


class Store:
    """A results database.  Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(path, timeout=30)
            self.db.row_factory = sqlite3.Row
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise UserError(f"not a harness results database ({exc}).", path=path,
                            fix="point --db at a harness database or at a new file name.") from None
        if version > SCHEMA_VERSION:
            raise UserError(f"this database has schema version {version}; this harness reads up to {SCHEMA_VERSION}.",
                            path=path, fix="upgrade harness.")
        if tables and "runs" not in tables:
            raise UserError("this SQLite file holds other tables, not harness results; it was left untouched.",
                            path=path, fix="point --db at a harness database or at a new file name.")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self.db.commit()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- writing ---------------------------------------------------------------------------

    def create_run(self, plan_name: str, plan_path: Path, plan_sha256: str, budgets: dict,
                   settings: dict, run_id: str | None = None) -> str:
        run_id = run_id or new_run_id()
        with self.db:
            self.db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, plan_name, str(plan_path), plan_sha256, plan_path.read_text(encoding="utf-8"),
                 json.dumps(budgets), json.dumps(settings), __version__, socket.gethostname(),
                 utc_now(), None, "running"),
            )
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
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO artifacts VALUES (?,?,?,?,?,?,?,?,?)",
                (artifact.sha256, artifact.model, artifact.stage, artifact.format, artifact.backend,
                 artifact.quantization, artifact.size_bytes, json.dumps(artifact.manifest_dict(), default=str),
                 json.dumps(artifact.inferred)),
            )

    def record_skipped(self, run_id: str, device_id: str, sha256: str, reason: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO skipped VALUES (?,?,?,?)", (run_id, device_id, sha256, reason))

    def record_cell(self, run_id: str, spec, result) -> int:
        """Store one finished cell with all its samples, atomically."""
        m = result.measurement
        with self.db:
            cur = self.db.execute(
                """INSERT INTO cells (run_id, cell_key, device_id, artifact_sha256, artifact_path, task, runner,
                   status, reason, log, warmup_iterations, iterations, load_ms, first_inference_ms, peak_rss_mb,
                   extra_json, push_s, cooldown_wait_s, cooldown_note, throttled, started_at, finished_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (run_id, spec.key, spec.device.id, spec.artifact.sha256, str(spec.artifact.path), spec.task,
                 spec.runner, result.status, result.reason, result.log, spec.settings.warmup_iterations,
                 spec.settings.iterations, m.load_ms if m else None, m.first_inference_ms if m else None,
                 m.peak_rss_mb if m else None, json.dumps(_cell_extra(spec, m)), result.push_s,
                 result.cooldown_wait_s, result.cooldown_note, int(result.throttled), result.started_at,
                 result.finished_at),
            )
            cell_id = cur.lastrowid
            if m is not None:
                rows = [(cell_id, "warmup", i, v) for i, v in enumerate(m.warmup_ms)]
                rows += [(cell_id, "measured", i, v) for i, v in enumerate(m.samples_ms)]
                self.db.executemany("INSERT INTO samples VALUES (?,?,?,?)", rows)
                if m.samples_ms:
                    self.db.execute("INSERT INTO cell_stats VALUES (?,?,?,?)", _stats_row(cell_id, m.samples_ms))
            if m is not None and m.transcripts:
                self.db.executemany(
                    "INSERT INTO transcripts VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [(cell_id, t["id"], t["reference"], t["hypothesis"], t["tokens"], t["mel_ms"], t["encoder_ms"],
                      t["decoder_ms_per_token"], t["total_ms"], t["audio_s"], t["rtf"]) for t in m.transcripts])
            self.db.executemany(
                "INSERT INTO thermal_samples VALUES (?,?,?,?,?,?)",
                [(cell_id, s.t_s, s.sensor, s.kind, s.value, s.unit) for s in result.thermals],
            )
        return cell_id

    # -- reading ---------------------------------------------------------------------------

    def finished_cell_keys(self, run_id: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT cell_key FROM cells WHERE run_id=?", (run_id,))}

    def history(self, plan_name: str, until: str | None = None) -> list[dict[str, Any]]:
        """Per-cell P50/P95 of every complete run of a plan, oldest first (one row per run x latency cell)."""
        missing = self.db.execute(
            """SELECT c.cell_id FROM cells c JOIN runs r ON r.run_id = c.run_id
               LEFT JOIN cell_stats s ON s.cell_id = c.cell_id
               WHERE r.plan_name = ? AND s.cell_id IS NULL AND c.status = 'ok'""", (plan_name,)).fetchall()
        for (cell_id,) in missing:  # cells stored before the summary existed: derive it once
            values = [v for (v,) in self.db.execute(
                "SELECT latency_ms FROM samples WHERE cell_id=? AND phase='measured'", (cell_id,))]
            if values:
                with self.db:
                    self.db.execute("INSERT OR REPLACE INTO cell_stats VALUES (?,?,?,?)", _stats_row(cell_id, values))
        rows = self.db.execute(
            """SELECT r.run_id, r.started_at, c.device_id, c.throttled, a.model, a.stage, a.format, a.backend,
                      a.quantization, s.n, s.p50_ms, s.p95_ms
               FROM cells c JOIN runs r ON r.run_id = c.run_id JOIN artifacts a ON a.sha256 = c.artifact_sha256
               JOIN cell_stats s ON s.cell_id = c.cell_id
               WHERE r.plan_name = ? AND r.status = 'complete' AND c.task = 'latency' AND (? IS NULL OR r.started_at <= ?)
               ORDER BY r.started_at, r.rowid""", (plan_name, until, until))
        return [dict(r) for r in rows]

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
        d["budgets"] = json.loads(d.pop("budgets_json"))
        d["settings"] = json.loads(d.pop("settings_json"))
        return RunRecord(**d)

    def devices(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM devices WHERE run_id=? ORDER BY device_id", (run_id,))
        return [{**dict(r), "facts": json.loads(r["facts_json"]), "config": json.loads(r["config_json"])} for r in rows]

    def skipped(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            """SELECT s.device_id, s.reason, a.* FROM skipped s JOIN artifacts a ON a.sha256 = s.artifact_sha256
               WHERE s.run_id=? ORDER BY s.device_id, a.model, a.stage""", (run_id,))
        return [dict(r) for r in rows]

    def cells(self, run_id: str, with_samples: bool = True) -> list[CellRecord]:
        rows = self.db.execute(
            """SELECT c.*, a.model, a.stage, a.format, a.backend, a.quantization, a.size_bytes, a.inferred_json
               FROM cells c JOIN artifacts a ON a.sha256 = c.artifact_sha256
               WHERE c.run_id=? ORDER BY c.device_id, a.stage, a.model, a.quantization, c.cell_id""", (run_id,))
        cells = []
        for r in rows:
            artifact = {k: r[k] for k in ("model", "stage", "format", "backend", "quantization", "size_bytes")}
            artifact.update(sha256=r["artifact_sha256"], path=r["artifact_path"],
                            inferred=json.loads(r["inferred_json"]))
            cells.append(CellRecord(
                cell_id=r["cell_id"], run_id=r["run_id"], cell_key=r["cell_key"], device_id=r["device_id"],
                task=r["task"], runner=r["runner"], status=r["status"], reason=r["reason"], log=r["log"],
                artifact=artifact, warmup_iterations=r["warmup_iterations"], iterations=r["iterations"],
                load_ms=r["load_ms"], first_inference_ms=r["first_inference_ms"], peak_rss_mb=r["peak_rss_mb"],
                extra=json.loads(r["extra_json"]), push_s=r["push_s"], cooldown_wait_s=r["cooldown_wait_s"],
                cooldown_note=r["cooldown_note"], throttled=bool(r["throttled"]), started_at=r["started_at"],
                finished_at=r["finished_at"],
            ))
        if with_samples and cells:
            self._attach_samples(cells)
        return cells

    def _attach_samples(self, cells: list[CellRecord]) -> None:
        by_id = {c.cell_id: c for c in cells}
        marks = ",".join("?" * len(by_id))
        series: dict[tuple[int, str], list[float]] = {}
        for cell_id, phase, value in self.db.execute(
                f"SELECT cell_id, phase, latency_ms FROM samples WHERE cell_id IN ({marks}) ORDER BY cell_id, phase, idx",
                list(by_id)):
            series.setdefault((cell_id, phase), []).append(value)
        for (cell_id, phase), values in series.items():
            arr = np.asarray(values, dtype=float)
            if phase == "measured":
                by_id[cell_id].samples_ms = arr
            else:
                by_id[cell_id].warmup_ms = arr
        for r in self.db.execute(
                f"SELECT * FROM thermal_samples WHERE cell_id IN ({marks}) ORDER BY cell_id, t_s", list(by_id)):
            by_id[r["cell_id"]].thermals.append(dict(r))
        for r in self.db.execute(
                f"SELECT * FROM transcripts WHERE cell_id IN ({marks}) ORDER BY cell_id, utt_id", list(by_id)):
            by_id[r["cell_id"]].transcripts.append(dict(r))
