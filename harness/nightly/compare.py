"""``harness compare A B``: any two stored runs, cell by cell (what ``pyperf compare_to`` is to pyperf users).

Cells are matched like with like exactly as the nightly matches them (:func:`harness.run.engine.identity_of`,
:func:`harness.nightly.checks.not_comparable`) and judged by the nightly's own rule
(:func:`harness.nightly.checks.latency_check`, :func:`harness.nightly.checks.wer_check`), so a change called
here is one the nightly would call.  Unlike the nightly, nothing else is judged: no budgets, no history, no
learned noise floors (two arbitrary runs need not share a plan), and only a significant slowdown fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.followup import db_option
from harness.nightly.checks import SHIFT, Check, _facts, latency_check, not_comparable, wer_check
from harness.report.model import ReportData, build_report_data
from harness.run.engine import identity_of
from harness.stats.compare import ALPHA, DEFAULT_THRESHOLD
from harness.store import Store
from harness.words import counted

# Every ratio's interval is printed beside its verdict, so it is the test's own: it excludes 1 exactly when the
# test is significant at ALPHA.
CI_LEVEL = 1 - ALPHA
SLOWER = "regression"  # a significant slowdown of the build
# What fails a comparison (exit 1): any significant slowdown, a build's or a same-bytes "shift" (labelled as such).
# Statuses that say something moved (what --only-changed keeps): called changes, and moves of the same bytes.
CHANGED = ("regression", "improvement", "suspect", "shift")
FORMATS = ("text", "json", "html")


@dataclass
class RunComparison:
    baseline_id: str  # A
    candidate_id: str  # B
    threshold: float
    checks: list[Check]
    alpha: float = ALPHA
    ci_level: float = CI_LEVEL
    incomplete: list[str] = field(default_factory=list)  # which side is not a finished run, and why
    notes: list[str] = field(default_factory=list)  # what makes the comparison unusual (a run with itself, two plans)
    db_option: str = ""  # ' --db PATH' for the command the page prints (harness.followup.db_option)

    @property
    def slower(self) -> list[Check]:
        """Every significantly slower latency check: a regression, or a shift of the same bytes upward."""
        return [c for c in self.checks if c.kind == "latency"
                and (c.status == SLOWER or (c.status == SHIFT and (c.data.get("ratio") or 1.0) > 1))]

    def shown(self, only_changed: bool) -> list[Check]:
        return [c for c in self.checks if c.status in CHANGED] if only_changed else list(self.checks)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return dict(sorted(out.items()))

    def headline(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in self.counts().items()) or "nothing to compare"
        head = f"{self.candidate_id} against {self.baseline_id}: {counted(len(self.checks), 'check')} ({counts})"
        return "; ".join([head, *self.incomplete, *self.notes])


def compare_stored_runs(db: Path, baseline_id: str, candidate_id: str,
                        threshold: float = DEFAULT_THRESHOLD) -> RunComparison:
    """Every latency cell and transcription chain of B against A's of the same identity."""
    with Store(db, read_only=True) as store:
        a, b = build_report_data(store, baseline_id), build_report_data(store, candidate_id)
        # A cell "only in" one side may be one an interrupted run never reached: say which side that is.
        unfinished = [f"{side} {data.run.run_id} is an {why}" for side, data in (("A", a), ("B", b))
                      if (why := data.state.unfinished)]
    checks = latency_checks(a, b, threshold) + chain_checks(a, b)
    return RunComparison(baseline_id, candidate_id, threshold, checks, incomplete=unfinished,
                         notes=_unusual(a.run, b.run), db_option=db_option(db))


def _unusual(a, b) -> list[str]:
    """A run compared with itself says nothing (every ratio is 1); runs of two plans compare only the cells they
    share: both are said, so a quiet result is not read as 'nothing changed'."""
    if a.run_id == b.run_id:
        return ["A and B are the same run: every ratio is 1 and nothing can change"]
    if a.plan_name != b.plan_name:
        return [f"A is a run of plan '{a.plan_name}' and B of plan '{b.plan_name}': only cells of the same device and "
                "build configuration are compared"]
    return []


def _own_cells(data: ReportData) -> dict[tuple, object]:
    """The plan's own latency cells by identity (A/A copies and re-measured references are not)."""
    return {identity_of(v.cell.device_id, v.cell.artifact): v for v in data.cells if not v.role}


