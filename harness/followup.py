"""The commands the harness tells a user to run next, each naming the database it was run on."""

from __future__ import annotations

import shlex
from pathlib import Path

from harness.errors import UserError
from harness.project import DEFAULT_DB, DEFAULT_INVENTORY, defaults, same_path

__all__ = ["DEFAULT_DB", "DEFAULT_INVENTORY", "db_option", "resume_command", "command_of"]


def _is_default(path: Path, which: str) -> bool:
    """``path`` is what --db (``which``) or --inventory means here when not given (harness.project)."""
    try:
        found = getattr(defaults(), which)
    except UserError:  # a broken harness.toml: the command that reads it says so; here, the plain default
        found = DEFAULT_DB if which == "db" else DEFAULT_INVENTORY
    return same_path(path, found)


def db_option(db: Path) -> str:
    """' --db PATH' for a command the user is told to run next, '' for the default database: a command printed
    without it would read (or create) the default database instead of the results it speaks of."""
    return "" if _is_default(db, "db") else f" --db {shlex.quote(str(db))}"


def resume_command(command: str, plan: Path | str, run_id: str, db: Path, inventory: Path | None = None) -> str:
    """The command that finishes an interrupted run: ``harness run|nightly|calibrate PLAN --resume RUN_ID``, with
    the ``--inventory`` it was started with when that was not the default (a plan without an ``inventory:`` key
    reads it from there, and pasting the command without it failed on a missing devices.yaml)."""
    inventory_option = ("" if inventory is None or _is_default(inventory, "inventory")
                        else f" --inventory {shlex.quote(str(inventory))}")
    return f"harness {command} {shlex.quote(str(plan))} --resume {run_id}{db_option(db)}{inventory_option}"


def command_of(settings: dict) -> str:
    """Which command started a stored run (from its settings), so its resume also does what that command does."""
    if settings.get("calibration"):
        return "calibrate"
    return "nightly" if "reference_run" in settings else "run"
