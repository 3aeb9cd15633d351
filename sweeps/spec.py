"""Sweep files: a base instance and axes, expanded into points.

A sweep file names a base instance of any family (a file, or the instance
written inline) and *axes*: for a field of the instance, the list of values
to try.  The axes expand as a product, in the order they are written;
``zip`` groups make several axes move together (their lists pair up, like
Python's ``zip``); ``exclude`` rules drop the points they match::

    sweep: resnet50-glb              # the name results are stored under
    base: resnet50_eyeriss.yaml      # or an inline instance mapping
    axes:
      hardware: [eyeriss, simba-pe]
      hardware.levels[1].scale: [0.5, 1, 2]
    exclude:
      - hardware: simba-pe
        hardware.levels[1].scale: 2
    time_limit: 60                   # seconds per job (default: the instance's)

An axis is a dotted path into the instance document.  ``[i]`` picks the
i-th element of a list, ``[NAME]`` the element whose ``name`` is NAME.  A
path that goes inside a preset (``hardware.levels[GLB].capacity`` when the
hardware is ``eyeriss``) first expands the preset into the explicit form
the family writes into results, so any field of the hardware can be swept.
The last segment ``scale`` multiplies a number, or a memory level's
capacity and per-tensor partition, by the value (``0.5``, ``2``).

Each point is validated as an ordinary instance; problems are reported as
``SWEEP.yaml:line: axes.PATH: ...`` or with the point's values, before any
job runs.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from ..instances import InstanceError, Issue, Located, Seconds, Strict, load_document, load, read_document, validate_spec

MAX_POINTS = 20_000
"""Most points a sweep may expand to: each is validated as an instance before
anything runs, and a store of more is not read by a person."""


class SweepSpec(Strict):
    """The fields of a sweep file (unknown fields are refused)."""

    sweep: str | None = Field(None, min_length=1, max_length=200)
    base: str | dict
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    zip: list[list[str]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    time_limit: Seconds | None = None
    retries: int = Field(2, ge=0, le=20)

    @field_validator("axes")
    @classmethod
    def _axes(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in axes.items():
            if not values:
                raise ValueError(f"{name}: an axis needs at least one value")
            parse_path(name)
        return axes


@dataclass(frozen=True)
class Segment:
    """One step of an axis path: a mapping key, then an optional list selector."""

    key: str
    select: str | int | None = None


_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]*)(?:\[([^\[\]]+)\])?$")


def parse_path(path: str) -> list[Segment]:
    """``hardware.levels[GLB].capacity`` -> its segments (ValueError if malformed)."""
    segments = []
    for part in path.split("."):
        match = _SEGMENT.match(part.strip())
        if match is None:
            raise ValueError(f"{path!r}: {part!r} is not a field name or field[index] / field[NAME]")
        key, select = match.group(1), match.group(2)
        if select is not None:
            select = int(select) if re.fullmatch(r"-?\d+", select.strip()) else select.strip()
        segments.append(Segment(key, select))
    return segments


@dataclass
class Point:
    """One instance of a sweep: the values of the axes and the document they give."""

    index: int
    values: dict[str, Any]
    document: dict
    label: str


@dataclass
class Sweep:
    """A validated sweep file, expanded."""

    name: str
    path: Path
    spec: SweepSpec
    points: list[Point]
    excluded: int

    @property
    def axes(self) -> list[str]:
        return list(self.spec.axes)


class PathError(ValueError):
    """An axis path that does not lead to a field of the instance."""


def _walk(document: dict, segments: list[Segment]):
    """The container holding the last segment, and that segment's key."""
    node: Any = document
    for depth, segment in enumerate(segments):
        last = depth == len(segments) - 1
        if not isinstance(node, dict):
            raise _NeedsExpansion(segment.key)
        if segment.select is None:
            if last:
                return node, segment.key
            if segment.key not in node or node[segment.key] is None:
                node[segment.key] = {}
            node = node[segment.key]
            continue
        if segment.key not in node:
            raise _NeedsExpansion(segment.key)
        items = node[segment.key]
        if not isinstance(items, list):
            raise _NeedsExpansion(segment.key)
        index = _select(items, segment)
        if last:
            return items, index
        node = items[index]
    raise PathError("empty path")


