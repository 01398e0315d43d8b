"""The key reference of docs/plans-inventory.md, generated from the models the harness validates files with.

An mkdocs hook (mkdocs.yml `hooks:`): a page line `<!-- keys: plan -->` or `<!-- keys: inventory -->` becomes a
table of every key of a plan file or of each platform's inventory entry, with its type, default, allowed range,
unit and the comment the code gives it. The table is read from harness/plan/models.py and harness/devices/ at
build time, so the docs cannot list a key the harness no longer takes, nor miss one it added.

    python scripts/docs_reference.py plan|inventory      # print a table
"""

from __future__ import annotations

import annotated_types
import inspect
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from harness.devices import PLATFORMS  # noqa: E402
from harness.vocab import BACKENDS, HTP_PERFORMANCE_MODES  # noqa: E402

MARKER = re.compile(r"^<!-- keys: (\w+) -->$", re.M)
# A key's unit, from the suffix of its own name or of the mapping that holds it (budgets_p95_ms: vad, asr, ...).
UNITS = {"_s": "s", "_ms": "ms", "_c": "°C", "_mb": "MB"}
# Strings checked against a closed list (harness/vocab.py): the validator's name says which list.
CHOICES = {"_known_backend": BACKENDS, "_known_htp_mode": tuple(HTP_PERFORMANCE_MODES),
           "known_platform": tuple(PLATFORMS)}


@dataclass(frozen=True)
class Key:
    """One row of the reference: a key's dotted path in the file and what the model says of it."""

    path: str
    type: str
    default: str
    allowed: str
    unit: str
    note: str


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Each field's comment in the class source: the comment lines just above it and the one at its end."""
    notes: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(model).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        field = re.match(r"\s+(\w+):[^#]*(?:#\s*(.*))?$", line)
        if field and field.group(1) in model.model_fields:
            notes[field.group(1)] = " ".join([*above, field.group(2) or ""]).strip()
        above = []
    return notes


def _strip_optional(annotation):
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]
    return annotation


def _choices(metadata) -> tuple[str, ...] | None:
    for item in metadata:
        func = getattr(item, "func", None)
        if func is not None and func.__name__ in CHOICES:
            return CHOICES[func.__name__]
    return None


def _type_name(annotation, metadata=()) -> str:
    choices = _choices(metadata)
    if choices:
        return "one of " + ", ".join(f"`{c}`" for c in choices)
    annotation = _strip_optional(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        choices = _choices(args[1:])
        return "one of " + ", ".join(f"`{c}`" for c in choices) if choices else _type_name(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {str: "text", int: "integer", float: "number", bool: "true or false", Path: "path"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def _allowed(info: FieldInfo) -> str:
    """The bounds of a number: the field's own, or those of its type (``Milliseconds | None``: the Milliseconds)."""
    bounds = {annotated_types.Gt: ("gt", ">"), annotated_types.Ge: ("ge", "≥"), annotated_types.Lt: ("lt", "<"),
              annotated_types.Le: ("le", "≤")}  # lower bounds first
    annotation = _strip_optional(info.annotation)
    of_type = typing.get_args(annotation)[1:] if typing.get_origin(annotation) is typing.Annotated else ()
    # A Field(...) inside Annotated carries its bounds in its own metadata.
    metadata = [m for item in [*info.metadata, *of_type] for m in (getattr(item, "metadata", None) or [item])]
    parts = []
    for kind, (attribute, sign) in bounds.items():
        parts += [f"{sign} {getattr(m, attribute):,}".replace(",", " ") for m in metadata if isinstance(m, kind)]
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default if info.default is not PydanticUndefined else info.default_factory()
    if isinstance(value, BaseModel):
        return "see below"
    if value == "":
        return "empty"
    return "none" if value is None or value == [] else f"`{value}`"


def _unit(path: str) -> str:
    for part in reversed(path.replace("[]", "").split(".")):
        for suffix, unit in UNITS.items():
            if part.endswith(suffix):
                return unit
    return ""


def _nested_model(annotation) -> type[BaseModel] | None:
    annotation = _strip_optional(annotation)
    if typing.get_origin(annotation) is list:
        return _nested_model(typing.get_args(annotation)[0])
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def model_keys(model: type[BaseModel], prefix: str = "", skip: frozenset[str] = frozenset()) -> list[Key]:
    """Every key of ``model``, nested mappings and lists of mappings included (``accuracy.chains[].name``)."""
    notes = {}
    for klass in reversed(model.__mro__):  # a platform's Config adds to DeviceConfig: both classes' comments
        if isinstance(klass, type) and issubclass(klass, BaseModel) and not klass.__module__.startswith("pydantic"):
            notes |= _comments(klass)
    keys: list[Key] = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        path = f"{prefix}{name}"
        keys.append(Key(path, _type_name(info.annotation, info.metadata), _default(info), _allowed(info), _unit(path),
                        info.description or notes.get(name, "")))
        nested = _nested_model(info.annotation)
        if nested is not None:
            inner = "[]" if typing.get_origin(_strip_optional(info.annotation)) is list else ""
            keys += model_keys(nested, f"{path}{inner}.")
    return keys


def _table(keys: list[Key]) -> str:
    rows = ["| key | type | default | allowed | unit | what it is |", "| --- | --- | --- | --- | --- | --- |"]
    rows += [f"| `{k.path}` | {k.type} | {k.default} | {k.allowed} | {k.unit} | {k.note.replace('|', '&#124;')} |"
             for k in keys]
    return "\n".join(rows) + "\n"


def reference(kind: str) -> str:
    """The markdown for one marker: ``plan``, or ``inventory`` (one table per platform)."""
    if kind == "plan":
        from harness.plan.models import Plan

        return _table(model_keys(Plan))
    if kind == "inventory":
        from harness.devices import config_model
        from harness.devices.base import DeviceConfig

        common = frozenset(DeviceConfig.model_fields) - {"backends"}  # each platform has its own default backends
        parts = ["Every entry, whatever its platform:\n", _table(model_keys(DeviceConfig))]
        for platform in PLATFORMS:
            parts += [f"\n`platform: {platform}` adds:\n", _table(model_keys(config_model(platform), skip=common))]
        return "\n".join(parts)
    raise ValueError(f"unknown key reference '{kind}' (known: plan, inventory)")


def on_page_markdown(markdown: str, **_) -> str:
    """mkdocs hook: replace each marker line with its table."""
    return MARKER.sub(lambda m: reference(m.group(1)), markdown)


if __name__ == "__main__":
    print(reference(sys.argv[1]))
