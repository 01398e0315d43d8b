"""harness export: a run's raw samples (CSV, Parquet) or ExecuTorch v3 benchmark records."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.commands.common import RAW, db_arg, emit_json, output_place, resolve_run_id


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run: raw samples (CSV, Parquet) or ExecuTorch v3 benchmark records",
                       formatter_class=RAW,
                       description="csv / parquet: one row per sample (warm-up and measured, see the 'phase' column).\n"
                                   "  --what operators: one row per profiled operator (its time, calls and the backend that ran it).\n"
                                   "et-v3: ExecuTorch's v3 benchmark records (JSON), to join existing dashboards.")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id, or 'latest'")
    p.add_argument("--format", choices=["csv", "parquet", "et-v3"], default="csv",
                   help="csv (default), parquet, or et-v3 (ExecuTorch benchmark records)")
    p.add_argument("--what", choices=["samples", "operators"], default="samples",
                   help="csv / parquet: every latency sample (default), or every profiled operator of each cell "
                        "(plan key profile_runs)")
    p.add_argument("-o", "--output", type=Path,
                   help="output file (default: RUN_ID.FORMAT, or RUN_ID-operators.FORMAT)")
    db_arg(p)
    p.add_argument("--json", action="store_true", help="print what was written (path, rows) as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.format == "et-v3" and args.what != "samples":
        from harness.errors import UserError

        raise UserError("et-v3 records are latency figures; operators export as csv or parquet.",
                        fix=f"harness export {args.run_id} --what operators --format csv (or parquet).")
    output_place(args.output, folder=False)
    run_id = resolve_run_id(args.db, args.run_id, read_only=True)
    if args.format == "et-v3":
        from harness.report.et_v3 import write_et_v3

        out, rows = write_et_v3(args.db, run_id, args.output)
    else:
        from harness.store.export import export_run

        out, rows = export_run(args.db, run_id, args.format, args.output, what=args.what)
    if args.json:
        emit_json({"run_id": run_id, "path": str(out), "rows": rows, "format": args.format})
    else:
        what = "benchmark records" if args.format == "et-v3" else args.what
        print(f"{rows} {what} written to {out}", file=sys.stderr)
    return 0
