"""What several commands share: their common options, the run id and database they read, and their outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import project
from harness.errors import UserError

RAW = argparse.RawDescriptionHelpFormatter  # descriptions and epilogs keep their line breaks


DB_HELP = (f"results database (default: ${project.DB_ENV}, else the project's: 'db' in its {project.PROJECT_FILE}, or "
           f"{project.DEFAULT_DB}; the project is the nearest folder up from here with a {project.PROJECT_FILE}, "
           "or a devices.yaml beside reports/)")
INVENTORY_HELP = (f"inventory file (default: ${project.INVENTORY_ENV}, else the project's: 'inventory' in its "
                  f"{project.PROJECT_FILE}, or {project.DEFAULT_INVENTORY})")
INVENTORY_WHEN_NO_PLAN_NAMES_ONE = INVENTORY_HELP.replace("inventory file", "inventory file when the plan names none")


def db_arg(p) -> None:
    p.add_argument("--db", type=Path, help=DB_HELP)


def inventory_arg(p, help: str = INVENTORY_HELP) -> None:
    p.add_argument("--inventory", type=Path, help=help)


def measuring_args(p, resume_help: str, plan_help: str = "plan file, e.g. plans/host-demo.yaml",
                   plan_needed: bool = True) -> None:
    """What every measuring command (run, calibrate, nightly) takes: the plan, --inventory, --db, --resume."""
    p.add_argument("plan", type=Path, help=plan_help, **({} if plan_needed else {"nargs": "?"}))
    inventory_arg(p, INVENTORY_WHEN_NO_PLAN_NAMES_ONE)
    db_arg(p)
    p.add_argument("--resume", metavar="RUN_ID", help=resume_help)


# --db as this command was given it, if it was: a missing database it names is the user's typo, not the
# project's database not made yet (which a command's message explains differently).
_GIVEN_DB: list[Path] = []


def fill_project_defaults(args) -> None:
    """--db and --inventory not given: the environment's, else the project's (found from the current folder)."""
    _GIVEN_DB[:] = [Path(args.db)] if getattr(args, "db", None) else []
    wanted = [name for name in ("db", "inventory") if getattr(args, name, "") is None]
    if wanted:
        found = project.defaults()
        for name in wanted:
            setattr(args, name, getattr(found, name))


def lab_arg(p) -> None:
    p.add_argument("--lab", metavar="ADDRESS",
                   help="measure on a Ray lab (HEAD:PORT, e.g. 10.0.0.5:6379): each device's runs run on the "
                        "controller host it is plugged into (see 'harness lab join'); results come to --db here")


def emit_json(payload) -> None:
    from harness.validation import strict_json

    sys.stdout.write(strict_json(payload, indent=2, default=str))
    sys.stdout.write("\n")


def existing_db(db: Path) -> Path:
    """The --db of a command that only reads: a file that exists (harness.store.db.refuse_missing)."""
    from harness.store.db import refuse_missing, refuse_non_file

    refuse_non_file(db)
    if not db.exists():
        if _GIVEN_DB and project.same_path(db, _GIVEN_DB[0]):
            raise UserError(f"no database at {Path(db).absolute()} (given by --db); a command that only reads "
                            "creates none.", fix="check the --db path; 'harness run PLAN --db PATH' creates one.")
        found = project.defaults()
        if project.same_path(db, found.db):  # not given: say where it was looked for, and how to point at one
            raise project.missing_database(db, found)
    refuse_missing(db)
    return db


def existing_inventory(inventory: Path) -> Path:
    """--inventory of a command that reads it: when the default one is missing, say where it was looked for."""
    project.refuse_missing_default_inventory(inventory)
    return inventory


def resolve_run_id(db: Path, run_id: str, read_only: bool = False) -> str:
    """'latest', a run id, or the start of exactly one run id (as git takes a commit's).  ``read_only``: for a
    command that only reads (the database is opened read-only, never migrated)."""
    existing_db(db)
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


def lab_measurer(args):
    """The measure function of --lab, or None to measure this controller's own devices."""
    from harness.lab import measurer

    return measurer(args.lab) if args.lab else None


def resuming(args) -> None:
    """--resume names a run in an existing database ('latest' or a run id's start, as everywhere): resuming in a
    mistyped --db would otherwise create an empty database there and then fail."""
    if args.resume:
        args.resume = resolve_run_id(args.db, args.resume)


def output_place(path: Path | None, folder: bool) -> None:
    """Refuse an -o that names a file where a folder is written (or the reverse) before anything is done."""
    if path is None or not path.exists() or path.is_dir() == folder:
        return
    if folder:
        raise UserError("-o names a file, but this writes a folder (index.html and its files go in it).", path=path,
                        fix="give a folder name (new, or an existing folder).")
    raise UserError("-o names a folder, but this writes one file.", path=path,
                    fix=f"give a file name, e.g. {path / 'export.csv'}.")
