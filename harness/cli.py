"""Command line: a thin layer over inventory, plan, run, store, report.

Every user mistake surfaces as one paragraph on stderr and exit code 2 (see
``harness.errors``); progress goes to stderr so ``--json`` output on stdout stays
machine-readable.
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import signal
import sqlite3
import sys
import threading
from pathlib import Path

from harness import __version__
from harness.errors import EXIT_USER_ERROR, UserError
from harness.outfile import OutputError
from harness.stdio import STDOUT_NAME
from harness.followup import DEFAULT_DB, DEFAULT_INVENTORY, db_option, resume_command
from harness.termsafe import rich_safe, term_safe


DESCRIPTION = """\
Measure on-device speech and language model builds (ExecuTorch .pte, ONNX) and keep
every sample: latency percentiles with confidence intervals, load time, memory and
thermal telemetry, in a SQLite database that reports are rendered from.  Every build is
measured as several runs (separate processes, or runner invocations on a phone), because
that is where night-to-night noise lives; devices are measured at once.

Typical session:
  harness devices                          what the inventory holds and what answers
  harness zoo build                        make the reference builds (no network needed)
  harness run plans/host-demo.yaml         measure; prints the run id
  harness report latest -o reports/latest  HTML report of the newest run
  harness export latest --format csv       every sample, one row each

Every night:
  harness calibrate plans/lab.yaml         once for a new lab: each build twice (A/A), to learn its noise
  harness nightly plans/lab.yaml           measure, compare with last night, exit 1 on a regression
