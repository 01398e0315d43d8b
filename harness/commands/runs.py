"""harness runs: the stored runs, newest first."""

from __future__ import annotations

import sys

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import db_arg, emit_json, existing_db
from harness.termsafe import term_safe


def add_parser(sub) -> None:
    p = sub.add_parser("runs", help="list stored runs, newest first")
    db_arg(p)
    p.add_argument("--limit", type=number.positive_int, default=20, help="list at most this many runs (default 20)")
    p.add_argument("--json", action="store_true", help="print the runs as JSON on stdout")
    p.set_defaults(func=run)


def shown_status(stored: str, claimed: bool, lost_cells: int) -> str:
    """A run's status as its reader needs it: one stored as 'running' that no process holds any more was stopped
    without saying so (SIGKILL, a power cut): 'interrupted'; a complete one with lost cells (a phone that went
    away) is 'incomplete' until --resume measures them."""
    if stored == "running" and not claimed:
        return "interrupted"
    if stored == "complete" and lost_cells:
        return "incomplete"
    return stored


def run_rows(store, db, limit: int) -> list[dict]:
    """One row per stored run, newest first: its shown status, lost cells, and the command that finishes it."""
    from harness.followup import command_of, resume_command

    rows = []
    for r in store.runs(limit):
        cells = store.stored_runs(r.run_id)
        lost = sum(status == "lost" for status, _ in cells.values())
        status = shown_status(r.status, r.status == "running" and store.is_claimed(r.run_id), lost)
        resume = (resume_command(command_of(r.settings), r.plan_path, r.run_id, db)
                  if status in ("interrupted", "incomplete") else None)
        rows.append({"run_id": r.run_id, "plan": r.plan_name, "status": status, "started_at": r.started_at,
                     "cells": len(cells), "lost_cells": lost, "resume": resume})
    return rows


def _status_text(row: dict) -> str:
    return f"{row['status']} ({row['lost_cells']} lost)" if row["status"] == "incomplete" else row["status"]


def run(args) -> int:
    from harness.store import Store

    with Store(existing_db(args.db), read_only=True) as store:
        rows = run_rows(store, args.db, args.limit)
    if args.json:
        emit_json(rows)
        return 0
    for r in rows:
        print(term_safe(f"{r['run_id']}  {_status_text(r):<20} {r['cells']:>4} cells  {r['started_at']}  {r['plan']}"))
    if not rows:
        print(f"no runs in {args.db}", file=sys.stderr)
    to_finish = [r for r in rows if r["resume"]]
    if to_finish:
        print("finish with (measures only what is missing or lost):", file=sys.stderr)
        for r in to_finish:
            print(term_safe(f"  {r['resume']}"), file=sys.stderr)
    return 0