def _select(items: list, segment: Segment) -> int:
    if isinstance(segment.select, int):
        if -len(items) <= segment.select < len(items):
            return segment.select
        raise PathError(f"{segment.key}[{segment.select}]: there are {len(items)} entries (0 to {len(items) - 1})")
    names = [item.get("name") for item in items if isinstance(item, dict)]
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == segment.select:
            return i
    raise PathError(f"{segment.key}[{segment.select}]: no entry named {segment.select!r}; "
                    f"the names are {', '.join(str(n) for n in names) or '(none)'}")


class _NeedsExpansion(Exception):
    """The path goes inside a value given by name (a preset)."""


def _scale(container, key, factor) -> None:
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0:
        raise PathError(f"scale: the factor must be a positive number, got {factor!r}")
    target = container[key]
    if isinstance(target, bool):
        raise PathError("scale: the field is not a number")
    if isinstance(target, (int, float)):
        container[key] = _scaled(target, factor)
        return
    if not isinstance(target, dict):
        raise PathError("scale: the field is neither a number nor a memory level")
    scaled = False
    if isinstance(target.get("capacity"), (int, float)):
        target["capacity"] = _scaled(target["capacity"], factor)
        scaled = True
    if isinstance(target.get("partition"), dict):
        target["partition"] = {k: _scaled(v, factor) if isinstance(v, (int, float)) else v
                               for k, v in target["partition"].items()}
        scaled = True
    if not scaled:
        raise PathError(f"scale: {target.get('name', 'the level')} has no capacity or partition to scale")


def _scaled(value, factor):
    result = value * factor
    return max(1, round(result)) if isinstance(value, int) else result


def expand_presets(document: dict, label: str, base: Path) -> dict:
    """The explicit form of ``document`` (presets written out), as the
    family writes it into results."""
    from ..formulations import registry

    problem = load_document(document, label, base)
    return registry.family_of(problem).editable_dump(problem)


def apply(document: dict, path: str, value, label: str, base: Path) -> dict:
    """``document`` with the field at ``path`` set to ``value`` (a copy)."""
    segments = parse_path(path)
    scale = segments[-1].key == "scale" and segments[-1].select is None and len(segments) > 1
    target = segments[:-1] if scale else segments
    result = copy.deepcopy(document)
    for attempt in ("as written", "expanded"):
        try:
            if scale:
                # the field to scale must be read in explicit form (sizes in bytes)
                result = expand_presets(result, label, base) if attempt == "as written" else result
                holder, key = _walk(result, target)
                if isinstance(holder, dict) and key not in holder:
                    raise PathError(f"{segments[-2].key}: the instance has no such field")
                _scale(holder, key, value)
            else:
                holder, key = _walk(result, target)
                holder[key] = copy.deepcopy(value)
            return result
        except _NeedsExpansion as exc:
            if attempt == "expanded":
                raise PathError(f"{exc}: the instance has no such field, even with its presets written out")
            result = expand_presets(result, label, base)
    raise AssertionError("unreachable")


def _matches(values: dict, rule: dict) -> bool:
    for axis, wanted in rule.items():
        choices = wanted if isinstance(wanted, list) else [wanted]
        if not any(same_value(values.get(axis), choice) for choice in choices):
            return False
    return True


def same_value(a, b) -> bool:
    """Whether two swept values are the same: equal, equal as numbers or sizes
    (``64 KiB``, ``64KiB`` and ``65536``), or equal once a text is read as
    JSON or YAML (``{"rows": 8, "cols": 8}``)."""
    if a == b or str(a) == str(b):
        return True
    x, y = numeric_value(a), numeric_value(b)
    if x is not None and y is not None:
        return x == y
    for value, text in ((a, b), (b, a)):
        if isinstance(text, str) and not isinstance(value, str):
            try:
                return yaml.safe_load(text) == value
            except yaml.YAMLError:
                return False
    return False


def numeric_value(value) -> float | None:
    """A swept value as a number when it is one (sizes such as ``64 KiB`` in
    bytes), else None: what plots put on an axis and the store indexes."""
    from ..units import parse_bytes

    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return float(parse_bytes(value))
        except (ValueError, TypeError):
            return None
    return None