"""


def _emit_json(payload) -> None:
    from harness.validation import strict_json

    sys.stdout.write(strict_json(payload, indent=2, default=str))
    sys.stdout.write("\n")


def _existing_db(db: Path) -> Path:
    """The --db of a command that only reads: a file that exists (harness.store.db.refuse_missing)."""
    from harness.store.db import refuse_missing, refuse_non_file

    refuse_non_file(db)
    refuse_missing(db)
    return db


def _resolve_run_id(db: Path, run_id: str, read_only: bool = False) -> str:
    """'latest', a run id, or the start of exactly one run id (as git takes a commit's).  ``read_only``: for a
    command that only reads (the database is opened read-only, never migrated)."""
    _existing_db(db)
    from harness.store import Store

    with Store(db, read_only=read_only) as store:
        if run_id == "latest":
            runs = store.runs(1)
            if not runs:
                raise UserError("the database holds no runs yet.", path=db, fix="run 'harness run PLAN' first.")
            return runs[0].run_id
        starting = [r.run_id for r in store.runs(-1) if r.run_id.startswith(run_id)]  # -1: every run
    if len(starting) > 1 and run_id not in starting:
        shown = ", ".join(starting[:5]) + (", ..." if len(starting) > 5 else "")
        raise UserError(f"'{run_id}' is the start of {len(starting)} run ids ({shown}).", path=db,
                        fix="give more of the run id ('harness runs' lists them).")
    return starting[0] if len(starting) == 1 else run_id  # an unknown id: the store says so, with recent ids


# -- commands ------------------------------------------------------------------------------


def cmd_devices(args) -> int:
    from harness.devices import probe
    from harness.inventory import load_inventory
    from harness.words import counted

    inventory = load_inventory(args.inventory)
    rows = []
    for config, unexpanded in _expanded(inventory.devices):
        ok, why = (False, unexpanded) if unexpanded else probe(config)
        rows.append({"id": config.id, "platform": config.platform, "reachable": ok, "detail": why,
                     "backends": list(config.backends), "labels": list(config.labels), "soc": config.soc})
    # A device that does not answer is what a lab's morning check looks for: exit 1, so a script can stop there.
    silent = [r["id"] for r in rows if not r["reachable"]]
    if args.json:
        _emit_json(rows)
        return 1 if silent else 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"devices in {args.inventory}")
    for col in ("id", "platform", "soc", "backends", "reachable"):
        table.add_column(col)
    for r in rows:
        state = "[green]yes[/]" if r["reachable"] else f"[red]no[/] ({rich_safe(r['detail'])})"
        table.add_row(*map(rich_safe, (r["id"], r["platform"], r["soc"] or "–", ", ".join(r["backends"]))), state)
    Console().print(table)
    if silent:
        print(term_safe(f"{counted(len(silent), 'device')} of {len(rows)} did not answer: {', '.join(silent)} "
                        "(the reason is in the table)."), file=sys.stderr)
        return 1
    return 0


def _expanded(configs) -> list:
    """Each entry as a run sees it, with None or why it could not be expanded: ``serial: '*'`` is every phone
    attached now (one row each), as `harness run` expands it; with no adb server or no phone it stays one row."""
    from harness.errors import UserError

    out = []
    for config in configs:
        try:
            out += [(each, None) for each in config.expand()]
        except UserError as exc:
            out.append((config, str(exc)))
    return out


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOPPED_HELP = ("Stopped by Ctrl-C (SIGINT), SIGTERM or SIGHUP: every process it started is killed, the run is\n"
                "marked interrupted, the command prints the --resume RUN_ID that finishes it and exits\n"
                "128 + the signal (130, 143, 129). After SIGKILL nothing it started keeps running either, and\n"
                "--resume finishes the run.")


def _stop_on_signals(received: list[int]) -> dict:
    """Make SIGINT, SIGTERM and SIGHUP stop the run as Ctrl-C does (a KeyboardInterrupt in this, the main thread,
    so the engine kills what runs and marks the run interrupted); the first signal is put in ``received``, later
    ones wait for that cleanup.  A signal ignored when the harness started (nohup, a background job) stays so.
    Returns the handlers to put back."""
    def stop(signum, frame):
        if not received:
            received.append(signum)
            raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers (a caller embedding the CLI keeps its own)
    return {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}


def _interrupted_next(command: str, args, run_id: str | None) -> str:
    """What an interrupted measuring command leaves: a run to resume, or (stopped before its run existed, e.g.
    while loading the plan) nothing, and then no resume command naming a run that does not exist."""
    run_id = run_id or getattr(args, "resume", None)
    if run_id is None:
        return "Stopped before a run was created; nothing was stored."
    return f"Every finished run is stored; continue with:\n  {resume_command(command, args.plan, run_id, args.db, args.inventory)}"


def _measuring(args, command: str, work):
    """``work(progress)`` under a progress display; on Ctrl-C, SIGTERM or SIGHUP, say how to resume and exit
    128 + the signal."""
    from harness.cli_progress import RichProgress

    progress = RichProgress(enabled=not args.quiet)
    received: list[int] = []
    previous = _stop_on_signals(received)
    try:
        return work(progress)
    except KeyboardInterrupt:
        progress.stop()
        signum = received[0] if received else signal.SIGINT
        print(f"\ninterrupted ({signal.Signals(signum).name}). {_interrupted_next(command, args, progress.run_id)}",
              file=sys.stderr)
        raise SystemExit(128 + signum) from None
    except (sqlite3.Error, OSError) as exc:
        fault = _fault(exc, args.db)
        if fault is None or progress.run_id is None:
            raise
        if isinstance(exc, OutputError):  # measuring is over and stored: only its outputs need writing again
            out = f" -o {shlex.quote(str(args.output))}" if getattr(args, "output", None) else ""
            again = (f"; then write run {progress.run_id}'s outputs with: harness nightly --compare-only "
                     f"{progress.run_id}{db_option(args.db)}{out}" if command == "nightly" else "")
            raise UserError(fault.message, path=fault.path, fix=fault.fix.rstrip(".") + again + ".") from None
        # The run's row exists: say which command finishes it once the fault is fixed.
        raise UserError(fault.message, path=fault.path, fix=f"{fault.fix.rstrip('.')}; then finish run "
                        f"{progress.run_id} with: {resume_command(command, args.plan, progress.run_id, args.db, args.inventory)}"
                        ) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.stop()


def _lab(args):
    """The measure function of --lab, or None to measure this controller's own devices."""
    from harness.lab import measurer

    return measurer(args.lab) if args.lab else None


def _resuming(args) -> None:
    """--resume names a run in an existing database ('latest' or a run id's start, as everywhere): resuming in a
    mistyped --db would otherwise create an empty database there and then fail."""
    if args.resume:
        args.resume = _resolve_run_id(args.db, args.resume)


def cmd_run(args) -> int:
    from harness.run.engine import run_plan

    _resuming(args)
    outcome = _measuring(args, "run", lambda progress: run_plan(
        args.plan, args.db, inventory_path=args.inventory, resume=args.resume, progress=progress,
        measure=_lab(args)))
    summary = {"run_id": outcome.run_id, "db": str(args.db), "cells": outcome.statuses,
               "skipped": outcome.skipped, "resumed_cells": outcome.resumed_cells}
    if args.json:
        _emit_json({**summary, "already_complete": outcome.already_complete})
    elif outcome.already_complete:
        print(f"run {outcome.run_id} is complete: every cell holds its runs, so there is nothing to measure; the "
              f"run was left as it was.\nreport: harness report {outcome.run_id}{db_option(args.db)}", file=sys.stderr)
    else:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.statuses.items())) or "nothing new"
        print(f"run {outcome.run_id}: {counts}"
              + (f", {outcome.skipped} not runnable" if outcome.skipped else "")
              + f"\nreport: harness report {outcome.run_id}{db_option(args.db)}", file=sys.stderr)
        if outcome.statuses.get("lost"):
            print(f"{outcome.statuses['lost']} cell(s) lost their device mid-run; once it answers again (adb devices), "
                  f"measure them with:\n  {resume_command('run', args.plan, outcome.run_id, args.db, args.inventory)}", file=sys.stderr)
    return 1 if outcome.failed else 0


