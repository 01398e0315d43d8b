"""A synthetic history of nights, written straight into a results database.

For the report-generation benchmark (a year of nights) and for tests of history
features; every row is labelled as synthetic (plan name, device facts) so it can
never be mistaken for a measurement.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from harness.store.db import Store, _stats_row

QUANTS = ("fp32", "int8", "int4")
STAGES = ("vad", "mel", "asr-encoder", "asr-decoder", "llm")


def write_synthetic_history(db: Path, nights: int, devices: int, builds: int, samples: int,
                            step: tuple[int, int, float] | None = None, seed: int = 0,
                            plan_name: str = "synthetic-nightly") -> list[str]:
    """Write ``nights`` complete runs of devices x builds cells with ``samples`` each; return run ids.

    ``step = (night, build_index, factor)`` multiplies that build's latency from that night on.
    """
    rng = np.random.default_rng(seed)
    start = datetime(2025, 11, 21, 2, 30, tzinfo=timezone.utc)
    run_ids = []
    with Store(db) as store:
        con = store.db
        artifacts = []
        for b in range(builds):
            sha = hashlib.sha256(f"synthetic-{b}".encode()).hexdigest()
            stage, quant = STAGES[b % len(STAGES)], QUANTS[b % len(QUANTS)]
            con.execute("INSERT OR REPLACE INTO artifacts VALUES (?,?,?,?,?,?,?,?,?)",
                        (sha, f"synthetic-{b}", stage, "pte", "xnnpack", quant, 10_000_000, "{}", "[]"))
            artifacts.append((sha, 5.0 + 3.0 * b))
        for night in range(nights):
            when = (start + timedelta(days=night)).isoformat(timespec="seconds")
            run_id = f"synthetic-{night:04d}"
            run_ids.append(run_id)
            con.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (run_id, plan_name, "synthetic", "0" * 64, "synthetic", json.dumps({"vad": 10, "asr": 150}),
                         "{}", "synthetic", "synthetic", when, when, "complete"))
            for d in range(devices):
                con.execute("INSERT INTO devices VALUES (?,?,?,?,?,?)",
                            (run_id, f"phone-{d}", "android", 1, json.dumps({"model": "synthetic"}), "{}"))
                for b, (sha, base_ms) in enumerate(artifacts):
                    factor = step[2] if step and night >= step[0] and b == step[1] else 1.0
                    values = base_ms * factor * rng.lognormal(0, 0.05, samples)
                    cur = con.execute(
                        """INSERT INTO cells (run_id, cell_key, device_id, artifact_sha256, artifact_path, task, runner,
                           status, reason, log, warmup_iterations, iterations, load_ms, first_inference_ms,
                           peak_rss_mb, extra_json, push_s, cooldown_wait_s, cooldown_note, throttled, started_at,
                           finished_at) VALUES (?,?,?,?,?,'latency','synthetic','ok','','',0,?,1,1,1,'{}',0,0,'',0,?,?)""",
                        (run_id, f"phone-{d}/{sha[:16]}/latency", f"phone-{d}", sha, "synthetic", samples, when, when))
                    cell_id = cur.lastrowid
                    con.executemany("INSERT INTO samples VALUES (?,?,?,?)",
                                    [(cell_id, "measured", i, float(v)) for i, v in enumerate(values)])
                    con.execute("INSERT INTO cell_stats VALUES (?,?,?,?)", _stats_row(cell_id, values))
            con.commit()
    return run_ids
