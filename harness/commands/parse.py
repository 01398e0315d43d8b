"""harness parse: what a runner's or telemetry parser extracts from a log, as JSON."""

from __future__ import annotations

from pathlib import Path

from harness.commands.common import RAW, emit_json
from harness.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("parse", help="print what a parser extracts from a benchmark log, as JSON (times in ms)",
                       formatter_class=RAW,
                       description="For logs gathered by other means. TOOL is one of: " + ", ".join(sorted(parse_tools()))
                       + ". Runner output becomes a measurement: its samples (one per measured iteration, or\n"
                       "the one invocation's sample for llama_main and whisper_runner), load time and extras.",
                       epilog="example:\n  adb logcat -d -s ExecuTorch:I > run.log && harness parse executor_runner run.log")
    p.add_argument("tool", choices=sorted(parse_tools()), metavar="TOOL", help="the program that wrote the log (listed above)")
    p.add_argument("logfile", type=Path, help="the log: the tool's whole output (stdout and stderr)")
    p.set_defaults(func=run)


def parse_tools() -> dict[str, str]:
    """`harness parse` TOOL names: every runner's (from the runner registry) and the telemetry dumps."""
    from harness.runners import RUNNERS, runner_module
    from harness.thermal import DUMPS

    return {**{runner_module(name).TOOL: RUNNERS[name] for name in RUNNERS}, **DUMPS}


def run(args) -> int:
    import dataclasses
    import importlib

    from harness.runners.base import Measurement, check_measured
    from harness.textfile import read_bounded

    text = read_bounded(args.logfile).decode("utf-8", errors="replace")  # a log may hold a stray non-UTF-8 byte
    module = importlib.import_module(parse_tools()[args.tool])
    fix = getattr(module, "PARSE_FIX", f"check that TOOL names the program that wrote this log ({args.tool} here), "
                                       "and save its whole output (stdout and stderr) to the file.")
    try:
        record = module.parse(text)
    except ValueError as exc:
        raise UserError(f"not {args.tool} output: {exc}.", path=args.logfile, fix=fix) from None
    try:
        if isinstance(record, Measurement):
            check_measured(record)  # the check every run applies: no NaN, negative or unordered figures
    except ValueError as exc:
        raise UserError(f"{args.tool} output with an impossible number: {exc}.", path=args.logfile,
                        fix="these figures cannot be measurements; check the tool's build and rerun it.") from None
    emit_json(dataclasses.asdict(record))
    return 0