def latency_checks(a: ReportData, b: ReportData, threshold: float) -> list[Check]:
    before, now = _own_cells(a), _own_cells(b)
    checks = []
    for key in sorted(set(before) | set(now), key=str):
        va, vb = before.get(key), now.get(key)
        view = vb or va
        device, label = view.cell.device_id, view.cell.label
        if va is None or vb is None:
            missing, present = (a, b) if va is None else (b, a)
            checks.append(Check(device, label, "latency", "not comparable",
                                f"only in {present.run.run_id}: {missing.run.run_id} has no cell of this build "
                                "on this device"))
        elif va.summary is None or vb.summary is None:
            which = [f"in {d.run.run_id} the cell {v.cell.status}" + (f" ({v.cell.reason})" if v.cell.reason else "")
                     for d, v in ((a, va), (b, vb)) if v.summary is None]
            checks.append(Check(device, label, "latency", "not comparable", "nothing measured to compare: "
                                + "; ".join(which)))
        elif why := not_comparable(va, vb, _facts(a, device), _facts(b, device)):
            checks.append(Check(device, label, "latency", "not comparable", why))
        else:
            checks.append(latency_check(va, vb, threshold, None, ci_level=CI_LEVEL, baseline=f"in {a.run.run_id}"))
    return checks


def chain_checks(a: ReportData, b: ReportData) -> list[Check]:
    """WER of each transcription chain (by device and chain name) on the same utterances."""
    before = {(c.cell.device_id, c.chain.get("name")): c for c in a.chains}
    now = {(c.cell.device_id, c.chain.get("name")): c for c in b.chains}
    checks = []
    for key in sorted(set(before) | set(now), key=str):
        ca, cb = before.get(key), now.get(key)
        if ca is None or cb is None:
            present = b if ca is None else a
            checks.append(Check(key[0], key[1], "wer", "not comparable", f"only in {present.run.run_id}"))
        elif [u.id for u in ca.score.utterances] != [u.id for u in cb.score.utterances] or not ca.score.words:
            checks.append(Check(key[0], key[1], "wer", "not comparable",
                                f"not the same utterances ({len(ca.score.utterances)} in {a.run.run_id}, "
                                f"{len(cb.score.utterances)} in {b.run.run_id})"))
        else:
            checks.append(wer_check(ca, cb))
    return checks


# -- output ------------------------------------------------------------------------------------------------


def render(result: RunComparison, fmt: str, only_changed: bool = False) -> str:
    return {"text": as_text, "json": as_json, "html": as_html}[fmt](result, only_changed)


def as_text(result: RunComparison, only_changed: bool) -> str:
    lines = [f"{result.headline()}; B / A, {result.ci_level:.0%} intervals, called at α = {result.alpha:g} and a "
             f"{result.threshold:.0%} threshold"]
    for c in result.shown(only_changed):
        lines.append(f"  {c.status:<15} {c.device_id} · {c.subject} ({c.kind}): {c.detail}")
    return "\n".join(lines) + "\n"


def as_json(result: RunComparison, only_changed: bool) -> str:
    import json

    payload = {"baseline_run_id": result.baseline_id, "candidate_run_id": result.candidate_id,
               "threshold": result.threshold, "alpha": result.alpha, "ci_level": result.ci_level,
               "counts": result.counts(), "slower": len(result.slower), "incomplete": result.incomplete, "notes": result.notes,
               "checks": [{"device_id": c.device_id, "subject": c.subject, "kind": c.kind, "status": c.status,
                           "detail": c.detail, "data": _figures(c.data)} for c in result.shown(only_changed)]}
    return json.dumps(payload, indent=2, default=str) + "\n"


def _figures(data: dict) -> dict:
    """A check's figures without the comparison's own verdict and reason: the check's status and detail are the one
    verdict (a same-bytes 'too noisy' is a 'pass', a significant same-bytes move a 'shift')."""
    return {k: v for k, v in data.items() if k not in ("verdict", "reason")}


def as_html(result: RunComparison, only_changed: bool) -> str:
    from harness import __version__
    from harness.report.html import TEMPLATES, environment

    css = (TEMPLATES / "report.css").read_text()
    return environment().get_template("compare.html.j2").render(
        result=result, checks=result.shown(only_changed), only_changed=only_changed, css=css, version=__version__,
        counted=counted)
