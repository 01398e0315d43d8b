"""Export a stored run as one tidy table: a row per sample, with the cell's identity beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from harness.store.db import Store

FORMATS = ("csv", "parquet", "et-v3")


def samples_frame(store: Store, run_id: str) -> pd.DataFrame:
    """Every stored sample (warm-up and measured) of a run, long format."""
    store.run(run_id)  # a clear error for an unknown run id
    rows = store.db.execute(
        """SELECT c.run_id, c.device_id, c.cell_key, c.status, a.model, a.stage, a.format, a.backend,
                  a.quantization, a.sha256 AS artifact_sha256, a.size_bytes, c.load_ms, c.first_inference_ms,
                  c.peak_rss_mb, s.run_index, s.phase, s.idx, s.latency_ms
           FROM samples s JOIN cells c ON c.cell_id = s.cell_id JOIN artifacts a ON a.sha256 = c.artifact_sha256
           WHERE c.run_id = ? ORDER BY c.device_id, a.model, a.stage, a.quantization, s.phase DESC, s.idx""",
        (run_id,),
    ).fetchall()
    columns = ["run_id", "device_id", "cell_key", "status", "model", "stage", "format", "backend", "quantization",
               "artifact_sha256", "size_bytes", "load_ms", "first_inference_ms", "peak_rss_mb", "run_index", "phase", "idx",
               "latency_ms"]
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def et_v3_records(store: Store, run_id: str) -> list[dict]:
    """ExecuTorch's v3 benchmark records (the PyTorch OSS benchmark database format), one per cell x metric.

    Metric names follow ExecuTorch's own (``model_load_time(ms)``, ``avg_inference_latency(ms)``,
    ``peak_inference_mem_usage(mb)``); percentiles and WER are added under names of the same style.
    """
    import numpy as np

    from harness.report.model import build_report_data

    data = build_report_data(store, run_id)
    devices = {d["device_id"]: d for d in data.devices}

    def record(device_id: str, artifact: dict, metric: str, values: list[float], extra: dict) -> dict:
        facts = devices.get(device_id, {}).get("facts", {})
        return {
            "benchmark": {"name": "harness", "mode": "inference", "dtype": artifact["quantization"],
                          "extra_info": {"run_id": run_id, "plan": data.run.plan_name, **extra}},
            "model": {"name": artifact["model"], "type": artifact["stage"], "backend": artifact["backend"],
                      "extra_info": {"format": artifact["format"], "sha256": artifact["sha256"],
                                     "size_bytes": artifact["size_bytes"]}},
            "metric": {"name": metric, "benchmark_values": [float(v) for v in values], "target_value": 0,
                       "extra_info": {}},
            "runners": [{"name": facts.get("model", device_id), "type": facts.get("os", facts.get("android", "")),
                         "avail_mem_in_gb": "", "total_mem_in_gb": facts.get("memory_gb", ""),
                         "extra_info": {"device_id": device_id, "soc": facts.get("soc", "")}}],
        }

    out = []
    for view in data.cells:
        if view.summary is None:
            continue
        cell, s = view.cell, view.summary
        extra = {"cell_key": cell.cell_key, "iterations": s.n}
        out.append(record(cell.device_id, cell.artifact, "avg_inference_latency(ms)", [s.mean_ms], extra))
        out.append(record(cell.device_id, cell.artifact, "p50_inference_latency(ms)", [s.p50_ms], extra))
        out.append(record(cell.device_id, cell.artifact, "p95_inference_latency(ms)", [s.p95_ms], extra))
        if cell.load_ms is not None:
            out.append(record(cell.device_id, cell.artifact, "model_load_time(ms)", [cell.load_ms], extra))
        if cell.peak_rss_mb is not None:
            out.append(record(cell.device_id, cell.artifact, "peak_inference_mem_usage(mb)", [cell.peak_rss_mb], extra))
    for chain in data.chains:
        extra = {"cell_key": chain.cell.cell_key, "chain": chain.chain.get("name"), "corpus": chain.chain.get("corpus")}
        art = chain.cell.artifact
        if chain.score.wer is not None:
            out.append(record(chain.cell.device_id, art, "wer(%)", [100 * chain.score.wer], extra))
        out.append(record(chain.cell.device_id, art, "p50_utterance_latency(ms)",
                          [float(np.median([t["total_ms"] for t in chain.cell.transcripts]))], extra))
    return out


def export_run(db_path: Path, run_id: str, fmt: str, out: Path | None) -> tuple[Path, int]:
    """Write the run's samples to ``out`` (default ``<run_id>.<fmt>``); return the path and row count."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}'.", fix=f"use one of {', '.join(FORMATS)}.")
    out = out or Path(f"{run_id}.{'json' if fmt == 'et-v3' else fmt}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with Store(db_path) as store:
        if fmt == "et-v3":
            records = et_v3_records(store, run_id)
            out.write_text(json.dumps(records, indent=1) + "\n")
            return out, len(records)
        frame = samples_frame(store, run_id)
    if fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return out, len(frame)
