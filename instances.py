"""YAML instance files -> typed problems, with errors a person can act on.

Every problem found is reported as ``file:line: field: what is wrong``; the
loader collects all of them before giving up, so a user fixes a file in one
pass.  Schemas are pydantic models with unknown fields forbidden; the line
of each field comes from the YAML node tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import workload_library
from .formulations.tiling.problem import (
    Buffer, ConvLayer, Precision, SolverSettings, TilingProblem, TENSORS,
)
from .hardware.presets import hardware_presets
from .units import parse_bytes

FAMILIES = ("tiling", "crossbar", "pairing", "partition")


@dataclass(frozen=True)
class Issue:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class InstanceError(Exception):
    """One or more problems with an instance file; ``str`` gives one line each."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


# --------------------------------------------------------------------------
# schemas


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrecisionSpec(_Strict):
    inputs: int = Field(8, ge=1, le=32)
    weights: int = Field(8, ge=1, le=32)
    outputs: int = Field(8, ge=1, le=32)
    psums: int = Field(24, ge=1, le=64)


class WorkloadSpec(_Strict):
    name: str = "layer"
    op: Literal["conv2d", "matmul", "fc"] = "conv2d"
    dims: dict[str, int]
    stride: int | list[int] = 1
    dilation: int | list[int] = 1
    groups: int = Field(1, ge=1)
    precision: PrecisionSpec = PrecisionSpec()


class PartitionSpec(_Strict):
    inputs: int | str
    weights: int | str
    outputs: int | str


class LevelSpec(_Strict):
    name: str
    capacity: int | str | None = None
    partition: PartitionSpec | None = None


class HardwareSpec(_Strict):
    name: str = ""
    source: str = ""
    levels: list[LevelSpec] = Field(min_length=1)


class SpaceSpec(_Strict):
    tiles: Literal["divisors", "any"] = "divisors"


class SolverSpec(_Strict):
    method: Literal["cpsat", "milp", "enumerate"] = "cpsat"
    time_limit: float = Field(60.0, gt=0)
    workers: int = Field(0, ge=0)


class InstanceSpec(_Strict):
    family: Literal["tiling"]
    workload: Any
    hardware: Any
    objective: Literal["offchip_traffic"] = "offchip_traffic"
    space: SpaceSpec = SpaceSpec()
    solver: SolverSpec = SolverSpec()

    @field_validator("workload", "hardware")
    @classmethod
    def _present(cls, value):
        if value is None:
            raise ValueError("must be a preset name or a mapping")
        return value


# --------------------------------------------------------------------------
# YAML with line numbers


class _Located:
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

    def pydantic(self, error: ValidationError, prefix: tuple = ()) -> None:
        for err in error.errors():
            loc = prefix + tuple(err["loc"])
            kind = err["type"]
            if kind == "extra_forbidden":
                message = "unknown field"
            elif kind == "missing":
                message = "required field is missing"
            elif kind == "literal_error":
                message = f"must be one of {err['ctx']['expected']}"
            else:
                message = err["msg"].removeprefix("Value error, ")
                if "input" in err and not isinstance(err["input"], (dict, list)):
                    message += f" (got {err['input']!r})"
            self.add(loc, message)


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


