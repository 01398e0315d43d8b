"""``harness nightly``: run (or resume) a plan, compare with a baseline, write report, JUnit and JSON."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.followup import resume_command
from harness.nightly.checks import Check, history_checks, run_checks
from harness.nightly.history import build_series
from harness.nightly.noise import learn_floors
from harness.nightly.outputs import write_junit, write_summary
from harness.nightly.second_look import undecided_pairs
from harness.outfile import write_text
from harness.report.html import render
from harness.report.model import build_report_data
from harness.report.verdict import FAILING
from harness.run.engine import run_plan
from harness.store import Store
from harness.store.state import run_state


@dataclass
class NightlyOutcome:
    run_id: str
    baseline_id: str | None
    checks: list[Check]
    out_dir: Path

    @property
    def passed(self) -> bool:
        return not any(c.failing for c in self.checks)


def refuse_unusable_baseline(db: Path, baseline_id: str, run_id: str | None = None, plan: Path | None = None) -> None:
    """A pinned --baseline (once resolved) must be another, finished run of the same plan (``run_id``'s, else
    ``plan``'s): an unfinished one has cells missing (every check came out 'new' and the night passed), a run
    judged against itself always passes, and another plan's run is refused before a night is spent measuring."""
    if baseline_id == run_id:
        raise UserError(f"--baseline {baseline_id} is the run being judged; a run compared with itself always "
                        "passes.", path=db, fix="pin an earlier run of the plan ('harness runs' lists them), "
                                                "or leave --baseline out for the latest finished one.")
    with Store(db) as store:
        if run_id is not None and store.run(baseline_id).started_at > store.run(run_id).started_at:
            raise UserError(f"--baseline {baseline_id} started after the run being judged, {run_id}: a night is "
                            "judged against an earlier one.", path=db,
                            fix="pin an earlier run of the plan ('harness runs' lists them), or compare the two "
                                f"runs without a verdict: harness compare {run_id} {baseline_id}.")
        if run_id is not None or plan is not None:
            from harness.plan import load_plan

            _refuse_other_plan(store, db, baseline_id,
                               store.run(run_id).plan_name if run_id is not None else load_plan(plan)[0].name)
        unfinished = run_state(store, baseline_id).unfinished
    if unfinished:
        raise UserError(f"--baseline {baseline_id}: {unfinished}; its missing cells would all count as new.",
                        path=db, fix="pin a finished run ('harness runs' lists them; status complete), or leave "
                                     "--baseline out for the latest finished one.")


def default_baseline(store: Store, plan_name: str, before_run_id: str | None = None) -> str | None:
    """The newest complete run of the plan whose stored nightly verdict passed, else the newest complete run.
    A failed night is no yardstick: judged against a night that already lacked a build, the next night passes
    with the build still missing.  A run with lost cells is not complete (harness.store.state), as a pinned
    --baseline must not be either: its lost cells would all count as new."""
    newest = None
    for run_id in store.complete_runs(plan_name, before_run_id):
        if not run_state(store, run_id).complete:
            continue
        newest = newest or run_id
        verdict = store.stored_verdicts(run_id).get(run_id)
        if verdict is not None and not any(c.status in FAILING for c in verdict.checks):
            return run_id
    return newest


def _refuse_other_plan(store: Store, db: Path, baseline_id: str, plan_name: str) -> None:
    if store.run(baseline_id).plan_name != plan_name:
        raise UserError(f"baseline {baseline_id} is a run of another plan.", path=db,
                        fix="pin a baseline made from the same plan, or leave --baseline out.")


def compare_and_write(db: Path, run_id: str, baseline_id: str | None, out_dir: Path | None,
                      threshold: float, replay: bool = False) -> NightlyOutcome:
    """Checks of a stored run against a stored baseline; writes index.html, junit.xml, nightly.json (in
    ``out_dir``, by default RUN_ID beside the database, where 'harness report' writes too).  The verdict is
    stored as the run's own unless ``replay`` (``--compare-only``) finds one stored already: a night's verdict
    is what its nightly judged, and a later replay against another baseline must not rewrite it (its JUnit,
    nightly.json and exit code were that verdict's)."""
    out_dir = out_dir or db.parent / run_id
    with Store(db) as store:
        state = run_state(store, run_id)
        # A verdict on part of the plan would pass every build that was never measured.  A night just measured
        # whose cells were lost is judged all the same (they fail it, and its JUnit names them); judged again
        # (--compare-only), a run must be finished first, as a baseline must.
        unfinished = state.unfinished if replay or state.status != "incomplete" else None
        if unfinished:
            raise UserError(f"run {run_id}: {unfinished}; it has no verdict until it is finished.", path=db,
                            fix=f"resume it with '{resume_command('nightly', store.run(run_id).plan_path, run_id, db)}'"
                                " (that compares it too).")
        if baseline_id is None:
            baseline_id = default_baseline(store, store.run(run_id).plan_name, run_id)
        else:
            _refuse_other_plan(store, db, baseline_id, store.run(run_id).plan_name)
        current = build_report_data(store, run_id)
        baseline = build_report_data(store, baseline_id) if baseline_id else None
        history = store.history(current.run.plan_name, until=current.run.started_at)
    floors = learn_floors(history, exclude_run=run_id)
    series = build_series([row for row in history if not row["calibration"]], threshold)
    checks = run_checks(current, baseline, threshold, floors) + history_checks(series, run_id, current)
    current.checks, current.baseline_run_id, current.history = checks, baseline_id, series
    with Store(db) as store:  # the verdict as judged tonight: the history site shows this one, not a replay
        kept = store.stored_verdicts(run_id).get(run_id) if replay else None
        if kept is None:
            store.record_checks(run_id, baseline_id, checks)
    # A night judged with lost cells leads with how to finish it, as its `harness report` page does; a folder
    # write_text makes is removed if the write fails.
    write_text(out_dir / "index.html", render(current, db, state.unfinished))
    write_junit(checks, run_id, out_dir / "junit.xml")
    write_summary(checks, run_id, baseline_id, out_dir / "nightly.json")
    return NightlyOutcome(run_id, baseline_id, checks, out_dir)


def nightly(plan: Path, db: Path, out_dir: Path | None, inventory: Path | None, baseline: str | None,
            resume: str | None, threshold: float, progress=None, measure=None) -> NightlyOutcome:
    """Measure the plan with last night's changed builds re-measured beside tonight's, then compare."""
    from harness.plan import load_plan

    # No database yet is a first night, with no baseline: opening one here would create it (and its folders)
    # before run_plan has checked the plan, its builds and the inventory.
    if baseline is None and resume is None and db.is_file():
        name = load_plan(plan)[0].name
        with Store(db) as store:
            baseline = default_baseline(store, name)
    outcome = run_plan(plan, db, inventory_path=inventory, resume=resume, progress=progress, reference_run=baseline,
                       measure=measure)
    extra = undecided_pairs(db, outcome.run_id, threshold)
    if extra:
        if progress is not None:
            print(f"second look: {len(extra) // 2} changed build(s) too noisy to call against last night's bytes; "
                  "measuring as many paired rounds again", file=sys.stderr)
        run_plan(plan, db, inventory_path=inventory, resume=outcome.run_id, progress=progress, measure=measure,
                 extra_rounds=extra)
    if baseline is None and resume is not None:
        with Store(db) as store:
            baseline = store.run(resume).settings.get("reference_run")
    return compare_and_write(db, outcome.run_id, baseline, out_dir, threshold)
