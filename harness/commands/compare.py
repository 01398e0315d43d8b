"""harness compare: two stored runs cell by cell (exit 1 on a significant slowdown)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import RAW, db_arg, resolve_run_id
from harness.termsafe import term_safe


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare two stored runs cell by cell; exit 1 on a significant slowdown", formatter_class=RAW,
        description="Compare run B (the candidate) with run A (the baseline), both already in the database; nothing\n"
                    "is measured. Cells are matched like with like, as the nightly matches them: the same device and\n"
                    "build identity (model, stage, format, backend, quantization); cells whose settings, runner or\n"
                    "device facts differ are 'not comparable', with the reason. Each cell gets B / A of its run-level\n"
                    "medians with a 99% interval and a verdict by the nightly's rule (significant at alpha 0.01 and\n"
                    "beyond --threshold); transcription chains get their WER difference. No budgets, no history.\n"
                    "Exit status: 1 when some cell is significantly slower (a 'regression', or a 'shift': the same\n"
                    "bytes measured significantly slower, so the machine moved), 0 otherwise, 2 bad input.",
        epilog="examples:\n"
               "  harness compare 20261121-143000-7f3a latest\n"
               "  harness compare 20261121-143000-7f3a 20261122-143000-91bc --only-changed --threshold 0.1\n"
               "  harness compare A_RUN B_RUN --format json -o compare.json\n"
               "  harness compare A_RUN B_RUN --format html -o reports/compare.html")
    p.add_argument("baseline", metavar="A",
                   help="the baseline run: a run id from 'harness runs' (or its start), or 'latest'")
    p.add_argument("candidate", metavar="B", help="the run compared with A: a run id (or its start), or 'latest'")
    p.add_argument("--threshold", type=number.fraction, default=0.05,
                   help="smallest change worth calling, as a fraction (default 0.05: 5%%)")
    p.add_argument("--only-changed", action="store_true",
                   help="list only cells that changed (slower, faster, suspect, or moved with the same bytes)")
    p.add_argument("--format", choices=["text", "json", "html"], default="text",
                   help="text (default), json, or a self-contained html page")
    p.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    db_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.nightly.compare import compare_stored_runs, render

    a, b = resolve_run_id(args.db, args.baseline, True), resolve_run_id(args.db, args.candidate, True)
    result = compare_stored_runs(args.db, a, b, args.threshold)
    text = render(result, args.format, only_changed=args.only_changed)
    if args.output:
        from harness.outfile import write_text

        write_text(args.output, text)
    else:  # device and build names come from outside: no control characters to the terminal
        sys.stdout.write(term_safe(text, keep_newlines=True) if args.format == "text" else text)
    if args.format != "text" or args.output:  # the text format's first line says the same
        print(result.headline() + (f"; written to {args.output}" if args.output else ""), file=sys.stderr)
    unprofiled = [f"run {side} ({run_id}) {why}" for side, run_id in (("A", a), ("B", b))
                  if (why := _unprofiled(args.db, run_id))]
    if unprofiled:  # else a reader looks for the operators that explain a change, and finds no word why not
        print(f"note: no operator comparison: {'; '.join(unprofiled)}.", file=sys.stderr)
    return 1 if result.slower else 0


def _unprofiled(db: Path, run_id: str) -> str:
    """Why a run has no operators to compare ("was not profiled (profile_runs: 0)"); "" when some cell has."""
    from harness.store import Store

    with Store(db, read_only=True) as store:
        if store.has_profiles(run_id):  # compare has loaded both runs' samples once already
            return ""
        if store.run(run_id).settings.get("profile_runs") == 0:
            return "was not profiled (profile_runs: 0)"
    return "has no operator profile (a runner that cannot profile, or a profiling run that failed: see its report)"