def cmd_nightly(args) -> int:
    from harness.nightly.run import compare_and_write, nightly, refuse_unusable_baseline
    from harness.report.verdict import headline
    from harness.words import counted

    if args.plan is None and not args.compare_only:
        raise UserError("no plan given.", fix="harness nightly PLAN, or harness nightly --compare-only RUN_ID.")
    _output_place(args.output, folder=True)
    _resuming(args)
    # 'latest' or the start of a run id, as every other command takes a run
    baseline = _resolve_run_id(args.db, args.baseline) if args.baseline else None
    if args.compare_only:
        run_id = _resolve_run_id(args.db, args.compare_only)
        if baseline is not None:
            refuse_unusable_baseline(args.db, baseline, run_id)
        outcome = compare_and_write(args.db, run_id, baseline, args.output, args.threshold, replay=True)
    else:
        if baseline is not None:  # before a night is spent measuring
            refuse_unusable_baseline(args.db, baseline, args.resume, args.plan)
        outcome = _measuring(args, "nightly", lambda progress: nightly(
            args.plan, args.db, args.output, args.inventory, baseline, args.resume, args.threshold, progress,
            _lab(args)))
    failing = [c for c in outcome.checks if c.failing]
    if args.json:
        _emit_json({"run_id": outcome.run_id, "baseline_run_id": outcome.baseline_id, "passed": outcome.passed,
                    "failing": [c.__dict__ for c in failing], "out_dir": str(outcome.out_dir)})
    else:
        base = outcome.baseline_id or "none (first night of this plan)"
        head = headline(outcome.checks)
        print(f"{'PASSED' if outcome.passed else 'FAILED'} nightly {outcome.run_id} against {base}: "
              f"{counted(len(outcome.checks), 'check')}, {len(failing)} failing · "
              + " · ".join(head.phrases), file=sys.stderr)
        for c in failing + head.undecided:  # the banner counts the undecided: name them, as the page does
            print(term_safe(f"  {c.status}: {c.device_id} · {c.subject} ({c.kind}): {c.detail}"), file=sys.stderr)
        print(f"report: {outcome.out_dir / 'index.html'} · {outcome.out_dir / 'junit.xml'} · "
              f"{outcome.out_dir / 'nightly.json'}", file=sys.stderr)
    return 0 if outcome.passed else 1


def cmd_calibrate(args) -> int:
    from harness.nightly.calibrate import calibrate

    _resuming(args)
    run_id, results = _measuring(args, "calibrate", lambda progress: calibrate(
        args.plan, args.db, args.inventory, args.threshold, args.resume, progress, _lab(args)))
    rows = [{"device_id": r.device_id, "build": r.subject, "aa_ratio": r.ratio, "aa_interval": r.interval,
             "verdict": r.verdict, "noise_floor": r.floor.fraction if r.floor else None,
             "floor_rests_on": r.floor.sources if r.floor else None} for r in results]
    if args.json:
        _emit_json({"run_id": run_id, "cells": rows})
        return 0
    print(f"A/A calibration {run_id}: each build measured twice, interleaved", file=sys.stderr)
    for r in rows:
        ci = f" [{r['aa_interval'][0]:.3f}, {r['aa_interval'][1]:.3f}]" if r["aa_interval"] else ""
        floor = (f"noise floor {r['noise_floor']:.1%} ({r['floor_rests_on']})" if r["noise_floor"] is not None
                 else "noise floor: needs one more calibration or unchanged night")
        flag = "" if r["verdict"] in ("no change", "too noisy") else f"  <- the nightly rule would call this {r['verdict']}"
        print(term_safe(f"  {r['device_id']} · {r['build']}: A/A {r['aa_ratio']:.3f}{ci}; {floor}{flag}"),
              file=sys.stderr)
    return 0


def _writable_folder(root: Path) -> None:
    """--root of the simulated phone: a folder it can write (made if missing), checked before anything starts."""
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
    except OSError as exc:
        raise UserError(f"cannot keep the simulated phone's storage here ({exc.strerror}).", path=root,
                        fix="give --root a folder you can write (it is made if missing), e.g. --root /tmp/phone."
                        ) from None


def cmd_sim(args) -> int:
    import time

    from harness.sim.phone import Faults
    from harness.sim.sandbox import write_stand_ins
    from harness.sim.server import start

    faults = Faults(crash_runner=args.fault == "crash", hang_runner=args.fault == "hang",
                    storage_full=args.fault == "storage-full", hot=args.fault == "hot")
    _writable_folder(args.root)
    handlers = _stop_on_signals([])  # SIGTERM and SIGHUP stop it as Ctrl-C does: the phone is shut down
    server = None
    try:
        server = start(args.port, args.root, faults)
        port = server.server_address[1]
        tools = write_stand_ins(args.root / "host-tools")
        listed = ", ".join(f"{name}: {path.resolve()}" for name, path in tools.items())
        print(f"simulated SM8650 phone on 127.0.0.1:{port} (storage in {args.root}); connect it with:\n"
              f"  adb connect 127.0.0.1:{port}\n"
              f"and list it in the inventory with serial 127.0.0.1:{port}; its benchmark binaries stand in as\n"
              f"  tools: {{{listed}}}\nCtrl-C (or SIGTERM, SIGHUP) stops it.", file=sys.stderr)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()  # what the phone's shell still runs, and its daemon's socket folder
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return 0


def _parse_tools() -> dict[str, str]:
    """`harness parse` TOOL names: every runner's (from the runner registry) and the telemetry dumps."""
    from harness.runners import RUNNERS, runner_module
    from harness.thermal import DUMPS

    return {**{runner_module(name).TOOL: RUNNERS[name] for name in RUNNERS}, **DUMPS}


def cmd_lab_join(args) -> int:
    import subprocess

    from harness.lab.node import answering_devices, join_env, ray_start_argv, resources_for

    if args.head == bool(args.address):
        raise UserError("give the head's address, or --head to start the head here (not both).",
                        fix="harness lab join --head, or harness lab join HEAD:PORT")
    found = answering_devices(args.inventory)
    for device_id, ok, why in found:
        print(term_safe(f"  {'advertise' if ok else 'skip     '} {device_id}" + ("" if ok else f": {why}")),
              file=sys.stderr)
    argv = ray_start_argv(None if args.head else args.address, resources_for([d for d, ok, _ in found if ok]),
                          port=args.port)
    if args.dry_run:
        print(" ".join(shlex.quote(a) for a in argv))
        return 0
    return subprocess.call(argv, env=join_env(args.inventory))


