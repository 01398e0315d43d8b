"""ExecuTorch's v3 benchmark records, rendered from a stored run's report data (for existing dashboards)."""

from __future__ import annotations

from pathlib import Path

from harness.report.model import build_report_data
from harness.stats import per_utterance_p50
from harness.outfile import write_text
from harness.store import Store
from harness.validation import strict_json


def et_v3_records(store: Store, run_id: str) -> list[dict]:
    """ExecuTorch's v3 benchmark records (the PyTorch OSS benchmark database format), one per cell x metric.

    Metric names follow ExecuTorch's own (``model_load_time(ms)``, ``avg_inference_latency(ms)``,
    ``peak_inference_mem_usage(mb)``); percentiles and WER are added under names of the same style.
    """
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
        if view.summary is None or view.role:  # failed, or not one of the plan's own cells
            continue
        cell, s = view.cell, view.summary
        extra = {"cell_key": cell.cell_key, "iterations": s.n, "runs": s.runs}
        # benchmark_values: one per run (the runs are the independent measurements), as ExecuTorch lists repeats.
        run_p50 = [r.p50_ms for r in cell.run_values()]
        run_p95 = [r.p95_ms for r in cell.run_values() if r.p95_ms is not None]
        if s.mean_ms is not None:
            out.append(record(cell.device_id, cell.artifact, "avg_inference_latency(ms)", [s.mean_ms], extra))
        out.append(record(cell.device_id, cell.artifact, "p50_inference_latency(ms)", run_p50, extra))
        if run_p95:
            out.append(record(cell.device_id, cell.artifact, "p95_inference_latency(ms)", run_p95, extra))
        if cell.load_ms is not None:
            out.append(record(cell.device_id, cell.artifact, "model_load_time(ms)", [cell.load_ms], extra))
        if cell.peak_rss_mb is not None:
            out.append(record(cell.device_id, cell.artifact, "peak_inference_mem_usage(mb)", [cell.peak_rss_mb], extra))
    for chain in data.chains:
        extra = {"cell_key": chain.cell.cell_key, "chain": chain.chain.get("name"), "corpus": chain.chain.get("corpus")}
        art = chain.cell.artifact
        if chain.score.wer is not None:
            out.append(record(chain.cell.device_id, art, "wer(%)", [100 * chain.score.wer], extra))
        p50_ms = per_utterance_p50([t["total_ms"] for t in chain.cell.transcripts])  # the chain row's own P50
        if p50_ms is not None:
            out.append(record(chain.cell.device_id, art, "p50_utterance_latency(ms)", [p50_ms], extra))
    return out


def write_et_v3(db_path: Path, run_id: str, out: Path | None) -> tuple[Path, int]:
    """Write the run's v3 records to ``out`` (default ``<run_id>.json``); return the path and record count."""
    out = out or Path(f"{run_id}.json")
    with Store(db_path, read_only=True) as store:
        records = et_v3_records(store, run_id)
    write_text(out, strict_json(records, indent=1) + "\n")
    return out, len(records)
