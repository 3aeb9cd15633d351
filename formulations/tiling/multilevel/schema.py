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

from pydantic import Field

from .... import workload_library
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


class MultiLevelSpec(Strict):
    family: Literal["tiling"]
    workload: Any
    hardware: Any
    objective: Literal["offchip_traffic", "energy", "latency", "edp"] = "energy"
    space: SpaceSpec = SpaceSpec()
    solver: SolverSpec = SolverSpec()


def is_multilevel(data: dict) -> bool:
    """Whether a tiling instance needs the multi-level model."""
    if data.get("objective") in ("energy", "latency", "edp"):
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
    layers = tuple(NetworkLayer(MultiLevelProblem(layer, hierarchy, spec.objective, solver, label), tuple(names))
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
    return MultiLevelProblem(
        layer=layer, hierarchy=hierarchy, objective=spec.objective,
        solver=SolverSettings(spec.solver.method, spec.solver.time_limit, spec.solver.workers), source=label,
    )
