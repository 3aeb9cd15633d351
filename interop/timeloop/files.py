"""Timeloop's YAML files: tags, merging of several files, lines, expressions.

Timeloop (and its front end, timeloopfe) reads several YAML files and merges
their top-level keys: ``architecture``, ``problem``, ``constraints`` (or the
flattened ``architecture_constraints``), ``mapping``, ``ERT``, ``variables``
and keys mapcert has no use for (``mapper``, ``components``, ...).  The
v0.4 architecture marks its nodes with YAML tags (``!Container``,
``!Component``, ``!Parallel``, ``!Hierarchical``); a plain safe loader
refuses them, so the loader here keeps every ``!Tag`` as a ``"!"`` entry of
the node's mapping.  Every value keeps its file and line, so that a refusal
names ``file:line: field``.

Attribute values may be expressions over variables (``depth: GLB_DEPTH``,
``width: datawidth * 4``), as timeloopfe evaluates them; :func:`evaluate`
computes them with arithmetic only (no names of Python are reachable).
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...instances import InstanceError, Issue, Located, template_hint, unreadable_tag

TAG = "!"
"""Key under which a tagged node keeps its tag (``Container``, ``Component``, ...)."""


class _TagLoader(yaml.SafeLoader):
    """A safe loader that accepts any ``!Tag`` and records it in the node."""


def _tagged(loader: _TagLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        data = dict(loader.construct_mapping(node, deep=True))
        data[TAG] = suffix.lstrip("!")
        return data
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if node.value == "":  # a bare tag (`- !Nothing`): a node with no fields
        return {TAG: suffix.lstrip("!")}
    return loader.construct_scalar(node)


_TagLoader.add_multi_constructor("!", _tagged)


class TimeloopError(InstanceError):
    """A Timeloop file that cannot be read or represented (one issue)."""


@dataclass
class Part:
    """One top-level key of the merged files: its value and where it came from."""

    key: str
    value: Any
    where: Located

    def fail(self, path: tuple, message: str) -> None:
        """Raise the one-line refusal for ``path`` (below this key)."""
        raise TimeloopError([Issue(self.where.file, self.where.line((self.key, *path)),
                                   _dotted((self.key, *path)), message)])

    def line(self, path: tuple = ()) -> int:
        return self.where.line((self.key, *path))


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Files:
    """Several Timeloop files merged by top-level key, as Timeloop merges them."""

    parts: dict[str, Part] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)

    def get(self, key: str) -> Part | None:
        return self.parts.get(key)

    def has(self, key: str) -> bool:
        return key in self.parts


def read_yaml(path: Path) -> tuple[Any, Located]:
    """A Timeloop YAML file, tags kept, with the line of every field."""
    label = str(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise TimeloopError([Issue(label, 1, "(file)", "not a text file")]) from None
    except OSError as exc:
        raise TimeloopError([Issue(label, 0, "(file)", f"cannot read: {exc.strerror or exc}")]) from None
    where = Located(label)
    try:
        node = yaml.compose(text, Loader=_TagLoader)
        data = yaml.load(text, Loader=_TagLoader)  # noqa: S506 (a SafeLoader with a tag recorder)
    except (ValueError, KeyError, TypeError, OverflowError):  # an explicit tag its value does not fit
        line, reason = unreadable_tag(text, _TagLoader)
        raise TimeloopError([Issue(label, line, "(yaml)", f"not valid YAML: the tag !!{reason}")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise TimeloopError([Issue(label, mark.line + 1 if mark else 1, "(yaml)",
                                   f"not valid YAML: {exc.problem or exc}{template_hint(text)}")]) from None
    except yaml.YAMLError as exc:
        raise TimeloopError([Issue(label, 1, "(yaml)", f"not valid YAML: {exc}")]) from None
    if node is not None:
        where.walk(node)
    if where.issues:  # a key given twice: YAML keeps the last silently, and Timeloop's parser may not
        raise TimeloopError(list(where.issues))
    return data, where


KNOWN_KEYS = ("architecture", "arch", "problem", "constraints", "architecture_constraints", "mapping", "ERT",
              "variables", "mapspace_constraints", "mapspace", "mapper", "components", "compound_components", "globals",
              "sparse_optimizations", "ART", "model", "dumped_by_timeloop_front_end", "ERT_summary",
              "ART_summary")


def read_files(paths: list[Path]) -> Files:
    """The top-level keys of ``paths`` merged (a key given twice is refused:
    Timeloop would take one silently, and which one matters)."""
    files = Files(paths=[str(p) for p in paths])
    for path in paths:
        data, where = read_yaml(path)
        if not isinstance(data, dict):
            raise TimeloopError([Issue(str(path), 1, "(document)",
                                       "a Timeloop file is a mapping of top-level keys (architecture, problem, "
                                       "mapping, constraints, ERT, variables)")])
        for key, value in data.items():
            if key in files.parts:
                first = files.parts[key]
                hint = ""
                if key in ("constraints", "architecture_constraints", "mapspace_constraints", "mapspace"):
                    others = [k for k in ("architecture_constraints", "mapspace_constraints", "constraints")
                              if k not in files.parts and k != key]
                    hint = ("; put both files' targets under one key" + (f", or name this one {others[0]}: (each of "
                            "constraints, architecture_constraints, mapspace_constraints and mapspace is read)"
                            if others else ""))
                raise TimeloopError([Issue(str(path), where.line((key,)), str(key),
                                           f"given twice (first in {first.where.file}:{first.line()}){hint}")])
            files.parts[str(key)] = Part(str(key), value, where)
    return files


def is_timeloop_document(data: Any) -> bool:
    """Whether a parsed YAML document is one of Timeloop's files rather than a mapcert instance."""
    if not isinstance(data, dict) or "family" in data:
        return False
    return bool({"architecture", "arch", "problem", "ERT", "architecture_constraints", "constraints", "mapspace_constraints",
                 "mapspace", "mapper"} & set(data)) or isinstance(data.get("mapping"), list)


