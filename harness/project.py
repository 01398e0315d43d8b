"""The project folder, found as git finds ``.git``: the nearest folder, from the current one up, that holds a
``harness.toml`` (or a ``devices.yaml`` with a ``reports/`` folder beside it).

Its database and inventory are what ``--db`` and ``--inventory`` mean when they are not given, so every command
works the same from any folder of the project.  ``HARNESS_DB`` and ``HARNESS_INVENTORY`` override the project's;
``--db`` and ``--inventory`` override both.  With no project found, the paths are relative to the current folder
(``reports/harness.db``, ``devices.yaml``).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

PROJECT_FILE = "harness.toml"
DB_ENV = "HARNESS_DB"
INVENTORY_ENV = "HARNESS_INVENTORY"
DEFAULT_DB = Path("reports/harness.db")
DEFAULT_INVENTORY = Path("devices.yaml")
_MARKS = "a harness.toml, or a devices.yaml beside a reports/ folder"


@dataclass(frozen=True)
class Defaults:
    """What --db and --inventory mean when they are not given, and how that was decided."""

    db: Path
    inventory: Path
    root: Path | None  # the project folder; None when none was found
    searched_from: Path  # the folder the search started in
    db_from_env: bool  # HARNESS_DB set the database


def _not_a_file(path: Path) -> str | None:
    """What a harness.toml that is there but cannot be read as a file is (a folder, a FIFO, a broken link)."""
    if path.is_symlink() and not path.exists():
        return "a broken link"
    if not path.exists() or path.is_file():
        return None
    if path.is_dir():
        return "a folder"
    return "a FIFO" if stat.S_ISFIFO(path.stat().st_mode) else "not a regular file"


def _is_project(folder: Path) -> bool:
    try:
        kind = _not_a_file(folder / PROJECT_FILE)
        if kind is not None:  # silently skipped, it would send every command to another project or to none
            raise UserError(f"{PROJECT_FILE} in {folder} is {kind}, so the project's settings cannot be read.",
                            fix=f"remove it, or make it a file of settings (db = \"reports/harness.db\", "
                                f"inventory = \"devices.yaml\"; an empty file takes the defaults).")
        return (folder / PROJECT_FILE).is_file() or (
            (folder / "devices.yaml").is_file() and (folder / "reports").is_dir())
    except OSError:  # a folder we may not look into is no project of ours
        return False


def find_project(start: Path) -> Path | None:
    """The nearest folder from ``start`` up that is a project folder, or None."""
    start = start.absolute()
    return next((folder for folder in (start, *start.parents) if _is_project(folder)), None)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "")
    return Path(value).expanduser() if value else None


def defaults(start: Path | None = None) -> Defaults:
    """--db and --inventory as the environment and the project folder found from ``start`` (the current folder)
    set them.  Paths stay relative when the project is the current folder, so messages read as before."""
    start = Path.cwd() if start is None else start
    root = find_project(start)
    db, inventory = DEFAULT_DB, DEFAULT_INVENTORY
    if root is not None and (root / PROJECT_FILE).is_file():
        from harness.project_file import load_project_file  # pydantic, only when there is a file to read

        settings = load_project_file(root / PROJECT_FILE)
        db, inventory = settings.db or DEFAULT_DB, settings.inventory or DEFAULT_INVENTORY
    base = Path() if root is None or root == start.absolute() else root
    db_env = _env_path(DB_ENV)
    return Defaults(db=db_env or base / db, inventory=_env_path(INVENTORY_ENV) or base / inventory,
                    root=root, searched_from=start.absolute(), db_from_env=db_env is not None)


def same_path(a: Path | str, b: Path | str) -> bool:
    return Path(a) == Path(b) or os.path.abspath(a) == os.path.abspath(b)


def missing_database(db: Path, found: Defaults) -> UserError:
    """The message of a command that only reads, for a default database that does not exist: where it looked,
    and how to point it at one (it never creates one)."""
    create = "create it with a first run: 'harness run PLAN'"
    if found.db_from_env:
        return UserError(f"no database at {db} (named by {DB_ENV}); a command that only reads creates none.",
                         fix=f"correct {DB_ENV} (or unset it to use the project's database), or {create}.")
    if found.root is None:
        return UserError(f"no database at {db}: no harness project in {found.searched_from} or any folder above it "
                         f"({_MARKS} marks one); a command that only reads creates none.",
                         fix=f"run it inside your project folder, set {DB_ENV}=PATH (or give --db PATH), "
                             f"or {create}.")
    return UserError(f"no database at {db}, the database of the project in {found.root}; a command that only "
                     "reads creates none.",
                     fix=f"{create[0].upper()}{create[1:]}, or set {DB_ENV}=PATH (or give --db PATH) to read another "
                         "database.")


def missing_inventory(inventory: Path, found: Defaults) -> UserError:
    """The message for a default inventory that does not exist: where it was looked for, and how to name one."""
    if os.environ.get(INVENTORY_ENV):
        return UserError(f"no inventory at {inventory} (named by {INVENTORY_ENV}).",
                         fix=f"correct {INVENTORY_ENV}, or unset it to use the project's devices.yaml.")
    where = (f"no harness project in {found.searched_from} or any folder above it ({_MARKS} marks one)"
             if found.root is None else f"the inventory of the project in {found.root}")
    return UserError(f"no inventory at {inventory}: {where}.",
                     fix=f"run it inside your project folder, set {INVENTORY_ENV}=PATH (or give --inventory PATH), "
                         "or write a devices.yaml (the shipped one lists the host and commented phone entries).")


def refuse_missing_default_inventory(inventory: Path) -> None:
    """A missing inventory that is the default one (not given): say where it was looked for and how to name one."""
    if not inventory.exists():
        found = defaults()
        if same_path(inventory, found.inventory):
            raise missing_inventory(inventory, found)
