"""The commands the harness tells a user to run next, each naming the database it was run on."""

from __future__ import annotations

import shlex
from pathlib import Path

DEFAULT_DB = Path("reports/harness.db")


def db_option(db: Path) -> str:
    """' --db PATH' for a command the user is told to run next, '' for the default database: a command printed
    without it would read (or create) reports/harness.db instead of the results it speaks of."""
    return "" if Path(db) == DEFAULT_DB else f" --db {shlex.quote(str(db))}"


DEFAULT_INVENTORY = Path("devices.yaml")


def resume_command(command: str, plan: Path | str, run_id: str, db: Path, inventory: Path | None = None) -> str:
    """The command that finishes an interrupted run: ``harness run|nightly|calibrate PLAN --resume RUN_ID``, with
    the ``--inventory`` it was started with when that was not the default (a plan without an ``inventory:`` key
    reads it from there, and pasting the command without it failed on a missing devices.yaml)."""
    inventory_option = ("" if inventory is None or Path(inventory) == DEFAULT_INVENTORY
                        else f" --inventory {shlex.quote(str(inventory))}")
    return f"harness {command} {shlex.quote(str(plan))} --resume {run_id}{db_option(db)}{inventory_option}"


def command_of(settings: dict) -> str:
    """Which command started a stored run (from its settings), so its resume also does what that command does."""
    if settings.get("calibration"):
        return "calibrate"
    return "nightly" if "reference_run" in settings else "run"
