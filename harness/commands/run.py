"""harness run: measure a plan and store every sample (resumable)."""

from __future__ import annotations

import sys

from harness.commands.common import RAW, emit_json, lab_arg, lab_measurer, measuring_args, resuming
from harness.commands.measuring import STOPPED_HELP, measuring
from harness.followup import db_option, resume_command


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run", help="measure a plan and store every sample", formatter_class=RAW,
        description="Measure every build of PLAN on every device it names.\n\n"
                    "Each cell (device x build) is measured as the plan's 'runs' separate processes (or runner\n"
                    "invocations on a phone), interleaved in rounds across builds; each finished run is committed\n"
                    "at once: if the run is interrupted, rerun with --resume RUN_ID and only what is missing is\n"
                    "measured.\n"
                    "Exit status: 0 all cells measured, 1 some cells failed (their logs are stored), 2 bad input.",
        epilog=STOPPED_HELP + "\n\nexample:\n  harness run plans/host-demo.yaml\n  harness run plans/host-demo.yaml --resume 20261121-143000-7f3a")
    measuring_args(p, "continue an interrupted run, skipping its finished cells")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    lab_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.run.engine import run_plan
    from harness.store.state import stored_run_state

    resuming(args)
    outcome = measuring(args, "run", lambda progress: run_plan(
        args.plan, args.db, inventory_path=args.inventory, resume=args.resume, progress=progress,
        measure=lab_measurer(args)))
    state = stored_run_state(args.db, outcome.run_id)
    summary = {"run_id": outcome.run_id, "db": str(args.db), "status": state.status, "lost_cells": state.lost_cells,
               "cells": outcome.statuses, "skipped": outcome.skipped, "resumed_cells": outcome.resumed_cells}
    if args.json:
        emit_json({**summary, "already_complete": outcome.already_complete})
    elif outcome.already_complete:
        print(f"run {outcome.run_id} is complete: every cell holds its runs, so there is nothing to measure; the "
              f"run was left as it was.\nreport: harness report {outcome.run_id}{db_option(args.db)}", file=sys.stderr)
    else:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.statuses.items())) or "nothing new"
        print(f"run {outcome.run_id}: {counts}"
              + (f", {outcome.skipped} not runnable" if outcome.skipped else "")
              + f"\nreport: harness report {outcome.run_id}{db_option(args.db)}", file=sys.stderr)
        if outcome.statuses.get("lost"):
            print(_lost_summary(args, outcome.run_id), file=sys.stderr)
    return 1 if outcome.failed else 0


# What a run's lost cells wait for, by what happened to their device (harness.run.workers.lost_by_cause);
# {its} is "its" for one cell, "their" for several.
_LOST_WORDING = {
    "busy": "not measured: {its} phone is held by another controller; measure once it is free",
    "never answered": "not measured: {its} device never answered; check the serial and adb (adb devices)",
    "mid-run": "lost {its} device mid-run; measure once it answers again (adb devices)",
}


def _lost_summary(args, run_id: str) -> str:
    """One line per cause of the run's lost cells, then the command that measures them."""
    from harness.run.workers import lost_by_cause
    from harness.store import Store
    from harness.words import counted

    with Store(args.db, read_only=True) as store:
        causes = lost_by_cause(store.cells(run_id, with_samples=False))
    lines = [f"{counted(n, 'cell')} {_LOST_WORDING[cause].format(its='its' if n == 1 else 'their')}"
             for cause, n in sorted(causes.items())]
    them = "it" if sum(causes.values()) == 1 else "them"
    return "\n".join([*lines, f"measure {them} with:\n  {resume_command('run', args.plan, run_id, args.db, args.inventory)}"])
