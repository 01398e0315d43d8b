"""harness nightly: run a plan, compare with the last good night, exit 1 on a regression."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import (RAW, emit_json, lab_arg, lab_measurer, measuring_args, output_place,
                                     resolve_run_id, resuming)
from harness.commands.measuring import STOPPED_HELP, measuring
from harness.errors import UserError
from harness.termsafe import term_safe


def add_parser(sub) -> None:
    p = sub.add_parser(
        "nightly", help="run a plan, compare with the last good night, exit 1 on regressions", formatter_class=RAW,
        description="Run PLAN (resumable like 'run'), compare with a baseline (the newest complete run of the same\n"
                    "plan whose nightly passed, else the newest complete one; or --baseline), and write\n"
                    "index.html, junit.xml and nightly.json to the output folder.\n"
                    "Exit status: 0 nothing failing, 1 a regression, budget miss or failed cell, 2 bad input.",
        epilog=STOPPED_HELP + "\n\ncron, every night at 02:30, history kept in one database:\n"
               "  30 2 * * *  cd /srv/harness && .venv/bin/harness nightly plans/lab.yaml --db reports/harness.db -q")
    measuring_args(p, "continue an interrupted nightly run", "plan file (not needed with --compare-only)",
                   plan_needed=False)
    p.add_argument("--baseline", metavar="RUN_ID", help="compare with this run (a run id, its start, or 'latest') instead of the last good night")
    p.add_argument("--compare-only", metavar="RUN_ID", help="compare a stored run without running anything")
    p.add_argument("--threshold", type=number.fraction, default=0.05, help="smallest latency change worth calling (default 0.05)")
    p.add_argument("-o", "--output", type=Path,
                   help="output folder (default: RUN_ID beside the database, reports/RUN_ID for the default --db)")
    p.add_argument("--json", action="store_true", help="print the verdict and the failing checks as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    lab_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.store.state import stored_run_state

    if args.plan is None and not args.compare_only:
        raise UserError("no plan given.", fix="harness nightly PLAN, or harness nightly --compare-only RUN_ID.")
    output_place(args.output, folder=True)
    resuming(args)
    outcome = _judged_night(args)
    failing = [c for c in outcome.checks if c.failing]
    state = stored_run_state(args.db, outcome.run_id)
    if args.json:
        emit_json({"run_id": outcome.run_id, "baseline_run_id": outcome.baseline_id, "passed": outcome.passed,
                   "status": state.status, "lost_cells": state.lost_cells,
                   "failing": [c.__dict__ for c in failing], "out_dir": str(outcome.out_dir)})
    else:
        _print_verdict(outcome, failing)
        if state.lost_cells:  # judged with them (they fail it); --compare-only refuses such a run
            _print_lost(args, state)
    return 0 if outcome.passed else 1


def _print_lost(args, state) -> None:
    """The command that measures a night's lost cells and judges it again."""
    from harness.followup import resume_command
    from harness.words import counted

    print(f"run {state.run_id} is {state.label}: once the devices answer, measure the "
          f"{counted(state.lost_cells, 'lost cell')} and judge the night again with:", file=sys.stderr)
    print(term_safe(f"  {resume_command('nightly', args.plan, state.run_id, args.db, args.inventory)}"), file=sys.stderr)


def _judged_night(args):
    """Measure the plan (or, with --compare-only, take a stored run) and judge it against the baseline."""
    from harness.nightly.run import compare_and_write, nightly, refuse_unusable_baseline

    # 'latest' or the start of a run id, as every other command takes a run
    baseline = resolve_run_id(args.db, args.baseline) if args.baseline else None
    if args.compare_only:
        run_id = resolve_run_id(args.db, args.compare_only)
        if baseline is not None:
            refuse_unusable_baseline(args.db, baseline, run_id)
        return compare_and_write(args.db, run_id, baseline, args.output, args.threshold, replay=True)
    if baseline is not None:  # before a night is spent measuring
        refuse_unusable_baseline(args.db, baseline, args.resume, args.plan)
    return measuring(args, "nightly", lambda progress: nightly(
        args.plan, args.db, args.output, args.inventory, baseline, args.resume, args.threshold, progress,
        lab_measurer(args)))


def _print_verdict(outcome, failing: list) -> None:
    from harness.report.verdict import headline
    from harness.words import counted

    base = outcome.baseline_id or "none (first night of this plan)"
    head = headline(outcome.checks)
    print(f"{'PASSED' if outcome.passed else 'FAILED'} nightly {outcome.run_id} against {base}: "
          f"{counted(len(outcome.checks), 'check')}, {len(failing)} failing · "
          + " · ".join(head.phrases), file=sys.stderr)
    for c in failing + head.undecided:  # the banner counts the undecided: name them, as the page does
        print(term_safe(f"  {c.status}: {c.device_id} · {c.subject} ({c.kind}): {c.detail}"), file=sys.stderr)
    print(f"report: {outcome.out_dir / 'index.html'} · {outcome.out_dir / 'junit.xml'} · "
          f"{outcome.out_dir / 'nightly.json'}", file=sys.stderr)
