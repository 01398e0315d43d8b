"""ONNX Runtime's own profile (``SessionOptions.enable_profiling``) -> operator records.

The profile is a Chrome-trace JSON list: one ``cat: "Session"`` event ``model_run`` per ``session.run`` and one
``cat: "Node"`` event per node execution (``name`` "<node>_kernel_time", ``args.op_name``, ``args.provider``).
A control-flow node (If, Loop, Scan) runs its subgraph's nodes inside its own kernel: ORT 1.32 logs them as
ordinary Node events, unprefixed, whose spans lie inside the parent's.  They are named under their parent
("branch › heavy_matmul", :func:`harness.profile.records.nested_name`) and left out of the run's totals, whose
parent already holds their time.
"""

from __future__ import annotations

import json

from harness.profile.records import OperatorTime, aggregate, nested_name

_KERNEL_SUFFIX = "_kernel_time"  # ORT also logs _fence_before/_fence_after events per node: not the kernel's time
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})  # the ONNX operators whose kernel runs subgraphs


def parse_ort_profile(text: str, skip_runs: int = 0) -> list[OperatorTime]:
    """Node events of every ``model_run`` after the first ``skip_runs`` (warm-ups) -> records, slowest first.
    Raises ValueError for text that is not an ORT profile."""
    try:
        events = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not an ONNX Runtime profile (not JSON: {exc.msg} at line {exc.lineno})") from None
    if not isinstance(events, list):
        raise ValueError("not an ONNX Runtime profile (the JSON is not a list of events)")
    return aggregate([(name, str(args.get("provider", "")), str(args.get("op_name", "")), event["dur"] / 1000.0)
                      for event, name, args, _ in _kernels(_events(events), skip_runs)])


def ort_run_durations(text: str, skip_runs: int = 0) -> list[float]:
    """Each ``model_run`` after the first ``skip_runs``: the session's own time of it, ms, in order (what a tool
    that prints no per-inference latency, onnxruntime_perf_test, still times of each inference it profiled)."""
    runs = sorted((e["ts"], e["dur"]) for e in _events(json.loads(text))
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    return [dur / 1000.0 for _, dur in runs[skip_runs:]]


def ort_run_totals(text: str, skip_runs: int = 0) -> list[float]:
    """Each ``model_run`` after the first ``skip_runs``: the summed time of its top-level node kernels (a
    subgraph's nodes are inside their control-flow node's time), ms, in order."""
    events = _events(json.loads(text))
    totals: dict[int, float] = {}
    for event, _, _, run in _kernels(events, 0):
        if not _is_nested(event):
            totals[run] = totals.get(run, 0.0) + event["dur"] / 1000.0
    return [totals.get(run, 0.0) for run in range(len(_runs(events)))][skip_runs:]


def _runs(events: list[dict]) -> list[tuple[float, float]]:
    return sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")


def _kernels(events: list[dict], skip_runs: int):
    """(event, name under its control-flow parents, args, run index) of each node kernel in a kept run; the
    event is marked ``_parent`` when it ran inside a control-flow node's span."""
    runs = _runs(events)
    kernels = sorted((e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith(_KERNEL_SUFFIX)),
                     key=lambda e: (e["ts"], -e["dur"]))
    open_parents: list[tuple[dict, str]] = []  # control-flow kernels whose span the next event may lie in
    for event in kernels:
        end = event["ts"] + event["dur"]
        while open_parents and not (event["ts"] >= open_parents[-1][0]["ts"] and
                                    end <= open_parents[-1][0]["ts"] + open_parents[-1][0]["dur"]):
            open_parents.pop()
        own = event["name"][: -len(_KERNEL_SUFFIX)]
        name = nested_name(open_parents[-1][1], own) if open_parents else own
        event = {**event, "_parent": bool(open_parents)}
        args = event.get("args") or {}
        if str(args.get("op_name", "")) in CONTROL_FLOW:
            open_parents.append((event, name))
        run = next((i for i, (start, stop) in enumerate(runs) if start <= event["ts"] <= stop), None)
        if run is not None and run >= skip_runs:
            yield event, name, args, run


def _is_nested(event: dict) -> bool:
    return bool(event.get("_parent"))


def _events(events: list) -> list[dict]:
    return [e for e in events if isinstance(e, dict) and isinstance(e.get("ts"), (int, float))
            and isinstance(e.get("dur"), (int, float))]
