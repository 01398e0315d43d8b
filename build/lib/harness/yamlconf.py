"""Load YAML/JSON configuration into pydantic models with errors that point at a line.

Pydantic reports *where* in the data a problem is (``devices[2].serial``); YAML
knows *which line* each value came from.  This module joins the two so that a
user sees ``devices.yaml:14: devices[2].serial: ...`` instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import UserError

Loc = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every configuration model: unknown keys are errors, not silently kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def format_loc(loc: Loc) -> str:
    """``("devices", 2, "serial")`` -> ``devices[2].serial``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    """Build plain Python data from a composed YAML node, recording 1-based lines."""
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            lines[loc + (key,)] = key_node.start_mark.line + 1
            result[key] = _walk(value_node, loc + (key,), lines)
            lines[loc + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, loc + (i,), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_data(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Read a YAML (or JSON, which is YAML) file; return data and a loc -> line map."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found.", path=path, fix="check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the file ({exc}).", path=path) from None
    if path.suffix == ".json":
        try:
            return json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise UserError(
                f"not valid JSON: {exc.msg}.", path=path, line=exc.lineno,
                fix="correct the JSON syntax at that line.",
            ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(
            f"not valid YAML: {problem}.", path=path,
            line=mark.line + 1 if mark is not None else None,
            fix="correct the YAML syntax at that line (indentation, a missing ':' or quote).",
        ) from None
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    return _walk(node, (), lines), lines


def _nearest_line(loc: Loc, lines: dict[Loc, int]) -> int | None:
    # Pydantic may point below what the YAML had (a missing key): walk up to a known parent.
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def validate(model: type[M], data: Any, path: Path, lines: dict[Loc, int], prefix: Loc = ()) -> M:
    """Validate ``data`` as ``model``; turn the first pydantic error into a UserError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = prefix + _user_loc(data, err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            fix = "remove it or check its spelling; the allowed keys are " + _allowed(model, err["loc"])
        elif err["type"] == "missing":
            fix = "add it."
        else:
            # A value of the wrong type or out of range: say what it is now and what the model wants.
            got = err.get("input")
            shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
            fix = f"change {format_loc(loc)} (now {shown}) to a value that fits: {err['msg'][0].lower() + err['msg'][1:]}."
        more = len(exc.errors()) - 1
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''} in this file)"
        raise UserError(f"{format_loc(loc)}: {msg}.", path=path, line=_nearest_line(loc, lines), fix=fix) from None


def _user_loc(data: Any, loc: Loc) -> Loc:
    """Keep the parts of a pydantic location that the user wrote.

    Pydantic inserts names of its own (union members such as ``float`` or
    ``function-after[...]``); walking the data along the location drops them, while
    a key that is missing (the last part) is kept because it names what to add.
    """
    out: list[Any] = []
    current = data
    for i, part in enumerate(loc):
        if isinstance(current, list) and isinstance(part, int) and part < len(current):
            out.append(part)
            current = current[part]
        elif isinstance(current, dict) and part in current:
            out.append(part)
            current = current[part]
        elif isinstance(current, dict) and i == len(loc) - 1:
            out.append(part)  # a missing key
    return tuple(out)


def _allowed(model: type[BaseModel], loc: Loc) -> str:
    """Name the keys allowed where an unknown key stood, so the fix is concrete."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        current = _model_of(field.annotation) if field is not None else None
    fields = getattr(current, "model_fields", None)
    return ", ".join(sorted(fields)) + "." if fields else "in the documentation."


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def load_model(model: type[M], path: Path) -> M:
    """Load a YAML/JSON file and validate it as ``model`` in one step."""
    data, lines = load_data(path)
    if data is None:
        raise UserError("the file is empty.", path=path, fix=f"see the example in the README for its format.")
    return validate(model, data, path, lines)
