"""harness export: a run's raw samples, operators, cells or transcripts (CSV, Parquet), or ExecuTorch v3 records."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.commands.common import RAW, db_arg, emit_json, output_place, resolve_run_id

# What --what exports (csv / parquet), each with what one row is.
WHAT = {
    "samples": "one row per latency sample, warm-up and measured (see the 'phase' column)",
    "operators": "one row per profiled operator of each cell's profiling runs (plan key profile_runs)",
    "cells": "one row per cell with the summary the report shows: P50/P95 with their intervals, runs, status, "
             "reason, peak memory, energy, coverage, build identity",
    "transcripts": "one row per utterance of the transcription cells: reference, hypothesis, per-utterance times, "
                   "word errors",
}


def add_parser(sub) -> None:
    tables = "\n".join(f"  --what {name}: {row}." for name, row in WHAT.items())
    p = sub.add_parser("export", help="export a run: samples, operators, cells or transcripts (CSV, Parquet), "
                                      "or ExecuTorch v3 benchmark records",
                       formatter_class=RAW,
                       description=f"csv / parquet: one table of the run.\n{tables}\n"
                                   "et-v3: ExecuTorch's v3 benchmark records (JSON), to join existing dashboards.")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id, or 'latest'")
    p.add_argument("--format", choices=["csv", "parquet", "et-v3"], default="csv",
                   help="csv (default), parquet, or et-v3 (ExecuTorch benchmark records; --what samples only)")
    p.add_argument("--what", choices=list(WHAT), default="samples",
                   help="csv / parquet: samples (default: every latency sample), operators (every profiled "
                        "operator), cells (one summary row per cell, as the report shows it) or transcripts "
                        "(every utterance of the transcription cells)")
    p.add_argument("-o", "--output", type=Path,
                   help="output file (default: RUN_ID.FORMAT for samples, RUN_ID-WHAT.FORMAT otherwise, "
                        "e.g. RUN_ID-cells.csv)")
    db_arg(p)
    p.add_argument("--json", action="store_true", help="print what was written (path, rows) as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.format == "et-v3" and args.what != "samples":
        from harness.errors import UserError

        raise UserError(f"--format et-v3 writes latency records; --what {args.what} exports as csv or parquet.",
                        fix=f"harness export {args.run_id} --what {args.what} --format csv (or parquet).")
    output_place(args.output, folder=False)
    run_id = resolve_run_id(args.db, args.run_id, read_only=True)
    if args.format == "et-v3":
        from harness.report.et_v3 import write_et_v3

        out, rows = write_et_v3(args.db, run_id, args.output)
    else:
        from harness.store.export import export_run

        out, rows = export_run(args.db, run_id, args.format, args.output, what=args.what,
                               frame_of=_report_table(args.what))
    if args.json:
        emit_json({"run_id": run_id, "path": str(out), "rows": rows, "format": args.format, "what": args.what})
    else:
        what = "benchmark records" if args.format == "et-v3" else args.what
        print(f"{rows} {what} written to {out}", file=sys.stderr)
    return 0


def _report_table(what: str):
    """The report's tables (cells, transcripts) are made by its own code; samples and operators by the store's."""
    if what not in ("cells", "transcripts"):
        return None
    from harness.report.tables import cells_frame, transcripts_frame

    return {"cells": cells_frame, "transcripts": transcripts_frame}[what]
