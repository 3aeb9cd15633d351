"""YAML -> multi-level tiling problems (a memory hierarchy with a PE array).

A tiling instance is multi-level when its hardware names a hierarchy
preset (``eyeriss``, ``simba-pe``, ``chen2020-3level``), or lists more than
two levels, an ``array``, or per-level ``holds``, ``per_pe``, energies or
bandwidths, or when its objective is energy, latency or edp.  The
two-level instances of the foundation keep loading as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from .... import workload_library
from .constraints import LevelConstraint, MappingConstraints, SpatialConstraint
from .problem import MultiLevelProblem
from ..problem import SolverSettings
from ....hardware.hierarchy import TENSORS, Hierarchy, MemoryLevel, hierarchy_presets
from ....instances import Located, Strict, resolve_preset, size_bits, validate_spec
from ..schema import SolverSpec, SpaceSpec, build_layer

MULTILEVEL_KEYS = {"holds", "per_pe", "read_energy", "write_energy", "bandwidth"}


class PartitionBytes(Strict):
    inputs: int | str | None = None
    weights: int | str | None = None
    outputs: int | str | None = None


class MemoryLevelSpec(Strict):
    name: str
    capacity: int | str | None = None
    partition: PartitionBytes | None = None
    holds: list[Literal["inputs", "weights", "outputs"]] = list(TENSORS)
    per_pe: bool = False
    read_energy: float = Field(0.0, ge=0)
    write_energy: float | None = Field(None, ge=0)
    bandwidth: float | None = Field(None, gt=0)


class ArraySpec(Strict):
    rows: int = Field(1, ge=1)
    cols: int = Field(1, ge=1)


class HierarchySpec(Strict):
    name: str = ""
    source: str = ""
    energy_unit: str = "pJ"
    mac_energy: float = Field(0.0, ge=0)
    array: ArraySpec = ArraySpec()
    levels: list[MemoryLevelSpec] = Field(min_length=2)


Dim = Literal["N", "M", "C", "P", "Q", "R", "S"]


class LevelConstraintSpec(Strict):
    factors: dict[Dim, int] = Field(default_factory=dict)
    whole: list[Dim] = Field(default_factory=list)

    @field_validator("factors")
    @classmethod
    def _positive(cls, factors: dict) -> dict:
        for dim, value in factors.items():
            if value < 1 or value > 1 << 20:
                raise ValueError(f"factor of {dim} must be between 1 and 2^20, got {value}")
        return factors


class SpatialConstraintSpec(Strict):
    rows: list[Dim] | None = None
    cols: list[Dim] | None = None
    row_factors: dict[Dim, int] = Field(default_factory=dict)
    col_factors: dict[Dim, int] = Field(default_factory=dict)
    min_utilization: float = Field(0.0, ge=0, le=1)

    @field_validator("row_factors", "col_factors")
    @classmethod
    def _positive(cls, factors: dict) -> dict:
        return LevelConstraintSpec._positive(factors)


class ConstraintsSpec(Strict):
    levels: dict[str, LevelConstraintSpec] = Field(default_factory=dict)
    spatial: SpatialConstraintSpec = SpatialConstraintSpec()


class MultiLevelSpec(Strict):
    family: Literal["tiling"]
    workload: Any
    hardware: Any
    objective: Literal["offchip_traffic", "energy", "latency", "edp"] = "energy"
    constraints: ConstraintsSpec = ConstraintsSpec()
    space: SpaceSpec = SpaceSpec()
    solver: SolverSpec = SolverSpec()


def build_constraints(spec: ConstraintsSpec, hierarchy: Hierarchy, where: Located) -> MappingConstraints:
    """The instance's mapping constraints, levels by index (unknown level names are problems on ``where``)."""
    names = [level.name for level in hierarchy.levels]
    levels = []
    for name, level in spec.levels.items():
        if name not in names:
            where.add(("constraints", "levels", name), f"no level named {name!r}; the levels are {', '.join(names)}")
            continue
        index = names.index(name)
        if index == 0 and any(level.factors.get(d, 1) > 1 for d in ("R", "S")):
            where.add(("constraints", "levels", name, "factors"), f"{name} never splits the filter window (R, S)")
        levels.append((index, LevelConstraint(factors=tuple(sorted(level.factors.items())),
                                              whole=tuple(sorted(set(level.whole))))))
    s = spec.spatial
    spatial = SpatialConstraint(rows=None if s.rows is None else tuple(sorted(set(s.rows))),
                                cols=None if s.cols is None else tuple(sorted(set(s.cols))),
                                row_factors=tuple(sorted(s.row_factors.items())),
                                col_factors=tuple(sorted(s.col_factors.items())),
                                min_utilization=s.min_utilization)
    return MappingConstraints(levels=tuple(sorted(levels)), spatial=spatial)