def cmd_parse(args) -> int:
    import dataclasses
    import importlib

    from harness.runners.base import Measurement, check_measured
    from harness.textfile import read_bounded

    text = read_bounded(args.logfile).decode("utf-8", errors="replace")  # a log may hold a stray non-UTF-8 byte
    module = importlib.import_module(_parse_tools()[args.tool])
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
    _emit_json(dataclasses.asdict(record))
    return 0


def cmd_runs(args) -> int:
    from harness.store import Store

    with Store(args.db, read_only=True) as store:
        runs = store.runs(args.limit)
        rows = [{"run_id": r.run_id, "plan": r.plan_name, "status": r.status, "started_at": r.started_at,
                 "cells": len(store.stored_runs(r.run_id))} for r in runs]
    if args.json:
        _emit_json(rows)
    else:
        for r in rows:
            print(term_safe(f"{r['run_id']}  {r['status']:<11} {r['cells']:>4} cells  {r['started_at']}  {r['plan']}"))
        if not rows:
            print(f"no runs in {args.db}", file=sys.stderr)
    return 0


def cmd_migrate(args) -> int:
    """The one command that brings an older database to this harness's schema (run and nightly do too, as they
    write); a command that only reads refuses an older database and names this one."""
    from harness.store import Store
    from harness.store.db import SCHEMA_VERSION, refuse_missing, refuse_non_file

    refuse_non_file(args.db)
    refuse_missing(args.db, "migrate converts a database that exists and creates none")
    with Store(args.db) as store:
        migrated_from, backup = store.migrated_from, store.backup_path
    if migrated_from is None:
        print(f"{args.db} already has schema version {SCHEMA_VERSION}; nothing to do.", file=sys.stderr)
    else:
        print(f"migrated {args.db} from schema version {migrated_from} to {SCHEMA_VERSION}; the file as it was is "
              f"kept as {backup}", file=sys.stderr)
    return 0


def _output_place(path: Path | None, folder: bool) -> None:
    """Refuse an -o that names a file where a folder is written (or the reverse) before anything is done."""
    if path is None or not path.exists() or path.is_dir() == folder:
        return
    if folder:
        raise UserError("-o names a file, but this writes a folder (index.html and its files go in it).", path=path,
                        fix="give a folder name (new, or an existing folder).")
    raise UserError("-o names a folder, but this writes one file.", path=path,
                    fix=f"give a file name, e.g. {path / 'export.csv'}.")


def cmd_report(args) -> int:
    from harness.report import write_report

    _output_place(args.output, folder=True)
    run_id = _resolve_run_id(args.db, args.run_id, read_only=True)
    # Beside the database (reports/RUN_ID for the default reports/harness.db), so the command a report's footer
    # prints works as printed.
    target = write_report(args.db, run_id, args.output or args.db.parent / run_id)
    print(f"report written: {target}", file=sys.stderr)
    return 0


def cmd_site(args) -> int:
    from harness.site import write_site

    target = write_site(_existing_db(args.db), args.output, args.threshold)
    print(f"history site written: {target}", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from harness.nightly.compare import compare_stored_runs, render

    a, b = _resolve_run_id(args.db, args.baseline, True), _resolve_run_id(args.db, args.candidate, True)
    result = compare_stored_runs(args.db, a, b, args.threshold)
    text = render(result, args.format, only_changed=args.only_changed)
    if args.output:
        from harness.outfile import write_text

        write_text(args.output, text)
    else:  # device and build names come from outside: no control characters to the terminal
        sys.stdout.write(term_safe(text, keep_newlines=True) if args.format == "text" else text)
    if args.format != "text" or args.output:  # the text format's first line says the same
        print(result.headline() + (f"; written to {args.output}" if args.output else ""), file=sys.stderr)
    return 1 if result.slower else 0


def cmd_export(args) -> int:
    _output_place(args.output, folder=False)
    run_id = _resolve_run_id(args.db, args.run_id, read_only=True)
    if args.format == "et-v3":
        from harness.report.et_v3 import write_et_v3

        out, rows = write_et_v3(args.db, run_id, args.output)
    else:
        from harness.store.export import export_run

        out, rows = export_run(args.db, run_id, args.format, args.output)
    if args.json:
        _emit_json({"run_id": run_id, "path": str(out), "rows": rows, "format": args.format})
    else:
        what = "benchmark records" if args.format == "et-v3" else "samples"
        print(f"{rows} {what} written to {out}", file=sys.stderr)
    return 0


def cmd_zoo_build(args) -> int:
    from harness.zoo import build_all

    results = build_all(args.output, only=args.only, force=args.force, log=lambda m: print(m, file=sys.stderr),
                        jobs=args.jobs)
    if args.json:
        _emit_json([r.as_dict() for r in results])
    return 0


def cmd_validate(args) -> int:
    from harness.zoo.validate import validate_builds, write_report

    rows = validate_builds(args.builds, args.corpus, samples=args.samples)
    out = args.builds / "validation.json"
    write_report(rows, out)
    if args.json:
        _emit_json([r.__dict__ for r in rows])
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"parity against the eager PyTorch source ({args.samples} utterances of {args.corpus.name})")
        for col in ("build", "quant", "max |err|", "cosine", "top-1 / decisions", "transcripts same", "verdict"):
            table.add_column(col)
        fmt = lambda v, f: "–" if v is None else format(v, f)
        for r in rows:
            verdict = "[green]pass[/]" if r.passed else f"[red]FAIL[/] {r.why}"
            if r.static:
                verdict += f" (static: {r.static['compressed_weight_ops']} compressed weight ops)"
            table.add_row(r.build, r.quantization, fmt(r.max_abs_error, ".2e"), fmt(r.cosine, ".6f"),
                          fmt(r.top1_agreement, ".1%"), fmt(r.transcripts_unchanged, ".0%"), verdict)
        Console().print(table)
        print(f"written: {out}", file=sys.stderr)
    return 0 if all(r.passed for r in rows) else 1


