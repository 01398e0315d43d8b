"""JSON Schemas of the plan and the inventory, generated from the pydantic models that load them.

Editors that read a ``# yaml-language-server: $schema=...`` comment (VS Code's YAML extension, Neovim's yamlls,
JetBrains IDEs) then complete keys and flag mistakes as they are typed.  The files shipped in ``schemas/`` are
this module's output (a test keeps them equal); ``harness schema plan|inventory`` prints it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

DIALECT = "https://json-schema.org/draft/2020-12/schema"
REF = "#/$defs/{model}"


def plan_schema() -> dict[str, Any]:
    from harness.plan.models import Plan

    schema = Plan.model_json_schema(ref_template=REF)
    return {"$schema": DIALECT, **schema, "title": "harness plan"}


def _merge_defs(into: dict[str, Any], defs: dict[str, Any], platform: str) -> None:
    for name, definition in defs.items():
        if into.setdefault(name, definition) != definition:  # two platforms' models of one name: a clash to fix
            raise ValueError(f"the {platform} inventory model's {name!r} differs from another platform's")


def inventory_schema() -> dict[str, Any]:
    """devices.yaml: a list of entries, each one of the platforms' models (told apart by ``platform``)."""
    from harness.devices import PLATFORMS, config_model
    from harness.devices.base import PLATFORM_DESCRIPTION

    defs: dict[str, Any] = {}
    entries = {}
    for platform in PLATFORMS:
        schema = config_model(platform).model_json_schema(ref_template=REF)
        _merge_defs(defs, schema.pop("$defs", {}), platform)
        schema["properties"]["platform"] = {"const": platform, "title": "Platform",
                                          "description": PLATFORM_DESCRIPTION}
        entries[platform] = {**schema, "title": f"{platform} device"}
    _merge_defs(defs, entries, "")
    return {"$schema": DIALECT, "title": "harness inventory", "type": "object", "additionalProperties": False,
            "properties": {"devices": {"type": "array", "title": "Devices",
                                       "description": "The devices plans can measure on, one entry each.",
                                       "items": {"oneOf": [{"$ref": REF.format(model=p)} for p in entries]}}},
            "required": ["devices"], "$defs": defs}


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {"plan": plan_schema, "inventory": inventory_schema}


def schema_text(kind: str) -> str:
    """The schema as the shipped file holds it: indented JSON, keys in the models' order, a final newline."""
    return json.dumps(SCHEMAS[kind](), indent=2, ensure_ascii=False) + "\n"
