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


def run(args) -> int:
    from harness.store import Store

    with Store(existing_db(args.db), read_only=True) as store:
        runs = store.runs(args.limit)
        rows = [{"run_id": r.run_id, "plan": r.plan_name, "status": r.status, "started_at": r.started_at,
                 "cells": len(store.stored_runs(r.run_id))} for r in runs]
    if args.json:
        emit_json(rows)
    else:
        for r in rows:
            print(term_safe(f"{r['run_id']}  {r['status']:<11} {r['cells']:>4} cells  {r['started_at']}  {r['plan']}"))
        if not rows:
            print(f"no runs in {args.db}", file=sys.stderr)
    return 0