def cmd_corpus_build(args) -> int:
    from harness.accuracy.synth import build_corpus, verify_corpus

    for name in args.names:
        if args.verify:
            check = verify_corpus(name, args.output / name)
            if not check.bit_for_bit:
                how = " with its int8 layers computed exactly" if check.exact_int8 else ""
                lengths = ("every audio file has the shipped length (the manifest's durations)" if check.lengths_match
                           else "some audio files have other lengths than the shipped ones")
                print(f"{name}: rebuilt{how}, {len(check.differing)} checksum lines differ from the shipped SHA256SUMS; "
                      f"{lengths}:\n  " + "\n  ".join(check.differing[:10])
                      + f"\n  This CPU's int8 path: {check.int8_path}. hibari's voice is int8 and its float layers round "
                      "differently on other CPUs, so bytes match only on a CPU like the one that built the corpus "
                      "(harness/accuracy/synth.py says more). The shipped audio is what every measurement uses.",
                      file=sys.stderr)
                return 1
            print(f"{name}: rebuilt bit for bit (every checksum in SHA256SUMS matches)", file=sys.stderr)
        else:
            root = build_corpus(name, args.output, limit=args.limit)
            print(f"{name}: written to {root}", file=sys.stderr)
    return 0


def cmd_corpus_check(args) -> int:
    from harness.accuracy.corpus import check_corpus, read_manifest

    corpus = read_manifest(args.corpus)
    found = check_corpus(corpus, with_warnings=True)
    problems = [p for p in found if not p.warning]
    if args.json:
        _emit_json({"manifest": str(corpus.manifest), "utterances": len(corpus.utterances),
                    "problems": [p.__dict__ for p in found]})
    else:
        for p in found:
            print(term_safe(f"{corpus.manifest}:{p.line}: {'warning: ' if p.warning else ''}{p.utterance_id}: "
                            f"{p.message}"), file=sys.stderr)
        hours = sum(u.duration_s for u in corpus.utterances) / 3600
        warnings = len(found) - len(problems)
        print(f"{corpus.manifest}: {len(corpus.utterances)} utterances, {hours:.2f} h, "
              f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
              + (f", {warnings} warning{'s' if warnings != 1 else ''} (scored all the same)" if warnings else ""),
              file=sys.stderr)
        if problems:
            print("Fix: correct those lines of the manifest, or the audio (16 kHz mono WAV or FLAC, inside the "
                  "corpus folder, no links out of it), then check again.", file=sys.stderr)
    return 2 if problems else 0


def cmd_corpus_import(args) -> int:
    from harness.accuracy.importers import import_corpus

    root = import_corpus(args.layout, args.source, args.output, args.force)
    print(f"imported {args.layout} corpus into {root}/manifest.jsonl; check it with 'harness corpus check {root}'",
          file=sys.stderr)
    return 0