def is_multilevel(data: dict) -> bool:
    """Whether a tiling instance needs the multi-level model."""
    if data.get("objective") in ("energy", "latency", "edp") or "constraints" in data:
        return True
    hardware = data.get("hardware")
    if isinstance(hardware, str):
        return hardware in hierarchy_presets()
    if not isinstance(hardware, dict):
        return False
    levels = hardware.get("levels") or []
    if "array" in hardware or "mac_energy" in hardware or len(levels) > 2:
        return True
    return any(isinstance(level, dict) and MULTILEVEL_KEYS & set(level) for level in levels)


def build_hierarchy(raw: Any, where: Located, path: tuple) -> Hierarchy | None:
    found = resolve_preset(raw, hierarchy_presets(), where, path, "hierarchy")
    if found is None:
        return None
    name, raw = found
    spec = validate_spec(HierarchySpec, raw, where, path, "a preset name or a mapping with levels")
    if spec is None:
        return None
    levels = []
    for i, level in enumerate(spec.levels):
        lpath = path + ("levels", i)
        capacity = None if level.capacity is None else size_bits(level.capacity, where, lpath + ("capacity",))
        partition = None
        if level.partition is not None:
            partition = {}
            for tensor in TENSORS:
                value = getattr(level.partition, tensor)
                if value is not None:
                    partition[tensor] = size_bits(value, where, lpath + ("partition", tensor))
        levels.append(MemoryLevel(
            name=level.name, capacity_bits=capacity, partition_bits=partition, holds=frozenset(level.holds),
            per_pe=level.per_pe, read_energy=level.read_energy,
            write_energy=level.read_energy if level.write_energy is None else level.write_energy,
            bandwidth=level.bandwidth,
        ))
    if where.issues:
        return None
    try:
        return Hierarchy(name=name or spec.name or "hierarchy", levels=tuple(levels), rows=spec.array.rows,
                         cols=spec.array.cols, mac_energy=spec.mac_energy, energy_unit=spec.energy_unit,
                         source=" ".join(spec.source.split()))
    except ValueError as exc:
        for sentence in str(exc).split("; "):
            where.add(path + ("levels",), sentence)
        return None


@dataclass(frozen=True)
class NetworkLayer:
    """One distinct layer shape of a network and the layers that share it."""

    problem: MultiLevelProblem
    names: tuple[str, ...]


@dataclass(frozen=True)
class MultiLevelNetwork:
    """A whole network on one hierarchy: each distinct layer is solved once."""

    network: str
    layers: tuple[NetworkLayer, ...]
    source: str


def _network_layers(network: str, hierarchy: Hierarchy, spec: "MultiLevelSpec", where: Located,
                    label: str) -> MultiLevelNetwork | None:
    groups: dict[tuple, list] = {}
    for name in workload_library.compute_layers(network):
        layer = build_layer(f"{network}.{name}", where, ("workload",))
        if layer is None:
            return None
        key = (layer.N, layer.M, layer.C, layer.P, layer.Q, layer.R, layer.S, layer.stride, layer.dilation,
               layer.groups, layer.op)
        groups.setdefault(key, [layer, []])[1].append(layer.name)
    solver = SolverSettings(spec.solver.method, spec.solver.time_limit, spec.solver.workers)
    constraints = build_constraints(spec.constraints, hierarchy, where)
    if where.issues:
        return None
    layers = tuple(NetworkLayer(MultiLevelProblem(layer, hierarchy, spec.objective, solver, label, constraints),
                                tuple(names))
                   for layer, names in groups.values())
    return MultiLevelNetwork(network, layers, label)


def build_multilevel(data: dict, where: Located, label: str) -> MultiLevelProblem | MultiLevelNetwork | None:
    spec = validate_spec(MultiLevelSpec, data, where, (), "an instance mapping")
    workload = data.get("workload")
    if isinstance(workload, str) and workload in workload_library.networks():
        hierarchy = build_hierarchy(data["hardware"], where, ("hardware",)) if data.get("hardware") is not None else None
        if where.issues or spec is None or hierarchy is None:
            return None
        return _network_layers(workload, hierarchy, spec, where, label)
    layer = build_layer(data["workload"], where, ("workload",)) if data.get("workload") is not None else None
    hierarchy = build_hierarchy(data["hardware"], where, ("hardware",)) if data.get("hardware") is not None else None
    if spec is not None and spec.space.tiles != "divisors":
        where.add(("space", "tiles"), "a multi-level hierarchy is solved over divisor tiles only")
    if where.issues or spec is None or layer is None or hierarchy is None:
        return None
    constraints = build_constraints(spec.constraints, hierarchy, where)
    if where.issues:
        return None
    return MultiLevelProblem(
        layer=layer, hierarchy=hierarchy, objective=spec.objective,
        solver=SolverSettings(spec.solver.method, spec.solver.time_limit, spec.solver.workers), source=label,
        constraints=constraints,
    )
