"""harness migrate: a database written by an older harness brought to this one's schema."""

from __future__ import annotations

import sys

from harness.commands.common import db_arg


def add_parser(sub) -> None:
    p = sub.add_parser("migrate", help="bring a database written by an older harness to this one's schema "
                                       "(a copy of the file as it was is kept first)")
    db_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
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
