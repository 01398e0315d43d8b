"""harness report: a stored run as a self-contained HTML report."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.commands.common import RAW, db_arg, output_place, resolve_run_id


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="render a stored run as a self-contained HTML report", formatter_class=RAW,
                       description="Render RUN_ID (or 'latest') from the database; nothing is re-measured.",
                       epilog="example:\n  harness report latest -o reports/latest && xdg-open reports/latest/index.html")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id from 'harness runs' (or its start), or 'latest'")
    p.add_argument("-o", "--output", type=Path,
                   help="output folder, index.html is written there (default: RUN_ID beside the database, "
                        "reports/RUN_ID for the default --db)")
    db_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.report import write_report

    output_place(args.output, folder=True)
    run_id = resolve_run_id(args.db, args.run_id, read_only=True)
    # Beside the database (reports/RUN_ID for the default reports/harness.db), so the command a report's footer
    # prints works as printed.
    target = write_report(args.db, run_id, args.output or args.db.parent / run_id)
    print(f"report written: {target}", file=sys.stderr)
    return 0
