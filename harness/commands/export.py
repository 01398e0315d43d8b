"""harness export: a run's raw samples, operators, cells or transcripts (CSV, Parquet), or ExecuTorch v3 records."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.commands.common import RAW, db_arg, emit_json, output_place, resolve_run_id
from harness.errors import UserError
from harness.termsafe import term_safe

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
    p.add_argument("--format", choices=["csv", "parquet", "et-v3"],
                   help="csv (default), parquet, or et-v3 (ExecuTorch benchmark records; --what samples only); "
                        "without it, -o's .csv / .parquet suffix says, and any other -o name is refused")
    p.add_argument("--what", choices=list(WHAT), default="samples",
                   help="csv / parquet: samples (default: every latency sample), operators (every profiled "
                        "operator), cells (one summary row per cell, as the report shows it) or transcripts "
                        "(every utterance of the transcription cells)")
    p.add_argument("-o", "--output", type=Path,
                   help="output file (default: RUN_ID.FORMAT for samples, RUN_ID-WHAT.FORMAT otherwise, "
                        "e.g. RUN_ID-cells.csv); - writes CSV to stdout")
    db_arg(p)
    p.add_argument("--json", action="store_true", help="print what was written (path, rows) as JSON on stdout")
    p.set_defaults(func=run)


STDOUT = "-"  # as -o: CSV on stdout
SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet"}  # an -o suffix that says the format


def export_format(given: str | None, output: Path | None, to_stdout: bool) -> str:
    """The format to write: --format, else what -o's suffix says (x.parquet), else csv.  A --format that contradicts
    the suffix (--format csv -o x.parquet) is refused: the file would hold one format under another's name."""
    said = None if output is None or to_stdout else SUFFIX_FORMATS.get(output.suffix.lower())
    if given is None:
        return said or "csv"
    if said is not None and said != given:
        raise UserError(f"--format {given} contradicts -o {term_safe(str(output))}, whose suffix says {said}.",
                        path=output, fix=f"drop --format (the suffix decides), or name the file "
                                         f"{term_safe(output.stem)}.{'json' if given == 'et-v3' else given}.")
    return given


def _refuse_unnamed_format(given: str | None, output: Path) -> None:
    """An -o whose suffix names no table format (z.json, noext) without --format: CSV would go under a name that
    says otherwise, or nothing.  Checked after the output's place, so a folder or an unwritable path is named as
    such first."""
    if given is None and output.suffix.lower() not in SUFFIX_FORMATS:
        raise UserError(f"-o {term_safe(str(output))} names no table format: its suffix is neither .csv nor .parquet.",
                        path=output, fix=f"give --format (csv, parquet or et-v3), or name the file "
                                         f"{term_safe(output.stem)}.csv or {term_safe(output.stem)}.parquet.")


def _refuse_stdout(fmt: str, as_json: bool) -> None:
    """-o - writes CSV text to stdout; a binary Parquet file or JSON records there would garble a terminal or mix
    with --json's own output."""
    if fmt != "csv":
        raise UserError(f"-o - writes CSV to stdout; --format {fmt} writes a file.",
                        fix="give a file name with -o (e.g. -o export.parquet), or drop --format for CSV on stdout.")
    if as_json:
        raise UserError("--json prints what was written on stdout, where -o - writes the table itself.",
                        fix="drop --json (the row count goes to stderr), or give a file name with -o.")


def run(args) -> int:
    to_stdout = args.output is not None and str(args.output) == STDOUT
    fmt = export_format(args.format, args.output, to_stdout)
    if to_stdout:
        _refuse_stdout(fmt, args.json)
    if fmt == "et-v3" and args.what != "samples":
        raise UserError(f"--format et-v3 writes latency records; --what {args.what} exports as csv or parquet.",
                        fix=f"harness export {args.run_id} --what {args.what} --format csv (or parquet).")
    if not to_stdout:
        output_place(args.output, folder=False)
        if args.output is not None:
            _refuse_unnamed_format(args.format, args.output)
    run_id = resolve_run_id(args.db, args.run_id, read_only=True)
    if fmt == "et-v3":
        from harness.report.et_v3 import write_et_v3

        out, rows = write_et_v3(args.db, run_id, args.output)
    else:
        from harness.store.export import export_run

        out, rows = export_run(args.db, run_id, fmt, None if to_stdout else args.output, what=args.what,
                               frame_of=_report_table(args.what), to_stdout=to_stdout)
    if args.json:
        emit_json({"run_id": run_id, "path": str(out), "rows": rows, "format": fmt, "what": args.what})
    else:
        what = "benchmark records" if fmt == "et-v3" else args.what
        print(f"{rows} {what} written to {'stdout' if to_stdout else out}", file=sys.stderr)
    if args.what == "operators" and not rows:
        print(f"note: {_why_no_operators(args.db, run_id)}", file=sys.stderr)
    if args.what == "transcripts" and not rows:
        print(f"note: {_why_no_transcripts(args.db, run_id)}", file=sys.stderr)
    return 0


def _why_no_operators(db: Path, run_id: str) -> str:
    """Why an operators export is empty: profiling was off for the run, or no cell's profiling gave a profile."""
    from harness.store import Store

    with Store(db, read_only=True) as store:
        profile_runs = store.run(run_id).settings.get("profile_runs")
    if profile_runs == 0:
        return (f"run {run_id} was measured with profile_runs: 0 (profiling off), so it has no operators; set "
                "profile_runs in the plan (1 by default) to profile each cell after its measured runs.")
    return (f"no cell of run {run_id} has an operator profile; each cell's log in the report says why (a runner "
            "that cannot profile, or a profiling run that failed).")


def _why_no_transcripts(db: Path, run_id: str) -> str:
    """Why a transcripts export is empty: the run has no transcription cell, or none of them stored an utterance."""
    from harness.store import Store

    with Store(db, read_only=True) as store:
        transcribing = [cell for cell in store.cells(run_id, with_samples=False) if cell.task == "transcribe"]
    if not transcribing:
        return (f"run {run_id} has no transcription cells (the plan's accuracy: chains), so it has no "
                "transcripts; --what samples or cells export its latency cells.")
    return (f"no transcription cell of run {run_id} stored an utterance; each cell's log in the report says why "
            "(a chain that failed before its first utterance).")


def _report_table(what: str):
    """The report's tables (cells, transcripts) are made by its own code; samples and operators by the store's."""
    if what not in ("cells", "transcripts"):
        return None
    from harness.report.tables import cells_frame, transcripts_frame

    return {"cells": cells_frame, "transcripts": transcripts_frame}[what]
