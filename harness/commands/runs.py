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


def run_rows(store, db, limit: int) -> list[dict]:
    """One row per stored run, newest first: its status (harness.store.state: a run with lost cells is
    'incomplete', one no process measures any more 'interrupted'), lost cells, and the command that finishes it."""
    from harness.followup import command_of, resume_command
    from harness.store.state import run_state

    rows = []
    for r in store.runs(limit):
        state = run_state(store, r.run_id)
        resume = (resume_command(command_of(r.settings), r.plan_path, r.run_id, db)
                  if state.status in ("interrupted", "incomplete") else None)
        rows.append({"run_id": r.run_id, "plan": r.plan_name, "status": state.status, "label": state.label,
                     "started_at": r.started_at, "cells": state.cells,
                     "lost_cells": state.lost_cells, "resume": resume})
    return rows


def run(args) -> int:
    from harness.store import Store

    with Store(existing_db(args.db), read_only=True) as store:
        rows = run_rows(store, args.db, args.limit)
    if args.json:
        emit_json(rows)
        return 0
    for r in rows:
        print(term_safe(f"{r['run_id']}  {r['label']:<20} {r['cells']:>4} cells  {r['started_at']}  {r['plan']}"))
    if not rows:
        print(f"no runs in {args.db}", file=sys.stderr)
    to_finish = [r for r in rows if r["resume"]]
    if to_finish:
        print("finish with (measures only what is missing or lost):", file=sys.stderr)
        for r in to_finish:
            print(term_safe(f"  {r['resume']}"), file=sys.stderr)
    return 0
