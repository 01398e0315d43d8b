"""ExecuTorch's ETDump (read with ``executorch.devtools.Inspector``) -> operator records.

One "Execute" event block per method execution holds, per executed instruction, an ``OPERATOR_CALL`` wrapping a
``native_call_<op>`` (a kernel ExecuTorch ran itself) or a ``DELEGATE_CALL`` (a whole delegate subgraph); each
event's ``perf_data.raw`` has one duration per execution.  Delegate-internal events (XNNPACK's own per-op
profiling) are inside a DELEGATE_CALL's time, so a delegate call is counted once, as one record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.profile.records import PORTABLE_CPU, UNNAMED_DELEGATE, OperatorTime, aggregate

# ExecuTorch's delegate ids -> the backend names the report shows (and coverage compares with the build's).
DELEGATE_NAMES = {"XnnpackBackend": "XNNPACK", "QnnBackend": "QNN HTP", "CoreMLBackend": "Core ML",
                  "MPSBackend": "MPS", "VulkanBackend": "Vulkan"}
_NATIVE_PREFIX = "native_call_"
_DELEGATE_CALL = "DELEGATE_CALL"
OP_TYPES_MAX_CHARS = 120  # a delegate call may hold hundreds of ATen ops: the report names the first few


@dataclass(frozen=True)
class EtEvent:
    """One profiled instruction of the Execute blocks, as the Inspector gives it."""

    name: str
    delegate: str | None  # the delegate's id (XnnpackBackend) for a delegate call; None for a kernel call
    op_types: tuple[str, ...]  # ATen ops it stands for (known with an ETRecord)
    durations_ms: tuple[float, ...]  # one per execution, in execution order
    delegated_op: bool = False  # an event a delegate logged from inside its own call


def parse_et_events(events: list[EtEvent], skip_runs: int = 0) -> list[OperatorTime]:
    """Kernel calls and delegate calls, each execution after the first ``skip_runs`` -> records, slowest first.
    An instruction that runs more than once per execution (two cumsums) is told apart by its position (#2)."""
    counted = [e for e in events if not e.delegated_op and
               (e.name.startswith(_NATIVE_PREFIX) or e.name == _DELEGATE_CALL)]
    names = [_display_name(e) for e in counted]
    repeats = Counter(names)
    seen: Counter[str] = Counter()
    calls = []
    for event, name in zip(counted, names):
        seen[name] += 1
        unique = f"{name} #{seen[name]}" if repeats[name] > 1 else name
        backend = _delegate_name(event) if event.name == _DELEGATE_CALL else PORTABLE_CPU
        op_type = ", ".join(dict.fromkeys(event.op_types))  # each kind once: a quantized call repeats its dequantize
        op_type = op_type if len(op_type) <= OP_TYPES_MAX_CHARS else op_type[:OP_TYPES_MAX_CHARS - 1] + "…"
        calls.extend((unique, backend, op_type, ms) for ms in event.durations_ms[skip_runs:])
    return aggregate(calls)


def et_run_totals(events: list[EtEvent], skip_runs: int = 0) -> list[float]:
    """Each execution after the first ``skip_runs``: the summed time of its kernel and delegate calls, ms."""
    counted = [e.durations_ms[skip_runs:] for e in events if not e.delegated_op and
               (e.name.startswith(_NATIVE_PREFIX) or e.name == _DELEGATE_CALL)]
    return [sum(values) for values in zip(*counted)] if counted else []


def _delegate_name(event: EtEvent) -> str:
    return DELEGATE_NAMES.get(event.delegate, event.delegate) if event.delegate else UNNAMED_DELEGATE


def _display_name(event: EtEvent) -> str:
    if event.name == _DELEGATE_CALL:
        return f"{_delegate_name(event)} call" if not event.delegate else f"{_delegate_name(event)} delegate call"
    return event.name[len(_NATIVE_PREFIX):]


def inspector_events(inspector) -> list[EtEvent]:
    """The Execute blocks' events of an ``executorch.devtools.Inspector``, in order, as plain records."""
    out = []
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for event in block.events:
            raw = event.perf_data.raw if event.perf_data is not None else []
            out.append(EtEvent(name=event.name, delegate=event.delegate_backend_name,
                               op_types=tuple(event.op_types or ()), durations_ms=tuple(float(v) for v in raw),
                               delegated_op=bool(event.is_delegated_op)))
    return out


def read_etdump(etdump: Path, etrecord: str | None, skip_runs: int,
                notes: list[str]) -> tuple[list[OperatorTime], list[float]]:
    """An ETDump file (with the build's ETRecord when there is one, for the ATen ops behind each call) -> its
    operators and each execution's summed operator time."""
    import warnings

    from executorch.devtools import Inspector

    if etrecord is None:
        notes.append("no ETRecord beside this build: operators are named without their source ops "
                     "(export with an ETRecord, <name>.etrecord beside the .pte, to map them)")
    with warnings.catch_warnings():  # "Output Buffer not found": no intermediate outputs are asked for
        warnings.simplefilter("ignore")
        try:
            inspector = Inspector(etdump_path=str(etdump), etrecord=etrecord)
        except Exception as exc:  # noqa: BLE001 - a damaged ETRecord, or one from another export of the build
            if etrecord is None:
                raise
            notes.append(f"the ETRecord beside this build could not be read ({type(exc).__name__}: "
                         f"{str(exc)[:160]}); operators are named without their source ops (export it again)")
            inspector = Inspector(etdump_path=str(etdump), etrecord=None)
    events = inspector_events(inspector)
    return parse_et_events(events, skip_runs), et_run_totals(events, skip_runs)
