"""Every fix the harness prints, for docs/troubleshooting.md, read from the code itself.

An mkdocs hook (mkdocs.yml `hooks:`): the page line `<!-- fixes -->` becomes one section per part of the
harness (commands, plans, inventory, store, devices, ...), each listing the messages of its ``UserError``s with
the fix each one prints. The list is read from harness/**/*.py at build time (their syntax trees, nothing is
run), so a message added, changed or removed in the code is added, changed or removed on the page. Parts of a
message the code fills in at run time (a path, a number) show as `…`.

    python scripts/docs_fixes.py      # print the list
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "harness"
MARKER = re.compile(r"^<!-- fixes -->$", re.M)
FILLED = "…"  # what a value filled in at run time reads as
# The parts of the harness, in the order a user meets them; a part not named here is listed after them.
AREAS = {"commands": "Commands and options", "project.py": "The project folder", "plan": "Plan files",
         "inventory": "Inventory files", "artifacts": "Builds", "devices": "Devices", "runners": "Benchmark binaries",
         "accuracy": "Accuracy", "store": "The results database", "report": "Reports", "nightly": "Nightly runs",
         "site": "The history site", "lab": "The lab on Ray", "zoo": "Reference builds"}


@dataclass(frozen=True)
class Fix:
    area: str  # the first folder (or module) under harness/
    where: str  # module path, e.g. harness/store/db.py:335
    message: str
    fix: str


def _text(node: ast.AST | None) -> str:
    """A string expression as a reader sees it: literals kept, what is filled in at run time as …."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else FILLED for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    if isinstance(node, ast.IfExp):  # one of two wordings: the first
        return _text(node.body)
    return FILLED


def _is_user_error(call: ast.Call) -> bool:
    func = call.func
    return (isinstance(func, ast.Name) and func.id == "UserError") or (
        isinstance(func, ast.Attribute) and func.attr == "UserError")


def _tidy(text: str) -> str:
    """One space between words; a run of filled-in values is one …, without a space before punctuation."""
    text = re.sub(r"\s+", " ", re.sub(rf"({FILLED}\s*)+", FILLED + " ", text)).strip()
    return re.sub(rf"{FILLED} (?=[.,;:)'\]])", FILLED, text)


def fixes(root: Path = HARNESS) -> list[Fix]:
    """Every ``UserError(message, ..., fix=...)`` in the code under ``root`` whose message or fix has words."""
    found: list[Fix] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and _is_user_error(node)):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            message = _tidy(_text(node.args[0] if node.args else keywords.get("message")))
            fix = _tidy(_text(keywords.get("fix")))
            if _has_words(message) or _has_words(fix):
                found.append(Fix(rel.parts[0], f"harness/{rel.as_posix()}:{node.lineno}", message, fix))
    return sorted(found, key=lambda f: (f.where.rsplit(":", 1)[0], int(f.where.rsplit(":", 1)[1])))


def _has_words(text: str) -> bool:
    """Whether a reader learns something from it (not only what is filled in at run time)."""
    return len(re.findall(r"[A-Za-z]{2,}", text)) >= 2


def _escape(text: str) -> str:
    """Markdown-safe inline text: the code's words are shown, never read as markup."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text)


def reference() -> str:
    by_area: dict[str, list[Fix]] = {}
    for fix in fixes():
        by_area.setdefault(fix.area, []).append(fix)
    order = [a for a in AREAS if a in by_area] + sorted(a for a in by_area if a not in AREAS)
    parts = []
    for area in order:
        title = AREAS.get(area, area.removesuffix(".py").replace("_", " ").capitalize())
        parts.append(f"### {title}\n")
        for fix in by_area[area]:
            line = f"- {_escape(fix.message) or FILLED}"
            if fix.fix:
                line += f" **Fix:** {_escape(fix.fix)}"
            parts.append(f"{line} <small>({fix.where})</small>")
        parts.append("")
    return "\n".join(parts)


def on_page_markdown(markdown: str, **_) -> str:
    """mkdocs hook: replace the marker line with the list."""
    return MARKER.sub(lambda _m: reference(), markdown)


if __name__ == "__main__":
    sys.stdout.write(reference())
