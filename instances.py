"""YAML instance files -> typed problems, with errors a person can act on.

Every problem found is reported as ``file:line: field: what is wrong``; the
loader collects all of them before giving up, so a user fixes a file in one
pass.  The ``family:`` field picks the family in the registry
(``formulations/registry.py``), whose ``build`` validates the rest with
pydantic schemas (unknown fields forbidden); the line of each field comes
from the YAML node tree.  The helpers here (:class:`Located`,
:func:`validate_spec`, :func:`size_bits`, :func:`pair`) are what the
families' schemas share.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from .units import parse_bytes, parse_seconds


@dataclass(frozen=True)
class Issue:
    """One problem with an instance: where it is and what is wrong."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        if self.line <= 0:  # not a place in the file (it could not be read): no line to point at
            return f"{self.file}: {self.message}" if self.field == "(file)" else f"{self.file}: {self.field}: {self.message}"
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class InstanceError(Exception):
    """One or more problems with an instance file; ``str`` gives one line each."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Seconds = Annotated[float, BeforeValidator(parse_seconds)]
"""A time limit: seconds as a number, or a duration such as ``3 min`` or
``1.5 h`` (:func:`mapcert.units.parse_seconds`), positive and at most a week."""



# --------------------------------------------------------------------------
# YAML with line numbers


class Located:
    """Line of every key and value path in a YAML document (1-based)."""

    def __init__(self, file: str):
        self.file = file
        self.lines: dict[tuple, int] = {}
        self.issues: list[Issue] = []

    def walk(self, node: yaml.Node, path: tuple = ()) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.add(path + (key,), f"duplicate key (first given on line {seen[key]})", line)
                seen[key] = line
                self.lines[path + (key,)] = line
                self.walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[path + (i,)] = item.start_mark.line + 1
                self.walk(item, path + (i,))

    def line(self, path: tuple) -> int:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def add(self, path: tuple, message: str, line: int | None = None) -> None:
        field = _dotted(path) or "(document)"
        self.issues.append(Issue(self.file, line or self.line(path), field, message))

    def pydantic(self, error: ValidationError, prefix: tuple = (), schema: type[BaseModel] | None = None) -> None:
        for err in error.errors():
            loc, message = schema_problem(err)
            if err["type"] == "extra_forbidden" and schema is not None and loc:
                message += _known_fields(schema, loc)
            self.add(prefix + loc, message)


def schema_problem(err: dict) -> tuple[tuple, str]:
    """(where, what) of one pydantic error, in a user's words: the field's
    path and a message that names no class of ours."""
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "literal_error":
        message = f"must be one of {err['ctx']['expected']}"
    elif kind == "too_short":
        ctx = err.get("ctx", {})
        least = ctx.get('min_length')
        message = f"needs at least {least} {'entry' if least == 1 else 'entries'}, got {ctx.get('actual_length')}"
        if loc and loc[-1] == "levels" and ctx.get("min_length") == 2:  # a memory hierarchy's
            message += " (DRAM first, then at least one on-chip level; the last one is next to the MACs)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"must be a mapping of fields, got {type(err.get('input')).__name__}"
    elif kind == "invalid_key":
        # YAML reads `{capacity: 1,024}` as capacity 1 and a key 024 (octal 20): the comma
        # separates entries inside braces
        loc = loc[:-1]
        message = (f"holds the key {err['input']!r}, which is not a field name; inside {{...}} a comma "
                   "separates entries, so a number written with a thousands comma (1,024) splits in two "
                   "and the part after the comma becomes a key (YAML reads 024 as octal 20): write 1024, "
                   "or a size such as \"1 KiB\"")
    elif kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        limit = err.get("ctx", {}).get(key)
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        message = f"must be {word} {limit:,}, got {err.get('input')!r}" if isinstance(limit, int) else \
            f"must be {word} {limit}, got {err.get('input')!r}"
    elif kind in ("int_from_float", "int_parsing"):
        message = f"must be a whole number, got {err.get('input')!r}"
    elif kind in ("bool_type", "bool_parsing"):
        message = f"must be true or false, got {err.get('input')!r}"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if "input" in err and not isinstance(err["input"], (dict, list)):
            message += f" (got {err['input']!r})"
    return loc, message


_BOUNDS = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
           "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
"""pydantic's range errors, in the words of mapcert's own messages."""


PEER_FIELDS = {"permutation": ("order", "it lists the loops outermost first, Timeloop's permutation innermost "
                                         "first: permutation SRC is order: [C, R, S]")}
"""Field names of other mappers' files, with the mapcert field that says the same."""