def is_timeloop_mapping_document(data: Any) -> bool:
    """Whether a parsed document is a Timeloop mapping alone (a ``mapping:``
    list of targets, no architecture or problem): a mapper's output."""
    return (isinstance(data, dict) and isinstance(data.get("mapping"), list)
            and not {"architecture", "problem", "family"} & set(data))


def is_timeloop_file(path: Path) -> bool:
    """Whether ``path`` holds a Timeloop file (read leniently: any failure says no)."""
    return _lenient(path, is_timeloop_document)


def is_timeloop_mapping_file(path: Path) -> bool:
    """Whether ``path`` holds a Timeloop mapping alone (read leniently)."""
    return _lenient(path, is_timeloop_mapping_document)


def _lenient(path: Path, test) -> bool:
    try:
        data = yaml.load(path.read_text(), Loader=_TagLoader)  # noqa: S506 (a SafeLoader that keeps tags)
    except Exception:  # noqa: BLE001 (not readable: the ordinary loader says why)
        return False
    return test(data)


# --------------------------------------------------------------------------
# expressions

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_FUNCTIONS = {"ceil": math.ceil, "floor": math.floor, "log2": math.log2, "min": min, "max": max, "round": round,
              "int": int, "sqrt": math.sqrt, "abs": abs}


class ExpressionError(ValueError):
    pass


def evaluate(value: Any, scope: dict[str, Any], seen: frozenset = frozenset()) -> Any:
    """``value`` with arithmetic expressions over ``scope`` computed.

    Numbers pass through; a string is parsed as an arithmetic expression of
    numbers, names of ``scope`` (themselves evaluated, cycles refused) and
    ceil, floor, log2, min, max, round, int, sqrt, abs; a string that is not
    an expression (``"LPDDR4"``) is returned as it is."""
    if isinstance(value, bool) or not isinstance(value, str):
        return value
    text = value.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return value
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(_FUNCTIONS)
    if names and not names <= set(scope):
        if isinstance(tree.body, ast.Name):
            return value  # a bare word such as LPDDR4: a string attribute
        raise ExpressionError(f"{value!r} names {', '.join(sorted(names - set(scope)))}, "
                              "which no variable or attribute defines")
    return _eval(tree.body, scope, seen, value)


def _eval(node: ast.AST, scope: dict, seen: frozenset, text: str):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in seen:
            raise ExpressionError(f"{text!r}: {node.id} is defined through itself")
        result = evaluate(scope[node.id], scope, seen | {node.id})
        if isinstance(result, bool) or not isinstance(result, (int, float)):
            raise ExpressionError(f"{text!r}: {node.id} is {result!r}, not a number")
        return result
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, scope, seen, text), _eval(node.right, scope, seen, text)
        if isinstance(node.op, ast.Pow) and abs(right) > 256:
            # an integer power this large runs for ever; no hardware size needs it
            raise ExpressionError(f"{text!r}: an exponent of {right} is beyond any size (at most 256)")
        try:
            return _BINARY[type(node.op)](left, right)
        except (ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(f"{text!r}: {exc}") from None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _eval(node.operand, scope, seen, text)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS \
            and not node.keywords:
        args = [_eval(a, scope, seen, text) for a in node.args]
        try:
            return _FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise ExpressionError(f"{text!r}: {exc}") from None
    raise ExpressionError(f"{text!r} is not an arithmetic expression mapcert evaluates "
                          "(numbers, variables, + - * / // % **, ceil, floor, log2, min, max)")
