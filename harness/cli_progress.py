"""Progress display for ``harness run``: a bar for the run and one line per finished cell (on stderr)."""

from __future__ import annotations

import sys

from harness.stats import per_utterance_p50, per_utterance_p95, run_values
from harness.termsafe import rich_safe as _safe  # device ids, build labels, a runner's reason
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichProgress:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(file=sys.stderr)
        self.run_id: str | None = None
        self._progress: Progress | None = None
        self._task = None
        self._current: dict[str, str] = {}  # device id -> the cell it is measuring

    def start(self, run_id: str, total: int, already_done: int) -> None:
        self.run_id = run_id
        if not self.enabled:
            return
        # Counted in runs: a cell (device x build) is several runs, each a process or runner invocation.
        self.console.print(f"run [bold]{run_id}[/]: {total} runs to measure across every cell and device"
                           + (f", {already_done} already stored (resumed)" if already_done else ""))
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True)
        self._progress.start()
        self._task = self._progress.add_task("starting", total=total, completed=already_done)

    def device_ready(self, facts) -> None:
        """On a lab, which controller node measures which device."""
        node = facts.facts.get("controller")
        if self._progress is not None and node:
            self._progress.console.print(_safe(f"  {facts.device_id} is measured on {node}"), highlight=False)

    def _describe(self) -> None:
        """Every device's current cell: devices are measured at once."""
        text = " | ".join(f"{device} · {label}" for device, label in sorted(self._current.items())) or "…"
        self._progress.update(self._task, description=_safe(text))

    def cell_started(self, spec) -> None:
        if self._progress is not None:
            self._current[spec.device.id] = spec.artifact.label
            self._describe()

    def profiling(self, spec, running: bool) -> None:
        """A cell's profiling step (after its measured runs, not counted in the bar): named while it lasts, so a
        long profile does not read as a stalled run."""
        if self._progress is None:
            return
        if running:
            self._current[spec.device.id] = f"{spec.artifact.label} (profiling)"
        else:
            self._current.pop(spec.device.id, None)
        self._describe()

    def cell_finished(self, spec, result) -> None:
        if self._progress is None:
            return
        self._progress.advance(self._task)
        self._current.pop(spec.device.id, None)
        self._describe()
        figures = _figures(spec, result.measurement) if result.status == "ok" else None
        if figures is not None:
            what = f"chain {spec.chain.name}, per utterance" if spec.chain is not None else spec.artifact.label
            line = "[green]✓[/] " + _safe(f"{spec.device.id} · {what}") + f": {figures}"
        else:
            why = f"{result.status}: {result.reason}" if result.status != "ok" else "ok, but no figures came back"
            line = "[red]✗[/] " + _safe(f"{spec.device.id} · {spec.artifact.label}: {why}")
        self._progress.console.print(line, markup=True, highlight=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _figures(spec, m) -> str | None:
    """An ok cell's headline figures: P50 and P95 of its samples, or a summary-only runner's own figures
    (onnxruntime_perf_test prints percentiles, QNN's runner a mean); None when it measured nothing."""
    if m is None:
        return None
    if m.samples_ms:
        run = run_values(m.samples_ms)
        # A transcription cell's samples are whole utterances through its chain, not one build's calls: its
        # P50 and P95 are the report's per-utterance ones (the same functions), not one run's Harrell-Davis.
        chain = spec.chain is not None
        p50_ms = per_utterance_p50(m.samples_ms) if chain else run.p50_ms
        p95_ms = per_utterance_p95(m.samples_ms) if chain else run.p95_ms
        p95 = f", P95 {p95_ms:.2f} ms" if p95_ms is not None else ""
        return f"P50 {p50_ms:.2f} ms{p95}"
    named = (("p50_ms", "P50"), ("p95_ms", "P95"), ("mean_ms", "mean"))
    shown = [f"{name} {m.summary_ms[key]:.2f} ms" for key, name in named if key in m.summary_ms]
    return ", ".join(shown[:2]) + " (the tool's own summary)" if shown else None
