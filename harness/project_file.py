"""harness.toml, the project file (see harness.project): its model and its loader."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from harness.errors import UserError
from harness.textfile import read_utf8
from harness.yamlconf import LocalPath, StrictModel, validate


class ProjectFile(StrictModel):
    """harness.toml: every key is optional (harness.project has the defaults); paths are relative to its folder."""

    db: LocalPath | None = None  # the results database every command reads and writes
    inventory: LocalPath | None = None  # the devices a plan without an 'inventory:' key runs on


def _key_lines(text: str) -> dict[tuple, int]:
    """Top-level key -> line of a harness.toml, so that a message names the line (tomllib keeps no lines)."""
    lines: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        found = re.match(r"\s*\[+\s*([\w-]+)|\s*([\w-]+)\s*=", line)
        if found:
            lines.setdefault((found.group(1) or found.group(2),), number)
    return lines


def load_project_file(path: Path) -> ProjectFile:
    """harness.toml as a ProjectFile; a syntax error or an unknown key names the file, the line and the fix."""
    text = read_utf8(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        raise UserError(f"not valid TOML: {exc}.", path=path, line=int(line.group(1)) if line else None,
                        fix="correct the syntax at that line: each setting is one line, key = \"value\".") from None
    return validate(ProjectFile, data, path, _key_lines(text))
