"""What the measuring commands (run, nightly, calibrate) share: a progress display, and a stop by Ctrl-C,
SIGTERM or SIGHUP that kills what runs, marks the run interrupted and says how to resume it."""

from __future__ import annotations

import shlex
import signal
import sqlite3
import sys
import threading

from harness.commands.faults import fault
from harness.errors import UserError
from harness.followup import db_option, resume_command
from harness.outfile import OutputError


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOPPED_HELP = ("Stopped by Ctrl-C (SIGINT), SIGTERM or SIGHUP: every process it started is killed, the run is\n"
                "marked interrupted, the command prints the --resume RUN_ID that finishes it and exits\n"
                "128 + the signal (130, 143, 129). After SIGKILL nothing it started keeps running either, and\n"
                "--resume finishes the run.")


def stop_on_signals(received: list[int]) -> dict:
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


def interrupted_next(command: str, args, run_id: str | None) -> str:
    """What an interrupted measuring command leaves: a run to resume, or (stopped before its run existed, e.g.
    while loading the plan) nothing, and then no resume command naming a run that does not exist."""
    run_id = run_id or getattr(args, "resume", None)
    if run_id is None:
        return "Stopped before a run was created; nothing was stored."
    return f"Every finished run is stored; continue with:\n  {resume_command(command, args.plan, run_id, args.db, args.inventory)}"


def measuring(args, command: str, work):
    """``work(progress)`` under a progress display; on Ctrl-C, SIGTERM or SIGHUP, say how to resume and exit
    128 + the signal."""
    from harness.cli_progress import RichProgress

    progress = RichProgress(enabled=not args.quiet)
    received: list[int] = []
    previous = stop_on_signals(received)
    try:
        return work(progress)
    except KeyboardInterrupt:
        progress.stop()
        signum = received[0] if received else signal.SIGINT
        print(f"\ninterrupted ({signal.Signals(signum).name}). {interrupted_next(command, args, progress.run_id)}",
              file=sys.stderr)
        raise SystemExit(128 + signum) from None
    except (sqlite3.Error, OSError) as exc:
        problem = fault(exc, args.db)
        if problem is None or progress.run_id is None:
            raise
        raise _with_next_step(problem, exc, args, command, progress.run_id) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.stop()


def _with_next_step(problem: UserError, exc: OSError | sqlite3.Error, args, command: str, run_id: str) -> UserError:
    """A fault after the run's row exists: its fix, then the command that finishes the run (or, when measuring
    is over and stored, the one that writes its outputs again)."""
    if isinstance(exc, OutputError):  # measuring is over and stored: only its outputs need writing again
        out = f" -o {shlex.quote(str(args.output))}" if getattr(args, "output", None) else ""
        again = (f"; then write run {run_id}'s outputs with: harness nightly --compare-only "
                 f"{run_id}{db_option(args.db)}{out}" if command == "nightly" else "")
        return UserError(problem.message, path=problem.path, fix=problem.fix.rstrip(".") + again + ".")
    # The run's row exists: say which command finishes it once the fault is fixed.
    return UserError(problem.message, path=problem.path, fix=f"{problem.fix.rstrip('.')}; then finish run "
                     f"{run_id} with: {resume_command(command, args.plan, run_id, args.db, args.inventory)}")
