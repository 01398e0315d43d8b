"""Load YAML/JSON configuration into pydantic models with errors that point at a line.

Pydantic reports *where* in the data a problem is (``devices[2].serial``); YAML
knows *which line* each value came from.  This module joins the two so that a
user sees ``devices.yaml:14: devices[2].serial: ...`` instead of a traceback.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from harness.errors import UserError
from harness.jsontext import load_json
from harness.textfile import read_bounded

Loc = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every configuration model: unknown keys are errors, not silently kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_nul(path: Any) -> Any:
    """A path with a NUL character names no file on any file system; os.stat and Path.resolve() would raise
    ValueError deep inside the harness instead of a message naming the line."""
    if "\x00" in str(path):
        raise ValueError("the path holds a NUL character (\\x00), which no file name can; remove it")
    return path


# Every file path read from a configuration file, manifest or transcript takes one of these.
PathText = Annotated[str, AfterValidator(_no_nul)]
LocalPath = Annotated[Path, AfterValidator(_no_nul)]


def format_loc(loc: Loc) -> str:
    """``("devices", 2, "serial")`` -> ``devices[2].serial``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


# Limits that no real configuration comes near and that keep a hostile one to a fraction of a second.
MAX_FILE_BYTES = 4 << 20
MAX_VALUES = 100_000  # values once aliases are expanded: a plan has hundreds; "a billion laughs" has billions
MAX_DEPTH = 64  # nesting of mappings and lists
_MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml's composer when PyYAML was built with it: four times faster than the pure-Python one, so a huge
# hostile file is refused in a second, not in several (the same nodes, marks and error classes).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class LineMap(dict):
    """Where each value came from (loc -> 1-based line), and how the scalars YAML reads as true/false were
    written (``on``, ``yes``), so that a message can quote the user's own words."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[Loc, str] = {}


class _Builder:
    """Plain Python data from a composed YAML node, recording 1-based lines, with the limits above.

    Aliases are expanded here (the composer only links nodes), so here is where an expansion is counted,
    a cycle is caught, and a key that is not a plain scalar, or that appears twice, is refused."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = LineMap()
        self.values = 0
        self.open_nodes: set[int] = set()  # the mappings and lists being built: an alias to one is a cycle
        self.built_nodes: set[int] = set()  # a node built a second time is an alias (*name) expanded
        self.aliased = False
        self.constructor = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node, message: str, fix: str) -> UserError:
        return UserError(message, path=self.path, line=node.start_mark.line + 1, fix=fix)

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.values += 1
        self.aliased = self.aliased or id(node) in self.built_nodes
        self.built_nodes.add(id(node))
        if self.values > MAX_VALUES:  # named by the top-level key whose values (or aliases) went past the limit
            raise self.too_many(node, loc)
        if len(loc) > MAX_DEPTH:
            raise self.error(node, f"nested more than {MAX_DEPTH} levels deep.", "flatten the structure.")
        self.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if isinstance(value, bool):
                self.lines.written[loc] = node.value
            return value
        if node.tag not in _PLAIN_TAGS:  # '!!python/object', '!!set' and the like: not configuration
            raise self.error(node, f"cannot read a value tagged {node.tag!r}.",
                             "remove the '!' tag and write a plain mapping or list.")
        if id(node) in self.open_nodes:
            raise self.error(node, "an alias (*name) refers to a value that contains it, so it never ends.",
                             "make the anchored value (&name) a complete value that does not refer to itself.")
        self.open_nodes.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, loc)
            return [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
        finally:
            self.open_nodes.discard(id(node))

    def too_many(self, node: yaml.Node, loc: Loc) -> UserError:
        line = self.lines.get(loc[:1], node.start_mark.line + 1)
        if self.aliased:
            return UserError(f"more than {MAX_VALUES} values once its aliases (*name) are expanded.", path=self.path,
                             line=line, fix="write the values out, or use fewer nested aliases.")
        return UserError(f"more than {MAX_VALUES} values; a plan, inventory or manifest holds hundreds.",
                         path=self.path, line=line,
                         fix="check that this is the file meant; keep only the keys the harness reads.")

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        merged: dict[Any, Any] = {}  # keys brought in by '<<: *name'; a key written out wins over them
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(self.merge(value_node, loc))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, "a key is a list or a mapping; keys are plain names.",
                                 "write the key as a name followed by ':'.")
            key = self.scalar(key_node)
            line = key_node.start_mark.line + 1
            if key in result:
                raise self.error(key_node, f"{format_loc(loc + (key,))}: the key appears twice in one mapping "
                                 f"(first on line {first_line[key]}); only one value can count.",
                                 "remove one of the two (or correct a misspelt key).")
            first_line[key] = line
            self.lines[loc + (key,)] = line
            result[key] = self.build(value_node, loc + (key,))
            self.lines[loc + (key,)] = line
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def merge(self, node: yaml.Node, loc: Loc) -> dict[Any, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for source in reversed(sources):  # the first mapping listed wins, as in YAML's merge key
            value = self.build(source, loc)
            if not isinstance(value, dict):
                raise self.error(source, "'<<' merges a mapping (or a list of mappings), not a single value.",
                                 "point '<<' at an anchored mapping, e.g. '<<: *defaults'.")
            merged.update(value)
        return merged

    def scalar(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.constructor.construct_object(node)
        except yaml.YAMLError as exc:
            raise self.error(node, f"cannot read this value ({getattr(exc, 'problem', None) or exc}).",
                             "write it as a plain string, number, true/false or null (no '!tag').") from None


def _read_text(path: Path) -> str:
    raw = read_bounded(path, MAX_FILE_BYTES)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read the file ({exc}).", path=path, fix="save it as UTF-8 text.") from None


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(offset, 0)) + 1


def load_data(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Read a YAML (or JSON, which is YAML) file; return data and a loc -> line map.

    The one reader of configuration files in the harness: bounded in size, depth and alias expansion, with
    no key twice, so that no file a user (or an attacker) writes can hang it, exhaust memory or be misread."""
    text = _read_text(path)
    if path.suffix == ".json":
        return load_json(text, path), {}
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.reader.ReaderError as exc:  # it knows a character offset only: name the line and the character
        raise UserError(f"the control character U+{exc.character:04X} is not allowed in YAML.", path=path,
                        line=_line_of(text, exc.position),
                        fix="delete it (or, inside double quotes, write it as an escape such as \"\\x01\").") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in problem:  # libyaml stops at its own depth limit, before the builder's
            raise UserError(f"nested more than {MAX_DEPTH} levels deep.", path=path,
                            line=mark.line + 1 if mark is not None else None, fix="flatten the structure.") from None
        raise UserError(
            f"not valid YAML: {problem}.", path=path,
            line=mark.line + 1 if mark is not None else None,
            fix="correct the YAML syntax at that line (indentation, a missing ':' or quote).",
        ) from None
    except RecursionError:
        raise UserError("nested too deeply.", path=path, fix="flatten the structure.") from None
    if node is None:
        return None, {}
    builder = _Builder(path)
    return builder.build(node, ()), builder.lines


def _nearest_line(loc: Loc, lines: dict[Loc, int]) -> int | None:
    # Pydantic may point below what the YAML had (a missing key): walk up to a known parent.
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


MAX_PROBLEMS_SHOWN = 10  # of one file: enough to fix a file in one go, few enough to read


@dataclass
class FileProblems(UserError):
    """Every problem found in one file: the first in the UserError's own fields, the others (up to
    MAX_PROBLEMS_SHOWN in all) listed below it, each with its line and fix, then how many more there are."""

    others: list[UserError] = field(default_factory=list)
    unshown: int = 0

    def render(self) -> str:
        lines = [super().render(), *(f"  {other.render()}" for other in self.others)]
        if self.unshown:
            lines.append(f"  and {self.unshown} more problem{'s' if self.unshown > 1 else ''} in this file.")
        return "\n".join(lines)


def all_problems(problems: list[UserError], unshown: int = 0) -> UserError:
    """One error for the problems found in a file (the only one as it is); past MAX_PROBLEMS_SHOWN, counted."""
    shown: list[UserError] = []
    for problem in problems:
        if isinstance(problem, FileProblems):
            shown += [UserError(problem.message, path=problem.path, line=problem.line, fix=problem.fix),
                      *problem.others]
            unshown += problem.unshown
        else:
            shown.append(problem)
    unshown += max(0, len(shown) - MAX_PROBLEMS_SHOWN)
    first, *others = shown[:MAX_PROBLEMS_SHOWN]
    if not others and not unshown:
        return first
    return FileProblems(first.message, path=first.path, line=first.line, fix=first.fix, others=others, unshown=unshown)


def _problems(exc: ValidationError, model: type[BaseModel], data: Any, path: Path, lines: dict[Loc, int],
              prefix: Loc = ()) -> UserError:
    """Pydantic's errors as one UserError: one problem per key (the members of a union each report the same
    key), in the file's order, the first MAX_PROBLEMS_SHOWN each with its line and fix (a hostile file can
    hold a hundred thousand unknown keys: only those shown are worked out)."""
    first_error: dict[Loc, dict] = {}
    for err in exc.errors():
        first_error.setdefault(prefix + _user_loc(data, err["loc"]), err)
    in_order = sorted(first_error.items(), key=lambda item: _nearest_line(item[0], lines) or 0)
    shown = [_problem(model, data, path, lines, loc, err) for loc, err in in_order[:MAX_PROBLEMS_SHOWN]]
    return all_problems(shown, unshown=len(in_order) - len(shown))


def validate(model: type[M], data: Any, path: Path, lines: dict[Loc, int], prefix: Loc = ()) -> M:
    """Validate ``data`` as ``model``; every problem pydantic finds becomes one UserError listing them."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _problems(exc, model, data, path, lines, prefix) from None


