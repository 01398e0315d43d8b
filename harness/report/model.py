"""What a report shows, computed from the store: per-cell summaries and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.plan.budgets import budget_for
from harness.stats import LatencySummary, summarize
from harness.store import CellRecord, RunRecord, Store


@dataclass
class CellView:
    cell: CellRecord
    summary: LatencySummary | None
    budget_name: str | None = None
    budget_ms: float | None = None
    verdict: str = "no budget"  # pass | over budget | failed | no budget
    flags: list[str] = field(default_factory=list)
    plot_uri: str = ""
    thermal_uri: str = ""

    @property
    def anchor(self) -> str:
        return f"cell-{self.cell.cell_id}"


@dataclass
class ReportData:
    run: RunRecord
    devices: list[dict[str, Any]]
    cells: list[CellView]
    skipped: list[dict[str, Any]]

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for view in self.cells:
            out[view.verdict] = out.get(view.verdict, 0) + 1
        return out

    @property
    def inferred(self) -> list[CellView]:
        return [v for v in self.cells if v.cell.artifact["inferred"]]


def _verdict(view: CellView, budgets: dict[str, float | None]) -> None:
    cell = view.cell
    if cell.status != "ok" or view.summary is None:
        view.verdict = "failed"
        return
    budget = budget_for(cell.artifact["stage"], cell.artifact["backend"], budgets)
    if budget is not None:
        view.budget_name, view.budget_ms = budget
        view.verdict = "pass" if view.summary.p95_ms < view.budget_ms else "over budget"
    if view.summary.warnings:
        view.flags.extend(view.summary.warnings)
    if cell.throttled:
        view.flags.append("thermally throttled during measurement")
    if cell.artifact["inferred"]:
        view.flags.append("inferred: " + ", ".join(cell.artifact["inferred"]))


def build_report_data(store: Store, run_id: str) -> ReportData:
    run = store.run(run_id)
    views = []
    for cell in store.cells(run_id):
        view = CellView(cell=cell, summary=summarize(cell.samples_ms) if cell.status == "ok" else None)
        _verdict(view, run.budgets)
        views.append(view)
    return ReportData(run=run, devices=store.devices(run_id), cells=views, skipped=store.skipped(run_id))
