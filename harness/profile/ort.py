"""ONNX Runtime's own profile (``SessionOptions.enable_profiling``) -> operator records.

The profile is a Chrome-trace JSON list: one ``cat: "Session"`` event ``model_run`` per ``session.run`` and one
``cat: "Node"`` event per node execution (``name`` "<node>_kernel_time", ``args.op_name``, ``args.provider``).
"""

from __future__ import annotations

import json

from harness.profile.records import OperatorTime, aggregate

_KERNEL_SUFFIX = "_kernel_time"  # ORT also logs _fence_before/_fence_after events per node: not the kernel's time


def parse_ort_profile(text: str, skip_runs: int = 0) -> list[OperatorTime]:
    """Node events of every ``model_run`` after the first ``skip_runs`` (warm-ups) -> records, slowest first.
    Raises ValueError for text that is not an ORT profile."""
    try:
        events = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not an ONNX Runtime profile (not JSON: {exc.msg} at line {exc.lineno})") from None
    if not isinstance(events, list):
        raise ValueError("not an ONNX Runtime profile (the JSON is not a list of events)")
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in _events(events)
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    kept = runs[skip_runs:]
    calls = []
    for event in _events(events):
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith(_KERNEL_SUFFIX) or not _inside(event["ts"], kept):
            continue
        args = event.get("args") or {}
        calls.append((name[: -len(_KERNEL_SUFFIX)], str(args.get("provider", "")), str(args.get("op_name", "")),
                      event["dur"] / 1000.0))
    return aggregate(calls)


def ort_run_durations(text: str, skip_runs: int = 0) -> list[float]:
    """Each ``model_run`` after the first ``skip_runs``: the session's own time of it, ms, in order (what a tool
    that prints no per-inference latency, onnxruntime_perf_test, still times of each inference it profiled)."""
    runs = sorted((e["ts"], e["dur"]) for e in _events(json.loads(text))
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    return [dur / 1000.0 for _, dur in runs[skip_runs:]]


def ort_run_totals(text: str, skip_runs: int = 0) -> list[float]:
    """Each ``model_run`` after the first ``skip_runs``: the summed time of its node kernels, ms, in order."""
    events = _events(json.loads(text))
    kept = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")[skip_runs:]
    kernels = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith(_KERNEL_SUFFIX)]
    return [sum(e["dur"] for e in kernels if start <= e["ts"] <= end) / 1000.0 for start, end in kept]


def _events(events: list) -> list[dict]:
    return [e for e in events if isinstance(e, dict) and isinstance(e.get("ts"), (int, float))
            and isinstance(e.get("dur"), (int, float))]


def _inside(ts: float, spans: list[tuple[float, float]]) -> bool:
    return any(start <= ts <= end for start, end in spans)