def _read_yaml(text: str, label: str) -> tuple[Any, _Located]:
    where = _Located(label)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise InstanceError([Issue(label, line, "(yaml)", f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise InstanceError([Issue(label, 1, "(yaml)", f"not valid YAML: {exc}")]) from None
    if node is not None:
        where.walk(node)
    return data, where


# --------------------------------------------------------------------------
# semantic checks and conversion


_CONV_DIMS = ("N", "M", "C", "P", "Q", "R", "S")
_MATMUL_DIMS = ("N", "M", "C")


def _pair(value, where: _Located, path: tuple) -> tuple[int, int] | None:
    items = [value, value] if isinstance(value, int) else list(value)
    if len(items) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in items):
        where.add(path, f"must be a positive integer or [vertical, horizontal], got {value!r}")
        return None
    return int(items[0]), int(items[1])


def _build_layer(raw: Any, where: _Located, path: tuple) -> ConvLayer | None:
    if isinstance(raw, str):
        try:
            raw = workload_library.layer(raw)
        except KeyError as exc:
            where.add(path, exc.args[0] if exc.args else str(exc))
            return None
        if raw.get("op") not in workload_library.COMPUTE_OPS:
            where.add(path, f"{raw['name']} is a {raw.get('op')} layer without weights; the tiling family maps "
                            f"{', '.join(workload_library.COMPUTE_OPS)} layers")
            return None
        raw.pop("inputs", None)  # graph edges matter to the partition family, not to one layer
        path_note = f" (from preset {raw['name']})"
    else:
        path_note = ""
    spec = _validate(WorkloadSpec, raw, where, path, "a layer name such as vgg16.conv3_2 or a mapping with op and dims")
    if spec is None:
        return None
    allowed = _CONV_DIMS if spec.op == "conv2d" else _MATMUL_DIMS
    bad = False
    for dim, value in spec.dims.items():
        if dim not in allowed:
            hint = "" if spec.op == "conv2d" else " (a matmul / fc layer has N, M and C)"
            where.add(path + ("dims", dim), f"unknown dimension; expected one of {', '.join(allowed)}{hint}")
            bad = True
        elif value < 1:
            where.add(path + ("dims", dim), f"must be a positive integer, got {value}")
            bad = True
    for dim in ("M", "C") + (("P", "Q") if spec.op == "conv2d" else ()):
        if dim not in spec.dims:
            where.add(path + ("dims",), f"dimension {dim} is missing{path_note}")
            bad = True
    stride = _pair(spec.stride, where, path + ("stride",))
    dilation = _pair(spec.dilation, where, path + ("dilation",))
    if stride is None or dilation is None or bad:
        return None
    dims = {d: spec.dims.get(d, 1) for d in _CONV_DIMS}
    if spec.op != "conv2d" and (stride != (1, 1) or dilation != (1, 1) or spec.groups != 1):
        where.add(path + ("op",), f"{spec.op} takes no stride, dilation or groups")
        return None
    if dims["M"] % spec.groups or dims["C"] % spec.groups:
        where.add(path + ("groups",), f"groups = {spec.groups} must divide both C = {dims['C']} and M = {dims['M']}")
        return None
    p = spec.precision
    return ConvLayer(
        name=spec.name,
        op=spec.op, stride=stride, dilation=dilation, groups=spec.groups,
        precision=Precision(p.inputs, p.weights, p.outputs, p.psums), **dims,
    )


def _validate(schema: type[BaseModel], raw: Any, where: _Located, path: tuple, expected: str):
    """``raw`` checked against ``schema``; None (with issues recorded) if it fails."""
    if not isinstance(raw, dict):
        where.add(path, f"must be {expected}")
        return None
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        where.pydantic(exc, path)
        return None


def _size_bits(value: Any, where: _Located, path: tuple) -> int | None:
    try:
        return parse_bytes(value) * 8
    except ValueError as exc:
        where.add(path, str(exc))
        return None


def _build_buffer(raw: Any, where: _Located, path: tuple) -> tuple[Buffer, str, str] | None:
    name = ""
    if isinstance(raw, str):
        presets = hardware_presets()
        if raw not in presets:
            where.add(path, f"unknown hardware preset {raw!r}; known: {', '.join(presets)}")
            return None
        name, raw = raw, presets[raw]
    spec = _validate(HardwareSpec, raw, where, path, "a preset name or a mapping with levels")
    if spec is None:
        return None
    levels = spec.levels
    if len(levels) != 2:
        where.add(path + ("levels",), f"the tiling family models two levels (DRAM, then one on-chip buffer); got {len(levels)}")
        return None
    outer, inner = levels
    if outer.capacity is not None or outer.partition is not None:
        where.add(path + ("levels", 0, "capacity"), "the outermost level is off-chip memory and takes no capacity")
        return None
    ipath = path + ("levels", 1)
    partition = None
    if inner.partition is not None:
        partition = {}
        for tensor in TENSORS:
            bits = _size_bits(getattr(inner.partition, tensor), where, ipath + ("partition", tensor))
            if bits is None:
                return None
            partition[tensor] = bits
    if inner.capacity is None and partition is None:
        where.add(ipath, f"level {inner.name!r} needs a capacity (e.g. capacity: 64 KiB) or a partition")
        return None
    capacity = _size_bits(inner.capacity, where, ipath + ("capacity",)) if inner.capacity is not None else sum(partition.values())
    if capacity is None:
        return None
    if partition is not None and sum(partition.values()) > capacity:
        where.add(ipath + ("partition",), f"partitions add up to {sum(partition.values()) // 8} B, more than the capacity {capacity // 8} B")
        return None
    return Buffer(inner.name, capacity, partition), outer.name, name or spec.name


def load(path: str | Path):
    """Read and validate an instance file; raise InstanceError listing every
    problem.  Returns a TilingProblem, or a CrossbarInstance / PairingInstance
    (pim_instances.py) for the processing-in-memory families."""
    return load_text(_read_file(Path(path), str(path)), str(path), base=Path(path).parent)


def load_text(text: str, label: str = "<text>", base: Path | None = None):
    """Validate instance YAML ``text``; ``label`` names it in messages and
    ``base`` is where relative file names (weights) are looked up."""
    data, where = _read_yaml(text, label)
    if not isinstance(data, dict):
        raise InstanceError([Issue(label, 1, "(document)", "an instance is a mapping with family, workload and hardware")])
    family = data.get("family")
    if family is not None and family not in FAMILIES:
        where.add(("family",), f"unknown family {family!r}; this version solves: {', '.join(FAMILIES)}")
        raise InstanceError(where.issues)
    if family in ("crossbar", "pairing"):
        from . import pim_instances

        if family == "crossbar":
            instance = pim_instances.build_crossbar(data, where, label)
        else:
            instance = pim_instances.build_pairing(data, where, label, base or Path("."))
        if where.issues or instance is None:
            raise InstanceError(where.issues)
        return instance
    if family == "partition":
        from .partition_instances import build_partition

        instance = build_partition(data, where, label)
        if where.issues or instance is None:
            raise InstanceError(where.issues)
        return instance
    if family == "tiling":
        from . import multilevel_instances

        if multilevel_instances.is_multilevel(data):
            problem = multilevel_instances.build_multilevel(data, where, label)
            if where.issues or problem is None:
                raise InstanceError(where.issues)
            return problem
    spec = None
    try:
        spec = InstanceSpec.model_validate(data)
    except ValidationError as exc:
        where.pydantic(exc)
    # check the parts even when the top level failed, to report everything at once
    layer = _build_layer(data["workload"], where, ("workload",)) if data.get("workload") is not None else None
    hardware = _build_buffer(data["hardware"], where, ("hardware",)) if data.get("hardware") is not None else None
    if where.issues or spec is None or layer is None or hardware is None:
        raise InstanceError(where.issues)
    buffer, dram, hw_name = hardware
    return TilingProblem(
        layer=layer,
        buffer=buffer,
        dram_name=dram,
        objective=spec.objective,
        space=spec.space.tiles,
        solver=SolverSettings(spec.solver.method, spec.solver.time_limit, spec.solver.workers),
        source=label,
        hardware_name=hw_name,
    )


def line_of(path: str | Path, field: tuple) -> int:
    """Line of ``field`` in an instance file (1 if it cannot be located)."""
    try:
        _, where = _read_yaml(_read_file(Path(path), str(path)), str(path))
    except InstanceError:
        return 1
    return where.line(field)


def dump_instance(problem: TilingProblem) -> dict:
    """A self-contained instance (no preset names) that ``load_text`` reads
    back into an equal problem: results embed it so they can be re-verified."""
    layer = problem.layer
    p = layer.precision
    workload = {"name": layer.name, "op": layer.op}
    if layer.op == "conv2d":
        workload["dims"] = layer.dims()
        workload["stride"] = list(layer.stride)
        workload["dilation"] = list(layer.dilation)
        workload["groups"] = layer.groups
    else:
        workload["dims"] = {"N": layer.N, "M": layer.M, "C": layer.C}
    workload["precision"] = {"inputs": p.inputs, "weights": p.weights, "outputs": p.outputs, "psums": p.psums}
    level: dict[str, Any] = {"name": problem.buffer.name, "capacity": problem.buffer.capacity_bits // 8}
    if problem.buffer.partition_bits is not None:
        level["partition"] = {t: b // 8 for t, b in problem.buffer.partition_bits.items()}
    return {
        "family": "tiling",
        "workload": workload,
        "hardware": {"name": problem.hardware_name, "levels": [{"name": problem.dram_name}, level]},
        "objective": problem.objective,
        "space": {"tiles": problem.space},
        "solver": {"method": problem.solver.method, "time_limit": problem.solver.time_limit,
                   "workers": problem.solver.workers},
    }