def describe_value(value) -> str:
    """A swept value as a person reads it in a label or a table."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True)
    return str(value)


def load_sweep(path: str | Path) -> Sweep:
    """Read, validate and expand a sweep file.

    Parameters
    ----------
    path
        The sweep YAML.

    Returns
    -------
    Sweep
        Its points, each an instance document that loads.

    Raises
    ------
    InstanceError
        Every problem of the file or of its points, one line each.
    """
    path = Path(path)
    label = str(path)
    data, where = read_document(path)
    if not isinstance(data, dict):
        raise InstanceError([Issue(label, 1, "(document)", "a sweep file is a mapping with base and axes")])
    if "family" in data and "base" not in data:
        where.add(("family",), "this is an instance, not a sweep: a sweep file has `base:` (the instance, or "
                               "its file) and `axes:` (fields and the values to try); see docs/sweeps.md")
        raise InstanceError(where.issues)
    spec = validate_spec(SweepSpec, data, where, (), "a mapping with base and axes")
    if spec is None or where.issues:
        spec = _without_bad_settings(data, where)  # go on to the axes: every problem in one run
        if spec is None:
            raise InstanceError(where.issues or [Issue(label, 1, "(document)", "not a valid sweep file")])
    early = len(where.issues)  # the settings' problems, said with the axes' below
    base_document, base_dir = _base(spec, path, where)
    groups = _groups(spec, where)
    if len(where.issues) > early:  # a zip that pairs nothing: the points are checked as a product
        groups = [[axis] for axis in spec.axes]
    for i, rule in enumerate(spec.exclude):  # a rule naming no axis excludes nothing: the points are checked too
        for axis in rule:
            if axis not in spec.axes:
                where.add(("exclude", i, axis), f"not an axis of this sweep; the axes are {', '.join(spec.axes)}")
    size = math.prod(len(_group_values(spec, g)) for g in groups)
    if size > MAX_POINTS:
        where.add(("axes",), f"{size:,} points before exclusions; a sweep expands to at most {MAX_POINTS:,} "
                             f"(split it into several sweeps sharing one store)")
        raise InstanceError(where.issues)
    points, issues, excluded, invalid = [], list(where.issues), 0, 0
    broken: set[str] = set()  # axes whose path names nothing: said once, left out of the later points
    for combination in itertools.product(*[_group_values(spec, g) for g in groups]):
        values = {axis: value for chunk in combination for axis, value in chunk}
        values = {axis: values[axis] for axis in spec.axes}
        if any(_matches(values, rule) for rule in spec.exclude):
            excluded += 1
            continue
        index = len(points) + invalid
        point_label = f"{label} point {index} (" + ", ".join(
            f"{a}={describe_value(v)}" for a, v in values.items()) + ")"
        document = base_document
        try:
            for axis, value in values.items():
                if axis in broken:
                    continue
                try:
                    document = apply(document, axis, value, point_label, base_dir)
                except PathError as exc:
                    issues.append(Issue(label, where.line(("axes", axis)), f"axes.{axis}", str(exc)))
                    broken.add(axis)
            load_document(document, point_label, base_dir)
            if broken:
                invalid += 1
                continue
        except InstanceError as exc:
            used = {axis: value for axis, value in values.items() if axis not in broken}
            issues.extend(_at_point(exc.issues, used, index, label, where))
            invalid += 1
            if len(issues) >= 20:
                unchecked = size - index - 1  # before exclusions: an upper count
                if unchecked:
                    issues.append(Issue(label, where.line(("axes",)), "axes",
                                        f"the points after point {index} were not checked (up to {unchecked:,} "
                                        f"more): fix these and run again"))
                break
            continue
        points.append(Point(index=index, values=values, document=document, label=point_label))
    if issues:
        raise InstanceError(_once(issues))
    if not points:
        raise InstanceError([Issue(label, where.line(("exclude",)), "exclude", "every point is excluded; "
                                   "nothing to solve")])
    return Sweep(name=spec.sweep or path.stem, path=path, spec=spec, points=points, excluded=excluded)


def _without_bad_settings(data: dict, where: Located) -> SweepSpec | None:
    """The sweep read without the settings whose problems ``where`` holds
    (``time_limit``, ``retries``, ``zip``, ``exclude``, an unknown key), so
    that the axes are checked in the same run; None when the problems
    concern what the points are made of (``base``, ``axes``, ``sweep``)."""
    bad = {issue.field.split(".", 1)[0].split("[", 1)[0] for issue in where.issues}
    if not bad or bad & {"base", "axes", "sweep", "(document)"}:
        return None
    scratch = Located(where.file)
    return validate_spec(SweepSpec, {k: v for k, v in data.items() if k not in bad}, scratch, (),
                         "a mapping with base and axes")


def _at_point(issues: list[Issue], values: dict, index: int, label: str, where: Located) -> list[Issue]:
    """A point's problems, placed in the sweep file: at the axis whose field
    they concern, else at ``base``, with the point's values named."""
    placed = []
    for issue in issues:
        axis = next((a for a in values if issue.field == a or issue.field.startswith(a + ".")
                     or a.startswith(issue.field + ".")), None)
        if axis is None:  # `hardware.levels.1.capacity` against `hardware.levels[GLB].capacity`: the longest
            axis = max((a for a in values if _root(a) == _root(issue.field)),  # shared path wins
                       key=lambda a: len(_common(a, issue.field)), default=None)
        line = where.line(("axes", axis)) if axis else where.line(("base",))
        point = ", ".join(f"{a}={describe_value(v)}" for a, v in values.items())
        placed.append(Issue(label, line, issue.field, f"{issue.message} (point {index}: {point})"))
    return placed


