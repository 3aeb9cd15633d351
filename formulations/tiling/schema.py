"""The two-level tiling instance schema: a layer (``workload``), a buffer
(``hardware`` with DRAM and one on-chip level), the space and the solver.

The layer schema (:func:`build_layer`) is shared with tiling on a memory
hierarchy (``multilevel_schema.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictBool, TypeAdapter, ValidationError, field_validator, model_validator

from ... import workload_library
from ...units import article
from ...hardware.presets import hardware_presets
from ...instances import Located, Seconds, Strict, pair, resolve_preset, schema_problem, size_bits, validate_spec
from ...workload_onnx import is_onnx, onnx_layer
from .problem import Buffer, ConvLayer, Precision, SolverSettings, TilingProblem, TENSORS


class PrecisionSpec(Strict):
    inputs: int = Field(8, ge=1, le=32)
    weights: int = Field(8, ge=1, le=32)
    outputs: int = Field(8, ge=1, le=32)
    psums: int = Field(24, ge=1, le=64)


class WorkloadSpec(Strict):
    name: str = "layer"
    op: Literal["conv2d", "matmul", "fc"] = "conv2d"
    dims: dict[str, Any]
    """Checked one by one (:func:`build_layer`), so that every bad size is named at once."""
    stride: int | list[int] = 1
    dilation: int | list[int] = 1
    groups: int = Field(1, ge=1)
    precision: PrecisionSpec = PrecisionSpec()


class PartitionSpec(Strict):
    inputs: Any
    weights: Any
    outputs: Any


class LevelSpec(Strict):
    name: str
    capacity: Any = None
    partition: PartitionSpec | None = None


class HardwareSpec(Strict):
    name: str = ""
    source: str = ""
    levels: list[LevelSpec] = Field(min_length=1)


class SpaceSpec(Strict):
    tiles: Literal["divisors", "any"] = "divisors"
    factors: Literal["divisors", "any"] | None = None
    """The hierarchies' name for ``tiles``: either may be given, or both alike."""
    halo: StrictBool = False
    """Keep the input rows and columns consecutive tiles share (ZigZag's halo reuse)."""

    @model_validator(mode="after")
    def _factors_name_the_tiles(self) -> "SpaceSpec":
        if self.factors is not None:
            if "tiles" in self.model_fields_set and self.tiles != self.factors:
                raise ValueError(f"factors: {self.factors} and tiles: {self.tiles} disagree; give one of them")
            self.tiles = self.factors
        return self


class SolverSpec(Strict):
    method: Literal["cpsat", "milp", "enumerate"] = "cpsat"
    time_limit: Seconds = 60.0
    workers: int = Field(0, ge=0)


class InstanceSpec(Strict):
    family: Literal["tiling"]
    workload: Any
    hardware: Any
    objective: Literal["offchip_traffic"] = "offchip_traffic"
    space: SpaceSpec = SpaceSpec()
    solver: SolverSpec = SolverSpec()

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: Any) -> Any:
        """A name that is no objective is told every objective tiling has: the
        others (energy, latency, EDP, a list) send the instance to the
        hierarchy model, so only a misspelt or unknown name ends here."""
        from .multilevel.problem import MULTILEVEL_OBJECTIVES

        if value != "offchip_traffic":
            names = ", ".join(repr(o) for o in MULTILEVEL_OBJECTIVES)
            raise ValueError(f"must be one of {names}, or a list of them")
        return value

    @field_validator("workload", "hardware")
    @classmethod
    def _present(cls, value):
        if value is None:
            raise ValueError("must be a preset name or a mapping")
        return value



MAX_DIM = 2**20
"""Largest extent of one dimension (1,048,576): beyond every real layer, and
small enough that divisor tables, footprints and the functional model's
guards stay within a machine's memory."""
MAX_DIM_ANY = 2**16
"""Largest extent with ``space: {tiles: any}``, where every tile size is listed."""
MAX_WINDOW = 1024
"""Largest stride, dilation and filter extent."""
MAX_MACS = 2**50
"""Most MACs of one layer (about 10^15, a thousand times GPT-3's largest
matmul at batch 1): the exact models' coefficients are products of the
dimensions and must stay exact in 64-bit integers and doubles."""
MAX_TENSOR = 2**40
"""Most elements of one tensor (inputs, weights or outputs)."""

