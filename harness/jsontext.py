"""Strict JSON for every JSON text the harness reads (configuration files, corpus manifests, result files).

One rule in one place: no key twice in an object (the second would silently win), no NaN or Infinity (not
JSON either), nesting bounded (a file of 100,000 '[' must be an error, not a RecursionError), and every
refusal a UserError naming the file, the line and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(offset, 0)) + 1


def load_json(text: str, path: Path | str, first_line: int = 1) -> Any:
    """``text`` as JSON, or a UserError at ``path``; ``first_line`` is the line ``text`` starts on (JSONL)."""
    base = first_line - 1

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                quoted = json.dumps(key)
                second = text.find(quoted, text.find(quoted) + 1)  # a fair guess at the line: the key's second use
                raise UserError(f"the key {key!r} appears twice in one object; only one value can count.",
                                path=path, line=base + _line_of(text, second) if second >= 0 else None,
                                fix="remove one of the two (or correct a misspelt key).")
            result[key] = value
        return result

    def not_a_number(word: str) -> Any:
        raise UserError(f"{word} is not a number JSON allows.", path=path,
                        line=base + _line_of(text, text.find(word)), fix="write a finite number.")

    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=not_a_number)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {exc.msg}.", path=path, line=base + exc.lineno,
                        fix="correct the JSON syntax at that line.") from None
    except RecursionError:
        raise UserError("JSON nested too deeply.", path=path, line=first_line if first_line > 1 else None,
                        fix="flatten the structure.") from None