def _root(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _common(axis: str, field: str) -> str:
    words = re.split(r"[.\[\]]+", axis)
    other = re.split(r"[.\[\]]+", field)
    return "".join(w for w, o in zip(words, other) if w == o)


def _once(issues: list[Issue]) -> list[Issue]:
    """Problems that every point repeats, said once with the points named."""
    seen: dict[tuple, list] = {}
    for issue in issues:
        text, _, point = issue.message.rpartition(" (point ")
        key = (issue.line, issue.field, text or issue.message)
        seen.setdefault(key, [issue, []])[1].append(point.rstrip(")").split(":")[0] if text else "")
    out = []
    for (line, field, text), (first, points) in seen.items():
        if len(points) == 1:
            out.append(first)
        else:
            out.append(Issue(first.file, line, field, f"{text} (points {', '.join(points)})"))
    return out


def _base(spec: SweepSpec, path: Path, where: Located) -> tuple[dict, Path]:
    if isinstance(spec.base, dict):
        try:
            load_document(spec.base, f"{path} (base)", path.parent)
        except InstanceError as exc:
            for issue in exc.issues:
                where.add(("base",) + tuple(issue.field.split(".")), issue.message)
            raise InstanceError(where.issues)
        return spec.base, path.parent
    base_path = (path.parent / spec.base) if not Path(spec.base).is_absolute() else Path(spec.base)
    if not base_path.is_file():
        where.add(("base",), f"{spec.base}: no such instance file (looked at {base_path})")
        raise InstanceError(where.issues)
    load(base_path)  # its own problems, with its own line numbers
    data, _ = read_document(base_path)
    return data, base_path.parent


def _groups(spec: SweepSpec, where: Located) -> list[list[str]]:
    """The axes in product order: single axes, and zip groups at their first axis."""
    zipped: dict[str, int] = {}
    for g, group in enumerate(spec.zip):
        if len(group) < 2:
            where.add(("zip", g), "a zip group pairs at least two axes")
        lengths = set()
        for axis in group:
            if axis not in spec.axes:
                where.add(("zip", g), f"{axis}: not an axis of this sweep; the axes are {', '.join(spec.axes)}")
            elif axis in zipped:
                where.add(("zip", g), f"{axis}: already in zip group {zipped[axis]}")
            else:
                zipped[axis] = g
                lengths.add(len(spec.axes[axis]))
        if len(lengths) > 1:
            where.add(("zip", g), "the axes of a zip group need lists of the same length; got "
                                  + ", ".join(f"{a}: {len(spec.axes[a])}" for a in group if a in spec.axes))
    groups, placed = [], set()
    for axis in spec.axes:
        if axis in zipped:
            g = zipped[axis]
            if g not in placed:
                placed.add(g)
                groups.append([a for a in spec.zip[g] if a in spec.axes])
        else:
            groups.append([axis])
    return groups


def _group_values(spec: SweepSpec, group: list[str]) -> list[list[tuple[str, Any]]]:
    return [[(axis, value) for axis, value in zip(group, values)]
            for values in zip(*[spec.axes[a] for a in group])]