_CONV_DIMS = ("N", "M", "C", "P", "Q", "R", "S")
_SIZE = TypeAdapter(int)
"""A dimension's size, read as pydantic reads an int field (``8``, ``8.0``, ``"8"``)."""
_MATMUL_DIMS = ("N", "M", "C")


def build_layer(raw: Any, where: Located, path: tuple) -> ConvLayer | None:
    if isinstance(raw, str):
        try:
            raw = workload_library.layer(raw)
        except KeyError as exc:
            where.add(path, exc.args[0] if exc.args else str(exc))
            return None
        if raw.get("op") not in workload_library.COMPUTE_OPS:
            where.add(path, f"{raw['name']} is {article(raw.get('op'))} layer without weights; the tiling family maps "
                            f"{', '.join(workload_library.COMPUTE_OPS)} layers")
            return None
        raw.pop("inputs", None)  # graph edges matter to the partition family, not to one layer
        path_note = f" (from preset {raw['name']})"
    else:
        path_note = ""
    spec = validate_spec(WorkloadSpec, raw, where, path, "a layer name such as vgg16.conv3_2 or a mapping with op and dims")
    if spec is None:
        return None
    allowed = _CONV_DIMS if spec.op == "conv2d" else _MATMUL_DIMS
    bad = False
    sizes: dict[str, int] = {}
    for dim, given in spec.dims.items():
        message = None
        if isinstance(given, bool):  # YAML's true / yes, which an int field would read as 1
            message = f"must be a positive integer, got {given!r}"
        else:
            try:
                value = _SIZE.validate_python(given)
            except ValidationError as exc:
                message = schema_problem(exc.errors()[0])[1]
        if message is not None:
            where.add(path + ("dims", dim), message)
            bad = True
            continue
        sizes[dim] = value
        if dim not in allowed:
            hint = "" if spec.op == "conv2d" else " (a matmul / fc layer has N, M and C)"
            where.add(path + ("dims", dim), f"unknown dimension; expected one of {', '.join(allowed)}{hint}")
            bad = True
        elif value < 1:
            where.add(path + ("dims", dim), f"must be a positive integer, got {value}")
            bad = True
        elif value > (MAX_WINDOW if dim in "RS" else MAX_DIM):
            limit = MAX_WINDOW if dim in "RS" else MAX_DIM
            where.add(path + ("dims", dim), f"{value:,} is beyond the supported range (1 to {limit:,})")
            bad = True
    for dim in ("M", "C") + (("P", "Q") if spec.op == "conv2d" else ()):
        if dim not in spec.dims:
            where.add(path + ("dims",), f"dimension {dim} is missing{path_note}")
            bad = True
    stride = pair(spec.stride, where, path + ("stride",))
    dilation = pair(spec.dilation, where, path + ("dilation",))
    if stride is None or dilation is None or bad:
        return None
    for name, value in (("stride", stride), ("dilation", dilation)):
        if max(value) > MAX_WINDOW:
            where.add(path + (name,), f"{max(value):,} is beyond the supported range (1 to {MAX_WINDOW:,})")
            return None
    dims = {d: sizes.get(d, 1) for d in _CONV_DIMS}
    if spec.op != "conv2d" and (stride != (1, 1) or dilation != (1, 1) or spec.groups != 1):
        where.add(path + ("op",), f"{spec.op} takes no stride, dilation or groups")
        return None
    if dims["M"] % spec.groups or dims["C"] % spec.groups:
        where.add(path + ("groups",), f"groups = {spec.groups} must divide both C = {dims['C']} and M = {dims['M']}")
        return None
    macs = dims["N"] * dims["M"] * (dims["C"] // spec.groups) * dims["P"] * dims["Q"] * dims["R"] * dims["S"]
    height = (dims["P"] - 1) * stride[0] + (dims["R"] - 1) * dilation[0] + 1
    width = (dims["Q"] - 1) * stride[1] + (dims["S"] - 1) * dilation[1] + 1
    tensors = {"inputs": dims["N"] * dims["C"] * height * width,
               "weights": dims["M"] * (dims["C"] // spec.groups) * dims["R"] * dims["S"],
               "outputs": dims["N"] * dims["M"] * dims["P"] * dims["Q"]}
    if macs > MAX_MACS:
        where.add(path + ("dims",), f"{macs:,} MACs is beyond the supported range (up to {MAX_MACS:,} per layer)")
        return None
    for tensor, count in tensors.items():
        if count > MAX_TENSOR:
            where.add(path + ("dims",), f"the {tensor} hold {count:,} elements, beyond the supported range "
                                        f"(up to {MAX_TENSOR:,} per tensor)")
            return None
    p = spec.precision
    return ConvLayer(
        name=spec.name,
        op=spec.op, stride=stride, dilation=dilation, groups=spec.groups,
        precision=Precision(p.inputs, p.weights, p.outputs, p.psums), **dims,
    )


def build_buffer(raw: Any, where: Located, path: tuple) -> tuple[Buffer, str, str] | None:
    found = resolve_preset(raw, hardware_presets(), where, path, "hardware")
    if found is None:
        return None
    name, raw = found
    spec = validate_spec(HardwareSpec, raw, where, path, "a preset name or a mapping with levels")
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
            bits = size_bits(getattr(inner.partition, tensor), where, ipath + ("partition", tensor))
            if bits is None:
                return None
            partition[tensor] = bits
    if inner.capacity is None and partition is None:
        where.add(ipath, f"level {inner.name!r} needs a capacity (e.g. capacity: 64 KiB) or a partition")
        return None
    capacity = size_bits(inner.capacity, where, ipath + ("capacity",)) if inner.capacity is not None else sum(partition.values())
    if capacity is None:
        return None
    if partition is not None and sum(partition.values()) > capacity:
        where.add(ipath + ("partition",), f"level {inner.name}: its partitions add up to {sum(partition.values()) // 8:,} B, "
                                                  f"more than its capacity of {capacity // 8:,} B")
        return None
    return Buffer(inner.name, capacity, partition), outer.name, name or spec.name


def build_two_level(data: dict, where: Located, label: str, base: Path = Path(".")) -> TilingProblem | None:
    """The two-level problem of an instance document, or None with issues on
    ``where`` (``base``: the instance's folder, where an ONNX model is looked up)."""
    from pydantic import ValidationError

    spec = None
    try:
        spec = InstanceSpec.model_validate(data)
    except ValidationError as exc:
        where.pydantic(exc, (), InstanceSpec)
    # check the parts even when the top level failed, to report everything at once
    workload = data.get("workload")
    if is_onnx(workload):
        workload = onnx_layer(workload, where, ("workload",), base)
    layer = build_layer(workload, where, ("workload",)) if workload is not None else None
    hardware = build_buffer(data["hardware"], where, ("hardware",)) if data.get("hardware") is not None else None
    if where.issues or spec is None or layer is None or hardware is None:
        return None
    if spec.space.tiles == "any":
        for dim, value in layer.dims().items():
            if value > MAX_DIM_ANY:
                where.add(("workload",), f"dimension {dim} = {value:,} is beyond the range of space "
                                         f"{{tiles: any}} (1 to {MAX_DIM_ANY:,}); use tiles: divisors")
                return None
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
        halo=spec.space.halo,
    )


def dump_two_level(problem: TilingProblem) -> dict:
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
        "space": {"tiles": problem.space, **({"halo": True} if problem.halo else {})},
        "solver": {"method": problem.solver.method, "time_limit": problem.solver.time_limit,
                   "workers": problem.solver.workers},
    }