def _known_fields(schema: type[BaseModel], loc: tuple) -> str:
    """``; did you mean 'order'?`` for an unknown field close to a known
    one at its place in ``schema``, else the fields that place takes."""
    model = _model_at(schema, loc[:-1])
    if model is None:
        return ""
    return field_hint(str(loc[-1]), list(model.model_fields))


def field_hint(name: str, names: list[str]) -> str:
    """``; did you mean 'order'?`` for an unknown field ``name`` close to
    one of ``names`` (or a peer's name for one of them), else the fields
    that place takes: for instances and for hand-written mappings alike."""
    peer = PEER_FIELDS.get(name)
    if peer is not None and peer[0] in names:
        return f"; mapcert calls it {peer[0]!r} ({peer[1]})"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (fields here: {', '.join(names)})" if names else ""


def _model_at(schema: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (None when not one)."""
    def is_model(t) -> bool:
        return isinstance(t, type) and issubclass(t, BaseModel)

    model: Any = schema
    parts = list(loc)
    while parts:
        if not is_model(model):
            return None
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        model = field.annotation
        while not is_model(model):
            origin, args = typing.get_origin(model), [a for a in typing.get_args(model) if a is not type(None)]
            if origin in (typing.Union, types.UnionType):
                models = [a for a in args if is_model(a) or typing.get_origin(a) in (list, dict)]
                if not models:
                    return None
                model = models[0]
            elif origin in (list, dict) and args:
                if not parts:
                    return None
                parts.pop(0)  # the index or the key
                model = args[-1]
            elif origin is typing.Annotated and args:
                model = args[0]
            else:
                return None
    return model if is_model(model) else None


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _read_file(path: Path, label: str) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise InstanceError([Issue(label, 1, "(file)", "not a text file")]) from None
    except OSError as exc:
        raise InstanceError([Issue(label, 0, "(file)", f"cannot read: {exc.strerror or exc}")]) from None


def unreadable_tag(text: str, loader=yaml.SafeLoader) -> tuple[int, str]:
    """(line, reason) of the first scalar whose explicit YAML tag cannot
    build it (``!!bool maybe``, ``!!int abc``): PyYAML raises a plain
    KeyError or ValueError there, with no mark to point at."""
    stack = [yaml.compose(text, Loader=loader)]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                loader("").construct_object(node, deep=True)
            except Exception:  # noqa: BLE001 (PyYAML's constructors raise several kinds)
                return node.start_mark.line + 1, f"{node.tag.rsplit(':', 1)[-1]} cannot read {node.value!r}"
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in reversed(node.value) for item in reversed(pair))
    return 1, "a value its tag cannot build"


def template_hint(text: str) -> str:
    """What to add to a YAML error when the file is a Jinja2 template (as
    timeloopfe's and CiMLoop's inputs often are): empty otherwise."""
    if "{{" in text or "{%" in text:
        return ("; the file is a Jinja2 template ({{ }} or {% %}): render it first (timeloopfe renders Timeloop's "
                "templates) and give the rendered file")
    return ""


def _read_yaml(text: str, label: str) -> tuple[Any, Located]:
    where = Located(label)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (ValueError, KeyError, TypeError, OverflowError):  # an explicit tag its value does not fit
        line, reason = unreadable_tag(text)
        raise InstanceError([Issue(label, line, "(yaml)", f"not valid YAML: the tag !!{reason}")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise InstanceError([Issue(label, line, "(yaml)", f"not valid YAML: {exc.problem or exc}"
                                                          f"{template_hint(text)}")]) from None
    except yaml.YAMLError as exc:
        raise InstanceError([Issue(label, 1, "(yaml)", f"not valid YAML: {exc}{template_hint(text)}")]) from None
    if node is not None:
        where.walk(node)
    return data, where



# --------------------------------------------------------------------------
# helpers the families' schemas share


def read_document(path: str | Path) -> tuple[Any, Located]:
    """A YAML file parsed, with the line of every field (for ``file:line`` messages).

    Raises
    ------
    InstanceError
        The file cannot be read or is not YAML.
    """
    return _read_yaml(_read_file(Path(path), str(path)), str(path))


def resolve_preset(raw: Any, presets: dict, where: Located, path: tuple, what: str) -> tuple[str, Any] | None:
    """``(name, description)`` of a value that may name a preset: a string is
    looked up in ``presets`` (an unknown name is an issue listing the known
    ones, and None is returned); anything else is its own description."""
    if not isinstance(raw, str):
        return "", raw
    if raw not in presets:
        where.add(path, f"unknown {what} preset {raw!r}; known: {', '.join(presets)}")
        return None
    return raw, presets[raw]


def validate_spec(schema: type[BaseModel], raw: Any, where: Located, path: tuple, expected: str):
    """``raw`` checked against ``schema``; None (with issues recorded) if it fails."""
    if not isinstance(raw, dict):
        where.add(path, f"must be {expected}")
        return None
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        where.pydantic(exc, path, schema)
        return None


def size_bits(value: Any, where: Located, path: tuple) -> int | None:
    if value is None:  # `capacity:` with nothing after it
        where.add(path, "has no size; give one such as '64 KiB'")
        return None
    try:
        return parse_bytes(value) * 8
    except ValueError as exc:
        where.add(path, str(exc))
        return None


def pair(value, where: Located, path: tuple) -> tuple[int, int] | None:
    items = [value, value] if isinstance(value, int) else list(value)
    if len(items) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in items):
        where.add(path, f"must be a positive integer or [vertical, horizontal], got {value!r}")
        return None
    return int(items[0]), int(items[1])



# --------------------------------------------------------------------------
# loading


def load(path: str | Path):
    """Read and validate an instance file of any registered family.

    Parameters
    ----------
    path
        The instance YAML.

    Returns
    -------
    object
        The family's problem (``mapcert.solve`` takes it).

    Raises
    ------
    InstanceError
        Listing every problem, one line each.

    Examples
    --------
    >>> import mapcert
    >>> problem = mapcert.load("examples/vgg16_conv3_2_64KiB.yaml")
    >>> problem.layer.name
    'vgg16.conv3_2'
    """
    return load_text(_read_file(Path(path), str(path)), str(path), base=Path(path).parent)


def load_text(text: str, label: str = "<text>", base: Path | None = None):
    """Validate instance YAML ``text``; ``label`` names it in messages and
    ``base`` is where relative file names (weights, graphs) are looked up."""
    data, where = _read_yaml(text, label)
    return _build(data, where, label, base)


def load_document(data: Any, label: str = "<document>", base: Path | None = None):
    """Validate an instance already parsed (a result's embedded instance)."""
    text = yaml.safe_dump(data, sort_keys=False)
    return load_text(text, label, base)


def _build(data: Any, where: Located, label: str, base: Path | None):
    from .formulations import registry

    if not isinstance(data, dict):
        raise InstanceError([Issue(label, 1, "(document)", "an instance is a mapping with family, workload and hardware")])
    if str(data.get("format", "")).startswith("mapcert-result/") or {"certificate", "instance"} <= set(data):
        # a saved result where an instance goes: one line, not one per field of the result
        raise InstanceError([Issue(label, 1, "(document)", "a saved result (mapcert solve -o), not an instance: "
                                   "`mapcert verify` checks it; its `instance:` field is the instance it solved")])
    if "family" not in data:
        where.add(("family",), f"required field is missing; one of: {', '.join(registry.names())}")
        raise InstanceError(where.issues)
    family = registry.for_document(data)
    if family is None:
        where.add(("family",), f"unknown family {data.get('family')!r}; this version solves: "
                               f"{', '.join(registry.names())}")
        raise InstanceError(where.issues)
    problem = family.build(data, where, label, base or Path("."))
    if where.issues or problem is None:
        raise InstanceError(where.issues or [Issue(label, 1, "(document)", "not a valid instance")])
    return problem


def line_of(path: str | Path, field: tuple) -> int:
    """Line of ``field`` in an instance file (1 if it cannot be located)."""
    try:
        _, where = _read_yaml(_read_file(Path(path), str(path)), str(path))
    except InstanceError:
        return 1
    return where.line(field)


def first_field(path: str | Path, fields: list[tuple]) -> tuple[tuple, int]:
    """The first of ``fields`` the instance file has, with its line (the
    last field and line 1 when it has none of them)."""
    try:
        _, where = _read_yaml(_read_file(Path(path), str(path)), str(path))
    except InstanceError:
        return fields[-1], 1
    for field in fields:
        if tuple(field) in where.lines:
            return tuple(field), where.lines[tuple(field)]
    return fields[-1], 1


