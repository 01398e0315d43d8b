"""Command line: a thin layer over inventory, plan, run, store, report.

Every user mistake surfaces as one paragraph on stderr and exit code 2 (see
``harness.errors``); progress goes to stderr so ``--json`` output on stdout stays
machine-readable.  Each command is one module of ``harness.commands`` (its parser, help and handler); this
module builds the top-level parser from their registry and dispatches.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys

try:  # Ctrl-C while the libraries load (the first ~0.2 s): one line and 130, as later on, not an import traceback
    from harness import __version__
    from harness.commands import (calibrate, compare, completion, corpus, devices, export, lab, migrate, nightly,
                                  parse, report, run, runs, schema, sim, site, validate, wer, zoo)
    from harness.commands.common import RAW, fill_project_defaults
    from harness.commands.faults import fault
    from harness.commands.measuring import interrupted_next as _interrupted_next  # noqa: F401  (tests use this name)
    from harness.errors import EXIT_USER_ERROR, UserError
    from harness.outfile import OutputError
    from harness.termsafe import term_safe
except KeyboardInterrupt:
    print("\ninterrupted.", file=sys.stderr)
    raise SystemExit(128 + signal.SIGINT) from None

DESCRIPTION = """\
Measure on-device speech and language model builds (ExecuTorch .pte, ONNX) and keep
every sample: latency percentiles with confidence intervals, load time, memory and
thermal telemetry, in a SQLite database that reports are rendered from.  Every build is
measured as several runs (separate processes, or runner invocations on a phone), because
that is where night-to-night noise lives; devices are measured at once.

Typical use:
  harness devices                          what the inventory holds and what answers
  harness zoo build                        make the reference builds (no network needed)
  harness run plans/host-demo.yaml         measure; prints the run id
  harness report latest -o reports/latest  HTML report of the newest run
  harness export latest --format csv       every sample, one row each

Every night:
  harness calibrate plans/lab.yaml         once for a new lab: each build twice (A/A), to learn its noise
  harness nightly plans/lab.yaml           measure, compare with last night, exit 1 on a regression
"""

EXIT_CODES = """\
exit status (every command):
  0    done, and nothing failing
  1    done, and it found a problem: a failed cell, a regression, a slower run in a comparison, a build
       that misses parity, a device that did not answer
  2    bad input: one line names the file (and line) and the fix; nothing stored is lost
  130  stopped by Ctrl-C; 143 by SIGTERM, 129 by SIGHUP (128 + the signal): a measuring command prints the
       --resume RUN_ID that finishes its run
  141  the reader of its output stopped early ('harness runs | head'), 128 + SIGPIPE
"""

# The commands, in the order `harness --help` lists them: one line per command module.
COMMANDS = (
    devices,
    run,
    nightly,
    calibrate,
    lab,
    parse,
    sim,
    runs,
    migrate,
    report,
    compare,
    site,
    export,
    zoo,
    validate,
    corpus,
    wer,
    schema,
    completion,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=DESCRIPTION, epilog=EXIT_CODES,
                                     formatter_class=RAW)
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    parser.set_defaults(root_parser=parser)  # the whole command line, for a command about it (completion)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a command runs (loading, parsing); commands handle their own
        print("\ninterrupted.", file=sys.stderr)
        return 128 + signal.SIGINT


def _main(argv: list[str] | None) -> int:
    from harness.library_log import library_output_to_log, log_path, quiet_progress_bars
    from harness.stdio import hold_standard_descriptors, name_stdout_errors

    hold_standard_descriptors()  # before any file is opened: a closed stdout's descriptor must not go to the database
    name_stdout_errors()
    quiet_progress_bars()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with library_output_to_log() as kept:
            try:
                code = _dispatch(args)
                sys.stdout.flush()  # a reader that stopped early shows here, not in Python's flush at exit
                return code
            finally:
                if kept.count and not getattr(args, "quiet", False):
                    print(f"({kept.count} library warning(s) kept in {log_path()})", file=sys.stderr)
    except BrokenPipeError:
        return _reader_gone()
    except OutputError as exc:  # stdout could not take the last of the output (a full disk behind it)
        return _output_lost(exc)


def _output_lost(exc: OutputError) -> int:
    """What stdout could not take: named (not blamed on the database), and stdout's unwritten rest dropped so
    Python's own flush at exit does not fail again."""
    print(f"error: {term_safe(fault(exc, None), keep_newlines=True)}", file=sys.stderr)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    return EXIT_USER_ERROR


def _reader_gone() -> int:
    """stdout's reader closed it ('harness runs | head -4'): what it read is all it wanted, so no traceback.
    Exit as a process stopped by SIGPIPE would (what 'cat' does there)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit would fail again
    return 128 + signal.SIGPIPE


def _dispatch(args) -> int:
    try:
        fill_project_defaults(args)
        return args.func(args)
    except UserError as exc:
        print(f"error: {term_safe(exc, keep_newlines=True)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:  # Ctrl-C in a command that measures nothing (those say how to resume, and exit)
        print("\ninterrupted.", file=sys.stderr)
        return 128 + signal.SIGINT
    except (sqlite3.Error, OSError) as exc:
        problem = fault(exc, getattr(args, "db", None))
        if problem is None:
            raise
        print(f"error: {term_safe(problem, keep_newlines=True)}", file=sys.stderr)
        return EXIT_USER_ERROR