def _problem(model: type[BaseModel], data: Any, path: Path, lines: dict[Loc, int], loc: Loc, err: dict) -> UserError:
    """One pydantic error as the user's problem: where (line and key), what, and the fix."""
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
        fix = "remove it or check its spelling; the allowed keys are " + _allowed(model, err["loc"])
    elif err["type"] == "missing":
        fix = "add it."
    elif err["type"] == "model_type":  # pydantic names its own class here, which tells a user nothing
        msg = f"a mapping of keys is expected here, not {_kind_of(err.get('input'))}"
        fix = "write 'key: value' lines (see the examples in docs/plans-inventory.md)" + (
            f"; the allowed keys are {_allowed(model, tuple(err['loc']) + ('',))}" if not loc else ".")
    elif err["type"] == "path_type":  # pydantic's text names its own class (<class 'pathlib.Path'>)
        msg = f"must be a path (text), not {_kind_of(err.get('input'))}"
        fix = f"write {format_loc(loc)} as a quoted path, e.g. {format_loc(loc)} = \"path/to/file\"." if (
            path.suffix == ".toml") else f"write {format_loc(loc)}: followed by a path, e.g. builds/model.onnx."
    elif err["type"] == "value_error":  # the harness's own check: its text says what is wrong and what to do
        msg = str(err["ctx"]["error"])
        where = f"{format_loc(loc)}{_now(err.get('input'), loc, lines)}" if loc else "the file"
        fix = f"correct {where} as the message says."
    else:
        # A value of the wrong type or out of range: say what it is now and what the model wants.
        got = err.get("input")
        fix = (f"change {format_loc(loc)}{_now(got, loc, lines)} to a value that fits: "
               f"{err['msg'][0].lower() + err['msg'][1:]}.")
        if _number_read_as_text(got):
            fix = _text_number_fix(model, data, err["loc"], got)
    return UserError(f"{format_loc(loc)}: {msg}.", path=path, line=_nearest_line(loc, lines), fix=fix)