def cmd_wer(args) -> int:
    from harness.accuracy.wer import score_corpus
    from harness.textfile import read_utf8

    def lines(path: Path) -> list[str]:
        text = read_utf8(path)
        if not text.strip():
            raise UserError("the file is empty: there is nothing to score.", path=path,
                            fix="one utterance per line; give the transcripts to score.")
        return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")

    refs, hyps = lines(args.ref), lines(args.hyp)
    if len(refs) != len(hyps):
        raise UserError(f"{args.ref} has {len(refs)} lines but {args.hyp} has {len(hyps)}.", path=args.hyp,
                        fix="one utterance per line in both files, in the same order (an empty line is an empty utterance).")
    score = score_corpus([str(i + 1) for i in range(len(refs))], refs, hyps, normalise=not args.no_normalize)
    if args.json:
        _emit_json(score.as_dict())
        return 0
    t = score.totals()
    wer = "undefined (no reference words)" if t["wer"] is None else f"{t['wer']:.2%}"
    cer = "undefined" if t["cer"] is None else f"{t['cer']:.2%}"
    print(f"WER {wer}  CER {cer}  words {t['words']}  S {t['substitutions']}  D {t['deletions']}  "
          f"I {t['insertions']}  utterances {t['utterances']} ({t['empty_references']} with empty reference)")
    return 0


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from harness import validation as number  # one check per kind of number, as the files' models use

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="harness", description=DESCRIPTION, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def db_arg(p):
        p.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")

    def lab_arg(p):
        p.add_argument("--lab", metavar="ADDRESS",
                       help="measure on a Ray lab (HEAD:PORT, e.g. 10.0.0.5:6379): each device's runs run on the "
                            "controller host it is plugged into (see 'harness lab join'); results come to --db here")

    p = sub.add_parser("devices", help="list the inventory and which devices answer", formatter_class=fmt,
                       description="List every device in the inventory and whether it is reachable now.\n"
                                   "Exit 0 when every device answered, 1 when one did not (its reason is in the "
                                   "table), 2 on a bad inventory.")
    p.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY, help="inventory file (default: ./devices.yaml)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser(
        "run", help="measure a plan and store every sample", formatter_class=fmt,
        description="Measure every build of PLAN on every device it names.\n\n"
                    "Each cell (device x build) is measured as the plan's 'runs' separate processes (or runner\n"
                    "invocations on a phone), interleaved in rounds across builds; each finished run is committed\n"
                    "at once: if the run is interrupted, rerun with --resume RUN_ID and only what is missing is\n"
                    "measured.\n"
                    "Exit status: 0 all cells measured, 1 some cells failed (their logs are stored), 2 bad input.",
        epilog=STOPPED_HELP + "\n\nexample:\n  harness run plans/host-demo.yaml\n  harness run plans/host-demo.yaml --resume 20261121-143000-7f3a")
    p.add_argument("plan", type=Path, help="plan file, e.g. plans/host-demo.yaml")
    p.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY,
                   help="inventory file when the plan names none (default: ./devices.yaml)")
    db_arg(p)
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run, skipping its finished cells")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    lab_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "nightly", help="run a plan, compare with the last good night, exit 1 on regressions", formatter_class=fmt,
        description="Run PLAN (resumable like 'run'), compare with a baseline (the newest complete run of the same\n"
                    "plan whose nightly passed, else the newest complete one; or --baseline), and write\n"
                    "index.html, junit.xml and nightly.json to the output folder.\n"
                    "Exit status: 0 nothing failing, 1 a regression, budget miss or failed cell, 2 bad input.",
        epilog=STOPPED_HELP + "\n\ncron, every night at 02:30, history kept in one database:\n"
               "  30 2 * * *  cd /srv/harness && .venv/bin/harness nightly plans/lab.yaml --db reports/harness.db -q")
    p.add_argument("plan", type=Path, nargs="?", help="plan file (not needed with --compare-only)")
    p.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY)
    db_arg(p)
    p.add_argument("--baseline", metavar="RUN_ID", help="compare with this run (a run id, its start, or 'latest') instead of the last good night")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted nightly run")
    p.add_argument("--compare-only", metavar="RUN_ID", help="compare a stored run without running anything")
    p.add_argument("--threshold", type=number.fraction, default=0.05, help="smallest latency change worth calling (default 0.05)")
    p.add_argument("-o", "--output", type=Path,
                   help="output folder (default: RUN_ID beside the database, reports/RUN_ID for the default --db)")
    p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    lab_arg(p)
    p.set_defaults(func=cmd_nightly)

    p = sub.add_parser(
        "calibrate", help="A/A run: measure each build twice to learn each cell's noise floor", formatter_class=fmt,
        description="Measure every latency build of PLAN twice in one run, each beside its copy in every round, as\n"
                    "a nightly would. The copies are the same bytes, so their difference is noise: together with\n"
                    "consecutive nights in which a build did not change, it sets each cell's noise floor, and the\n"
                    "nightly calls a change only when it is larger than that floor (and than --threshold).\n"
                    "Run it once when a lab or plan is new, and again after changing devices or settings.",
        epilog=STOPPED_HELP + "\n\nexample:\n  harness calibrate plans/lab.yaml && harness calibrate plans/lab.yaml")
    p.add_argument("plan", type=Path)
    p.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY)
    db_arg(p)
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted calibration")
    p.add_argument("--threshold", type=number.fraction, default=0.05, help="the threshold the nightly uses (default 0.05)")
    p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    lab_arg(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("lab", help="join this controller host to a Ray lab of several hosts")
    labsub = p.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    j = labsub.add_parser(
        "join", help="start this host's Ray node, advertising the devices that answer here", formatter_class=fmt,
        description="Start a Ray node on this controller host (the head with --head, else joining ADDRESS) that\n"
                    "advertises every device of --inventory that answers now as the Ray resource\n"
                    "'harness-device:ID'. Runs of 'harness run PLAN --lab HEAD:PORT' for that device are then\n"
                    "sent here, measured with this host's inventory entry (its adb port, binaries, SDK paths),\n"
                    "and their results streamed to the driver's database. Rejoin after plugging phones in or out.",
        epilog="a lab of two hosts:\n"
               "  host-a$ harness lab join --head --inventory devices.yaml        # prints the address\n"
               "  host-b$ harness lab join host-a:6379 --inventory devices.yaml\n"
               "  host-a$ harness run plans/lab.yaml --lab host-a:6379\n"
               "stop a node with 'ray stop'.")
    j.add_argument("address", nargs="?", help="the head's HOST:PORT (omit with --head)")
    j.add_argument("--head", action="store_true", help="start the lab's head node here")
    j.add_argument("--port", type=number.port, default=6379, help="the head's port (default 6379)")
    j.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY, help="this host's inventory")
    j.add_argument("--dry-run", action="store_true", help="print the ray command instead of running it")
    j.set_defaults(func=cmd_lab_join)

    p = sub.add_parser("parse", help="print what a parser extracts from a benchmark log, as JSON (times in ms)",
                       formatter_class=fmt,
                       description="For logs gathered by other means. TOOL is one of: " + ", ".join(sorted(_parse_tools()))
                       + ". Runner output becomes a measurement: its samples (one per measured iteration, or\n"
                       "the one invocation's sample for llama_main and whisper_runner), load time and extras.",
                       epilog="example:\n  adb logcat -d -s ExecuTorch:I > run.log && harness parse executor_runner run.log")
    p.add_argument("tool", choices=sorted(_parse_tools()), metavar="TOOL")
    p.add_argument("logfile", type=Path)
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("sim", help="run a simulated phone for trying plans without hardware", formatter_class=fmt,
                       description="A simulated Snapdragon 8 Gen 3 (SM8650) phone speaking the ADB device protocol on\n"
                                   "loopback; Debian's adb server connects to it like to a real phone. Its benchmark\n"
                                   "binaries run the pushed models on this machine's CPU and print what the real ones print.")
    simsub = p.add_subparsers(dest="sim_platform", required=True, metavar="PLATFORM")
    s_ = simsub.add_parser("android", help="a simulated Android phone")
    s_.add_argument("--port", type=number.port_or_any, default=0, help="TCP port (default: any free one; avoid 5555-5585)")
    s_.add_argument("--root", type=Path, default=Path("reports/sim-phone"), help="folder standing in for its storage")
    s_.add_argument("--fault", choices=["crash", "hang", "storage-full", "hot"], help="misbehave on purpose")
    s_.set_defaults(func=cmd_sim)

    p = sub.add_parser("runs", help="list stored runs, newest first")
    db_arg(p)
    p.add_argument("--limit", type=number.positive_int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("migrate", help="bring a database written by an older harness to this one's schema "
                                       "(a copy of the file as it was is kept first)")
    db_arg(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("report", help="render a stored run as a self-contained HTML report", formatter_class=fmt,
                       description="Render RUN_ID (or 'latest') from the database; nothing is re-measured.",
                       epilog="example:\n  harness report latest -o reports/latest && xdg-open reports/latest/index.html")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id from 'harness runs' (or its start), or 'latest'")
    p.add_argument("-o", "--output", type=Path,
                   help="output folder, index.html is written there (default: RUN_ID beside the database, "
                        "reports/RUN_ID for the default --db)")
    db_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compare", help="compare two stored runs cell by cell; exit 1 on a significant slowdown", formatter_class=fmt,
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
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("site", help="render every stored run and night, and each build's history, as a static site",
                       formatter_class=fmt,
                       description="Rebuilt from the database alone, nothing re-measured: index.html lists every run "
                                   "with its date, plan,\ndevices and verdict; one page per night, and one per series "
                                   "(a device and build configuration\nacross a plan's nights) with its history chart "
                                   "and E-Divisive change points (Apache Otava).",
                       epilog="example:\n  harness site -o reports/site && xdg-open reports/site/index.html")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output folder (index.html, nights/ and series/ are written there)")
    p.add_argument("--threshold", type=number.fraction, default=0.05,
                   help="smallest relative change a change point or a night-to-night check calls (default: 0.05)")
    db_arg(p)
    p.set_defaults(func=cmd_site)

    p = sub.add_parser("export", help="export a run: raw samples (CSV, Parquet) or ExecuTorch v3 benchmark records",
                       formatter_class=fmt,
                       description="csv / parquet: one row per sample (warm-up and measured, see the 'phase' column).\n"
                                   "et-v3: ExecuTorch's v3 benchmark records (JSON), to join existing dashboards.")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id, or 'latest'")
    p.add_argument("--format", choices=["csv", "parquet", "et-v3"], default="csv")
    p.add_argument("-o", "--output", type=Path, help="output file (default: RUN_ID.FORMAT)")
    db_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("zoo", help="reference builds made from installed packages (no network)")
    zoo = p.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    b = zoo.add_parser("build", help="build the reference models and their manifests (cached)", formatter_class=fmt,
                       description="Write reference builds and manifests; a build is redone only when its\n"
                                   "recipe or source changed (or with --force).  Made only when named with --only:\n"
                                   "the LLM builds (Qwen2-0.5B's architecture with seeded weights,\n"
                                   "qwen2-0.5b-arch-{fp32,int8,int4}-xnnpack: minutes and GBs each) and the Whisper\n"
                                   "bundles for the phones' whisper_runner (whisper-tiny.en-asr-{fp32,int8}-xnnpack).")
    b.add_argument("-o", "--output", type=Path, default=Path("builds"), help="output folder (default: builds/)")
    b.add_argument("--only", action="append", metavar="NAME", help="build only this one (repeatable)")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("-j", "--jobs", type=number.positive_int, default=min(os.cpu_count() or 1, 4), metavar="N",
                   help="builds at once, each in its own process (default: the CPU count, at most 4)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_zoo_build)

    p = sub.add_parser(
        "validate", help="parity of every reference build against its eager PyTorch source", formatter_class=fmt,
        description="Run each build on fixed speech samples and compare with the eager source: max absolute error,\n"
                    "cosine similarity, decoder top-1 agreement, and whether each ASR chain's greedy transcripts\n"
                    "are unchanged. Core ML builds are checked statically (no Core ML runtime on Linux).\n"
                    "Exit status 1 when any build misses its threshold (thresholds: harness/zoo/validate.py).")
    p.add_argument("--builds", type=Path, default=Path("builds"))
    p.add_argument("--corpus", type=Path, default=Path("corpora/harvard-hibari"))
    p.add_argument("--samples", type=number.positive_int, default=5, help="utterances to compare on (default 5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("corpus", help="build, check and import speech corpora")
    corpus = p.add_subparsers(dest="corpus_command", required=True, metavar="CORPUS_COMMAND")
    c = corpus.add_parser("build", help="synthesize the shipped Harvard corpora (or --verify them bit for bit)",
                          formatter_class=fmt,
                          description="Names: harvard-hibari (hibari-tts voice), harvard-espeak (espeak-ng voice).")
    c.add_argument("names", nargs="+", metavar="NAME")
    c.add_argument("-o", "--output", type=Path, default=Path("corpora"))
    c.add_argument("--limit", type=number.positive_int, help="only the first N sentences")
    c.add_argument("--verify", action="store_true", help="rebuild in a scratch folder and compare with SHA256SUMS")
    c.set_defaults(func=cmd_corpus_build)
    c = corpus.add_parser("check", help="find missing audio, wrong rates, empty references, duplicate ids, escaping paths")
    c.add_argument("corpus", type=Path, help="corpus folder or manifest.jsonl")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_corpus_check)
    c = corpus.add_parser("import", help="write a manifest for a LibriSpeech, Kaldi or NeMo/HF JSONL corpus",
                          formatter_class=fmt,
                          description="librispeech: SOURCE is a folder of <speaker>/<chapter>/*.trans.txt + .flac\n"
                                      "kaldi: SOURCE is a data dir with wav.scp and text (file paths only, no pipes)\n"
                                      "jsonl: SOURCE is a NeMo / Hugging Face manifest (audio_filepath|audio|path, "
                                      "text|sentence|transcript, duration)")
    c.add_argument("layout", choices=["librispeech", "kaldi", "jsonl"])
    c.add_argument("source", type=Path)
    c.add_argument("-o", "--output", type=Path,
                   help="folder for manifest.jsonl; must contain the audio (default: the source folder)")
    c.add_argument("--force", action="store_true", help="replace a manifest.jsonl that is already there")
    c.set_defaults(func=cmd_corpus_import)

    p = sub.add_parser("wer", help="score two text files (one utterance per line)", formatter_class=fmt,
                       description="Word error rate after Whisper's English normaliser: corpus-level (all errors over\n"
                                   "all reference words), with CER and substitution/deletion/insertion counts.\n"
                                   "An empty line is an empty utterance.",
                       epilog="example:\n  harness wer refs.txt hyps.txt --json")
    p.add_argument("ref", type=Path)
    p.add_argument("hyp", type=Path)
    p.add_argument("--no-normalize", action="store_true", help="compare the text as written (whitespace only)")
    p.add_argument("--json", action="store_true", help="totals and per-utterance figures with alignments")
    p.set_defaults(func=cmd_wer)
    return parser


def main(argv: list[str] | None = None) -> int:
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
    print(f"error: {term_safe(_fault(exc, None), keep_newlines=True)}", file=sys.stderr)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    return EXIT_USER_ERROR


def _reader_gone() -> int:
    """stdout's reader closed it ('harness runs | head -4'): what it read is all it wanted, so no traceback.
    Exit as a process stopped by SIGPIPE would (what 'cat' does there)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit would fail again
    return 128 + signal.SIGPIPE


def _dispatch(args) -> int:
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {term_safe(exc, keep_newlines=True)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:  # Ctrl-C in a command that measures nothing (those say how to resume, and exit)
        print("\ninterrupted.", file=sys.stderr)
        return 128 + signal.SIGINT
    except (sqlite3.Error, OSError) as exc:
        fault = _fault(exc, getattr(args, "db", None))
        if fault is None:
            raise
        print(f"error: {term_safe(fault, keep_newlines=True)}", file=sys.stderr)
        return EXIT_USER_ERROR


# What a user can do about a file the harness could not write (or read): by errno.
_OS_FIXES = {
    errno.EROFS: "choose a place on a writable disk (or remount it read-write).",
    errno.EACCES: "choose a place you may write to, or change its permissions.",
    errno.EPERM: "choose a place you may write to, or change its permissions.",
    errno.ENOSPC: "free space on that disk ('df -h'), or choose another disk.",
    errno.EDQUOT: "free space within your quota, or choose another disk.",
    errno.EFBIG: "raise the file-size limit ('ulimit -f'), or write to another place.",
    errno.EIO: "the disk reported an error: check it ('dmesg'), or write to another disk.",
    errno.EEXIST: "give a path that does not exist yet, or remove what is there.",
    errno.ENOTDIR: "a part of the path is a file, not a folder: give another path.",
    errno.EISDIR: "that is a folder: give a file name.",
    errno.ENAMETOOLONG: "give a shorter path.",
}


def _fault(exc: BaseException, db: Path | None) -> UserError | None:
    """One actionable line for a store or output fault; None for what is a harness bug (it keeps its traceback)."""
    if isinstance(exc, sqlite3.Error):
        from harness.store.db import store_fault

        return store_fault(exc, db)
    if isinstance(exc, OutputError) and exc.filename == STDOUT_NAME:
        return UserError(f"cannot write to standard output ({exc.strerror or os.strerror(exc.errno)}); what was "
                         "measured is stored all the same.", path=exc.filename,
                         fix=_OS_FIXES.get(exc.errno, "send standard output to a place that takes it."))
    if isinstance(exc, OutputError):  # names the output, not the database; its previous file is still there
        return UserError(f"cannot write this output ({exc.strerror or os.strerror(exc.errno)}); a file that was "
                         "there is unchanged, and nothing stored was lost.", path=exc.filename,
                         fix=_OS_FIXES.get(exc.errno, "give -o a place on a disk you may write to."))
    if isinstance(exc, OSError) and exc.errno in _OS_FIXES:
        return UserError(f"{exc.strerror or os.strerror(exc.errno)}; nothing stored was lost.",
                         path=exc.filename or db, fix=_OS_FIXES[exc.errno])
    return None