def _now(value: Any, loc: Loc, lines: dict[Loc, int]) -> str:
    """' (now X)': the value as the user wrote it; nothing for a list or mapping (its lines say more)."""
    if isinstance(value, (dict, list)):
        return ""
    written = getattr(lines, "written", {}).get(loc)
    if isinstance(value, bool) and written is not None:
        return f" (now {written!r}, which YAML reads as {str(value).lower()})"
    return f" (now {value!r})"


def _text_number_fix(model: type[BaseModel], data: Any, pydantic_loc: Loc, text: str) -> str:
    """The fix for '1e300' read as text: the same number as YAML 1.1 reads it, if the model takes that number
    there; if not, what the model wants (a suggestion that the check would refuse again is no fix)."""
    form = f"YAML 1.1 reads {text!r} as text, not a number (its exponent needs a dot and a sign)"
    refused = _refusal_of(model, data, pydantic_loc, float(text))
    if refused is None:
        return f"{form}: write {_yaml11_float(float(text))} or a plain number."
    return f"{form}, and as a number it does not fit either: write one that does ({refused[0].lower()}{refused[1:]})."


def _refusal_of(model: type[BaseModel], data: Any, pydantic_loc: Loc, value: float) -> str | None:
    """Pydantic's message for ``value`` in place of what stands at ``pydantic_loc``, or None if it takes it."""
    import copy

    user_loc = _user_loc(data, pydantic_loc)
    changed = copy.deepcopy(data)
    holder = changed
    try:
        for part in user_loc[:-1]:
            holder = holder[part]
        holder[user_loc[-1]] = value
    except (IndexError, KeyError, TypeError):
        return None  # not a place a value can be put back: the number's own form is the fix
    try:
        model.model_validate(changed)
    except ValidationError as exc:
        return next((err["msg"] for err in exc.errors() if _user_loc(changed, err["loc"]) == user_loc), None)
    return None


def _yaml11_float(value: float) -> str:
    """``value`` written so that YAML 1.1 reads it as this very float (repr's '1e+300' would be text to it)."""
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def _number_read_as_text(value: Any) -> bool:
    """'1e300', '5E3': numbers to a reader, text to YAML 1.1 (it wants '1.0e+300')."""
    return isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value) is not None \
        and math.isfinite(float(value))


def _kind_of(value: Any) -> str:
    kinds = {list: "a list", dict: "a mapping (table)", str: "a string", bool: "true/false", int: "a number", float: "a number"}
    return "nothing" if value is None else kinds.get(type(value), type(value).__name__)


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
        raise UserError("the file is empty.", path=path,
                        fix="see the examples in docs/plans-inventory.md for its format.")
    return validate(model, data, path, lines)
