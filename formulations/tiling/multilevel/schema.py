"""YAML -> multi-level tiling problems (a memory hierarchy with a PE array).

A tiling instance is multi-level when its hardware names a hierarchy
preset (``eyeriss``, ``simba-pe``, ``chen2020-3level``), or lists more than
two levels, an ``array``, or per-level ``holds``, ``per_pe``, energies or
bandwidths, or when its objective is energy, latency or edp, or when its
workload is a whole network (a network of workloads/, ``{onnx:
model.onnx}`` or ``{name, layers}`` in the format of workloads/), which
this model tiles layer by layer, on two levels as on more.  The two-level
instances of the foundation keep loading as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator

from .... import workload_library
from ....workload_onnx import is_onnx, onnx_layer, onnx_workload
from .constraints import LevelConstraint, MappingConstraints, SpatialConstraint
from .problem import MULTILEVEL_OBJECTIVES, MultiLevelProblem
from .space import any_space_refusal
from ..problem import SolverSettings
from ....hardware.presets import hardware_presets
from ....hardware.hierarchy import (TENSORS, Hierarchy, MemoryLevel, fanouts_from, hierarchy_presets, level_holdings,
                                   private_below)
from ....instances import Located, Strict, resolve_preset, size_bits, validate_spec
from ..schema import SolverSpec, build_layer

MULTILEVEL_KEYS = {"holds", "keep", "bypass", "per_pe", "read_energy", "write_energy", "bandwidth"}


class PartitionBytes(Strict):
    inputs: Any = None
    weights: Any = None
    outputs: Any = None


MAX_ENERGY = 1e9
"""Largest energy of one access or MAC, in the instance's unit: the exact
models count energy in 64-bit integers, so energies must be finite and
leave room for the access counts of large layers (a DRAM access in
femtojoules is about 1e7)."""


class MemoryLevelSpec(Strict):
    name: str
    capacity: Any = None
    partition: PartitionBytes | None = None
    holds: list[Literal["inputs", "weights", "outputs"]] | None = None
    keep: list[Literal["inputs", "weights", "outputs"]] | None = None
    bypass: list[Literal["inputs", "weights", "outputs"]] | None = None
    per_pe: StrictBool | None = None
    read_energy: float = Field(0.0, ge=0, le=MAX_ENERGY)
    write_energy: float | None = Field(None, ge=0, le=MAX_ENERGY)
    bandwidth: float | None = Field(None, gt=0)


class ArraySpec(Strict):
    rows: int = Field(1, ge=1, le=1 << 16)
    cols: int = Field(1, ge=1, le=1 << 16)


class FanoutSpec(Strict):
    """A spatial fan-out: ``above`` names the level (or ``MACs``) whose
    instances it spreads; x is Timeloop's meshX (columns), y its meshY (rows)."""

    name: str
    above: str
    x: int = Field(1, ge=1, le=1 << 16)
    y: int = Field(1, ge=1, le=1 << 16)
    multicast: StrictBool = True
    reduction: StrictBool = True


Dim = Literal["N", "G", "M", "C", "P", "Q", "R", "S"]


class LevelConstraintSpec(Strict):
    factors: dict[Dim, int] = Field(default_factory=dict)
    whole: list[Dim] = Field(default_factory=list)
    order: list[Dim] = Field(default_factory=list)
    """The level's innermost loops, outermost first (as a mapping lists its
    order); the other loops lie outside them in any order. All eight fix
    the level's order. Timeloop's ``permutation`` lists the innermost
    first: its ``SRC`` is ``order: [C, R, S]``."""

    @field_validator("order", mode="before")
    @classmethod
    def _a_list(cls, order: Any) -> Any:
        if isinstance(order, str):
            listed = ", ".join(ch for ch in order if ch.isalpha())  # dimensions are single letters
            raise ValueError(f"order is a list of dimensions, outermost first: [{listed}] (a Timeloop permutation "
                             "string lists the innermost first; reverse it)")
        return order

    @field_validator("order")
    @classmethod
    def _distinct(cls, order: list) -> list:
        if len(set(order)) != len(order):
            raise ValueError(f"order must name each dimension at most once, got {order}")
        return order

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
    one_axis: StrictBool = False
    """Each dimension on the rows or on the columns, not both, as a Timeloop
    spatial mapping writes it (one factor and one axis per dimension)."""

    @field_validator("row_factors", "col_factors")
    @classmethod
    def _positive(cls, factors: dict) -> dict:
        return LevelConstraintSpec._positive(factors)


class ConstraintsSpec(Strict):
    levels: dict[str, LevelConstraintSpec] = Field(default_factory=dict)
    spatial: SpatialConstraintSpec = SpatialConstraintSpec()
    """The constraints of the only fan-out (the PE array)."""
    fanouts: dict[str, SpatialConstraintSpec] = Field(default_factory=dict)
    """The constraints of each fan-out, by name."""


class HierarchySpec(Strict):
    name: str = ""
    source: str = ""
    energy_unit: str = "pJ"
    mac_energy: float = Field(0.0, ge=0, le=MAX_ENERGY)
    latches: StrictBool = True
    """Whether each MAC unit keeps its last operand of each tensor and its
    partial sum, reading (draining to) a level only when one changes.
    ``false``: every MAC reads its input and weight from the innermost level
    that keeps them and reads and updates its partial sum there, as Timeloop
    counts; the Timeloop import sets it."""
    array: ArraySpec | None = None
    fanouts: list[FanoutSpec] = Field(default_factory=list)
    """Any number of fan-outs between levels, outermost first (instead of ``array``)."""
    levels: list[MemoryLevelSpec] = Field(min_length=2)
    constraints: ConstraintsSpec = ConstraintsSpec()
    """The hardware's own mapping constraints (Timeloop's architecture
    constraints); every instance on this hardware obeys them too."""


class HierarchySpaceSpec(Strict):
    """The mapping space of a hierarchy: which choices the solver makes."""

    factors: Literal["divisors", "any"] | None = None
    """``divisors``: every dimension's factors multiply to its extent; ``any``:
    to at least it, with one partial tile per dimension (``clipping.py``)."""
    tiles: Literal["divisors", "any"] | None = None
    """The two-level family's name for ``factors``."""
    halo: StrictBool = False
    """Halo reuse: an input tile that the innermost input loop above its
    level moves one step keeps the rows (columns) it shares with the
    previous tile and reads only the new ones (ZigZag's input reuse)."""
    bypass: Literal["chosen", "fixed"] = "chosen"
    """``chosen``: every level without ``holds`` keeps or bypasses each tensor
    as the mapping decides; ``fixed``: such levels keep every tensor they can."""


Objective = Literal["offchip_traffic", "energy", "latency", "edp"]


class MultiLevelSpec(Strict):
    family: Literal["tiling"]
    workload: Any
    hardware: Any
    objective: Objective | list[Objective] = "energy"
    """One objective, or a list: the first minimized, then each of the others
    among the optima of the ones before it."""
    constraints: ConstraintsSpec = ConstraintsSpec()
    space: HierarchySpaceSpec = HierarchySpaceSpec()
    solver: SolverSpec = SolverSpec()

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: Any) -> Any:
        """One line for a name that is not an objective, alone or in a list."""
        names = ", ".join(repr(o) for o in MULTILEVEL_OBJECTIVES)
        if not isinstance(value, list) and value not in MULTILEVEL_OBJECTIVES:
            raise ValueError(f"must be one of {names}, or a list of them")
        for item in value if isinstance(value, list) else ():
            if item not in MULTILEVEL_OBJECTIVES:
                raise ValueError(f"{item!r} is not one of {names}")
        return value

    @property
    def objectives(self) -> tuple[str, ...]:
        """The objectives in order: the primary first."""
        return tuple(self.objective) if isinstance(self.objective, list) else (self.objective,)


def objective_problems(objectives: tuple[str, ...], where: Located) -> None:
    """A list of objectives names each once, at least one, and ``edp`` only
    first: the objectives after the first are minimized by CP-SAT, which
    has no model of EDP."""
    if not objectives:
        where.add(("objective",), "lists no objective; give one, or several with the primary first")
    seen = set()
    for i, name in enumerate(objectives):
        if name in seen:
            where.add(("objective", i), f"{name} is listed twice; each objective is minimized once")
        elif name == "edp" and i > 0:
            where.add(("objective", i), "edp can only come first: the objectives after the first are minimized "
                                        "by CP-SAT, which has no model of EDP")
        seen.add(name)


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
                                              whole=tuple(sorted(set(level.whole))), order=tuple(level.order))))
    fanout_names = [fan.name for fan in hierarchy.fanouts]
    fanouts = []
    for name, s in _fanout_constraints(spec, hierarchy, where).items():
        if name not in fanout_names:
            where.add(("constraints", "fanouts", name),
                      f"no fan-out named {name!r}; the fan-outs are {', '.join(fanout_names)}")
            continue
        fanouts.append((fanout_names.index(name), SpatialConstraint(
            rows=None if s.rows is None else tuple(sorted(set(s.rows))),
            cols=None if s.cols is None else tuple(sorted(set(s.cols))),
            row_factors=tuple(sorted(s.row_factors.items())), col_factors=tuple(sorted(s.col_factors.items())),
            min_utilization=s.min_utilization, one_axis=s.one_axis)))
    return MappingConstraints(levels=tuple(sorted(levels)), fanouts=tuple(sorted(fanouts)))


def _fanout_constraints(spec: ConstraintsSpec, hierarchy: Hierarchy, where: Located) -> dict:
    """Per fan-out name, its constraints: ``spatial`` speaks for the only fan-out."""
    out = dict(spec.fanouts)
    if spec.spatial != SpatialConstraintSpec():
        if len(hierarchy.fanouts) != 1:
            names = ", ".join(fan.name for fan in hierarchy.fanouts)
            where.add(("constraints", "spatial"), f"the hardware has several fan-outs ({names}); "
                                                  "give their constraints under constraints.fanouts.NAME")
        else:
            out[hierarchy.fanouts[0].name] = spec.spatial
    return out


def merge_constraints(hardware: ConstraintsSpec, instance: ConstraintsSpec, hierarchy: Hierarchy,
                      where: Located) -> ConstraintsSpec:
    """Both constraint sets at once: the hardware's (its description's
    ``constraints``) and the instance's. Allowed dimensions intersect, fixed
    factors and whole dimensions add up, the larger utilization wins; a
    factor fixed to two different values is a problem placed on the instance.
    The result names every fan-out (``spatial`` becomes the only fan-out's entry)."""
    levels = {name: level.model_copy(deep=True) for name, level in hardware.levels.items()}
    for name, level in instance.levels.items():
        if name not in levels:
            levels[name] = level
            continue
        merged = levels[name]
        for dim, value in level.factors.items():
            if merged.factors.get(dim, value) != value:
                where.add(("constraints", "levels", name, "factors", dim),
                          f"the hardware fixes {dim} = {merged.factors[dim]} at {name}")
            merged.factors[dim] = value
        merged.whole = sorted(set(merged.whole) | set(level.whole))
        # both name the innermost loops, outermost first: one that ends the other refines it
        longer, shorter = sorted((list(level.order), list(merged.order)), key=len, reverse=True)
        if shorter and longer[len(longer) - len(shorter):] != shorter:
            where.add(("constraints", "levels", name, "order"),
                      f"the hardware fixes the innermost loops at {name} to {merged.order} (outermost first)")
        merged.order = longer
    ours = _fanout_constraints(instance, hierarchy, where)
    theirs = _fanout_constraints(hardware, hierarchy, where)
    fanouts = {name: _merge_spatial(theirs.get(name, SpatialConstraintSpec()), ours.get(name, SpatialConstraintSpec()),
                                    where, ("constraints", "fanouts", name))
               for name in sorted(set(ours) | set(theirs))}
    return ConstraintsSpec(levels=levels, fanouts=fanouts)


def _merge_spatial(hw: SpatialConstraintSpec, own: SpatialConstraintSpec, where: Located,
                   path: tuple) -> SpatialConstraintSpec:
    """One fan-out's constraints from the hardware's and the instance's."""
    merged = SpatialConstraintSpec(
        rows=own.rows if hw.rows is None else hw.rows if own.rows is None else [d for d in hw.rows if d in own.rows],
        cols=own.cols if hw.cols is None else hw.cols if own.cols is None else [d for d in hw.cols if d in own.cols],
        row_factors={**hw.row_factors, **own.row_factors}, col_factors={**hw.col_factors, **own.col_factors},
        min_utilization=max(hw.min_utilization, own.min_utilization), one_axis=hw.one_axis or own.one_axis)
    for axis, theirs, mine in (("row_factors", hw.row_factors, own.row_factors),
                               ("col_factors", hw.col_factors, own.col_factors)):
        for dim, value in mine.items():
            if theirs.get(dim, value) != value:
                where.add(path + (axis, dim), f"the hardware fixes {dim} = {theirs[dim]} there")
    return merged


def preset_constraints(name: str, hierarchy: Hierarchy) -> MappingConstraints:
    """The mapping constraints a hierarchy preset carries (what an instance
    naming the preset obeys), for programs that build problems directly."""
    where = Located(f"preset {name}")
    raw = hierarchy_presets()[name].get("constraints") or {}
    spec = validate_spec(ConstraintsSpec, raw, where, ("constraints",), "constraints")
    constraints = None if spec is None else build_constraints(spec, hierarchy, where)
    if where.issues or constraints is None:
        raise ValueError(f"preset {name}: its constraints are invalid")
    return constraints


def is_network(workload: Any) -> bool:
    """Whether a tiling ``workload`` is a whole network rather than one layer."""
    if isinstance(workload, str):
        return workload in workload_library.networks()
    if is_onnx(workload):
        return not (isinstance(workload, dict) and "layer" in workload)  # {onnx: m.onnx, layer: conv1}: one layer
    return isinstance(workload, dict) and "layers" in workload


def is_multilevel(data: dict) -> bool:
    """Whether a tiling instance needs the multi-level model."""
    objective = data.get("objective")
    if objective in ("energy", "latency", "edp") or isinstance(objective, list) or "constraints" in data:
        return True
    if is_network(data.get("workload")):
        return True
    hardware = data.get("hardware")
    if isinstance(hardware, str):
        return hardware in hierarchy_presets()
    if not isinstance(hardware, dict):
        return False
    levels = hardware.get("levels") or []
    if any(key in hardware for key in ("array", "fanouts", "mac_energy", "latches")) or len(levels) > 2:
        return True
    return any(isinstance(level, dict) and (MULTILEVEL_KEYS & set(level) or _partial_partition(level))
               for level in levels)


def _layer_alone_is_two_level(data: dict) -> bool:
    """Whether one layer of this network instance would be solved by the
    two-level model, which keeps every tensor in its buffer. The network's
    layers are then solved with every tensor kept as well (unless ``space:
    {bypass: chosen}`` says otherwise), so that a layer has one optimum
    whether it is solved alone or in its network."""
    return "bypass" not in (data.get("space") or {}) and not is_multilevel({**data, "workload": None})


def _partial_partition(level: dict) -> bool:
    """Whether a level's ``partition`` leaves out a tensor: that tensor
    bypasses the level, which only the multi-level model represents (the
    two-level model keeps every tensor in its buffer), so both families
    read a partial partition the same way."""
    partition = level.get("partition")
    return isinstance(partition, dict) and not {"inputs", "weights", "outputs"} <= set(partition)


def build_hierarchy(raw: Any, where: Located, path: tuple) -> tuple[Hierarchy, ConstraintsSpec] | None:
    """The hierarchy and the mapping constraints its hardware description carries."""
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
                elif tensor in level.partition.model_fields_set:  # `outputs:` with nothing after it
                    where.add(lpath + ("partition", tensor), f"has no size; give one (e.g. 1 KiB), or leave "
                                                             f"{tensor} out of the partition if {level.name} "
                                                             "has no room for it")
        if partition is not None and not partition:
            where.add(lpath + ("partition",), f"level {level.name}: its partition lists no tensor; give a size to each "
                                              "tensor the level may keep (inputs, weights, outputs), or a capacity")
            continue
        if partition is not None and level.holds is not None and set(level.holds) - set(partition):
            missing = [t for t in TENSORS if t in set(level.holds) - set(partition)]
            where.add(lpath + ("partition",), f"level {level.name} holds {', '.join(missing)} but its partition "
                                              "gives no room for it; add a size for it to the partition")
            continue
        if partition is not None and level.holds is not None and set(partition) - set(level.holds):
            extra = sorted(set(partition) - set(level.holds))
            where.add(lpath + ("partition",), f"level {level.name} has a partition for {', '.join(extra)}, which its "
                                              f"'holds' ({', '.join(level.holds) or 'nothing'}) leaves out; remove "
                                              "the part or add the tensor to 'holds'")
            continue
        try:
            holds, chosen = level_holdings(i, level.holds, level.keep, level.bypass, partition)
        except ValueError as exc:
            where.add(lpath, f"level {level.name}: {exc}")
            continue
        levels.append(MemoryLevel(
            name=level.name, capacity_bits=capacity, partition_bits=partition, holds=holds, chosen=chosen,
            per_pe=bool(level.per_pe), read_energy=level.read_energy,
            write_energy=level.read_energy if level.write_energy is None else level.write_energy,
            bandwidth=level.bandwidth,
        ))
    if where.issues:
        return None
    array = spec.array or ArraySpec()
    try:
        fanouts = fanouts_from([f.model_dump() for f in spec.fanouts], [level.name for level in levels])
    except ValueError as exc:
        where.add(path + ("fanouts",), str(exc))
        return None
    if "fanouts" in spec.model_fields_set and not fanouts:
        where.add(path + ("fanouts",), "lists no fan-out; give at least one, or leave 'fanouts' out")
        return None
    if fanouts:
        if spec.array is not None:
            where.add(path + ("array",), "give either 'array' (one fan-out above the per_pe levels) or 'fanouts'")
            return None
        for index, level in enumerate(spec.levels):
            if level.per_pe is False and index >= fanouts[0].level:
                where.add(path + ("levels", index, "per_pe"), f"level {level.name} lies below fan-out "
                                                              f"{fanouts[0].name}, so it is per-PE")
                return None
        levels = private_below(levels, fanouts)
    try:
        hierarchy = Hierarchy(name=name or spec.name or "hierarchy", levels=tuple(levels), rows=array.rows,
                              cols=array.cols, mac_energy=spec.mac_energy, energy_unit=spec.energy_unit,
                              source=" ".join(spec.source.split()), fanouts=fanouts, latches=spec.latches)
        return hierarchy, spec.constraints
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
    workload: Any = field(default=None, hash=False)
    """The ``workload`` an instance writes back: the network's name, or its
    layers inline (an ONNX model, an inline network) so that a result does
    not depend on a file."""


MAX_LAYERS = 10_000
"""Most layers of an inline network (a hundred times the largest of workloads/)."""


def _inline_network(raw: dict, where: Located) -> tuple[str, dict[str, dict]] | None:
    """``(name, layers)`` of ``workload: {name, layers}`` (the layers in the
    format of workloads/; those with weights are checked as layers)."""
    layers = raw.get("layers")
    if set(raw) - {"name", "layers"} or not isinstance(layers, dict) or not layers \
            or not all(isinstance(v, dict) for v in layers.values()):
        where.add(("workload",), "a whole network is {name: ..., layers: {layer: {op, dims, ...}, ...}}")
        return None
    if len(layers) > MAX_LAYERS:
        where.add(("workload", "layers"), f"{len(layers):,} layers; the supported range is 1 to {MAX_LAYERS:,}")
        return None
    return str(raw.get("name", "network")), {str(k): v for k, v in layers.items()}


def _network_layers(network: str, hierarchy: Hierarchy, spec: "MultiLevelSpec", where: Located,
                    label: str, constraints: ConstraintsSpec | None = None,
                    table: dict[str, dict] | None = None) -> MultiLevelNetwork | None:
    """The distinct layers with weights of network ``network`` (of
    workloads/, or given as ``table``, its layers in that format)."""
    groups: dict[tuple, list] = {}
    weighted = workload_library.compute_layers(network) if table is None else \
        [name for name, raw in table.items() if raw.get("op", "conv2d") in workload_library.COMPUTE_OPS]
    for name in weighted:
        if table is None:
            layer = build_layer(f"{network}.{name}", where, ("workload",))
        else:
            raw = {k: v for k, v in table[name].items() if k != "inputs"}  # edges matter to partitions only
            layer = build_layer(dict(raw, name=f"{network}.{name}"), where, ("workload", "layers", name))
        if layer is None:
            return None
        key = (layer.N, layer.M, layer.C, layer.P, layer.Q, layer.R, layer.S, layer.stride, layer.dilation,
               layer.groups, layer.op)
        groups.setdefault(key, [layer, []])[1].append(layer.name)
    solver = SolverSettings(spec.solver.method, spec.solver.time_limit, spec.solver.workers)
    constraints = build_constraints(spec.constraints if constraints is None else constraints, hierarchy, where)
    if where.issues:
        return None
    factors = spec.space.factors or spec.space.tiles or "divisors"
    refused = [any_space_refusal(layer) for layer, _ in groups.values()] if factors == "any" else []
    if any(refused):
        where.add(("space", "factors"), next(r for r in refused if r))
        return None
    primary, *secondary = spec.objectives
    layers = tuple(NetworkLayer(MultiLevelProblem(layer, hierarchy, primary, solver, label, constraints,
                                                  factors, spec.space.halo, tuple(secondary)), tuple(names))
                   for layer, names in groups.values())
    return MultiLevelNetwork(network, layers, label, network if table is None else {"name": network,
                                                                                      "layers": table})


def _whole_network(workload: Any, where: Located, base: Path) -> tuple[str, dict[str, dict] | None] | None:
    """``(name, layers)`` of a whole-network workload (layers None for a
    network of workloads/), or None with the problem recorded."""
    if isinstance(workload, str):
        return workload, None
    if is_onnx(workload):
        return onnx_workload(workload, where, ("workload",), base)
    return _inline_network(workload, where)


def _energy_unpriced(spec: "MultiLevelSpec", hierarchy: Hierarchy, where: Located, written: bool) -> bool:
    """True (with the issue recorded) when an objective counts energy but no
    level prices an access: every mapping would have the same energy (MACs
    x mac_energy), so any would be called optimal. Checked last, once the
    instance is otherwise valid, so that a structural mistake is named first."""
    costed = [name for name in spec.objectives if name in ("energy", "edp")]
    if not costed or any(level.read_energy or level.write_energy for level in hierarchy.levels):
        return False
    default = "" if written else " (the default objective on a hierarchy)"
    where.add(("objective",), f"{costed[0]}{default} needs the energy of each memory access, and every level's "
                              "read_energy and write_energy is 0 here, so every mapping would cost the same; "
                              "give each level its read_energy (and write_energy), or minimize "
                              "offchip_traffic or latency")
    return True


TIES_BROKEN_BY_ENERGY = ("latency", "offchip_traffic")
"""Objectives that, named alone, are followed by energy: many mappings share
the least latency (every one that keeps the array busy) or the least
traffic, and their energies differ by several times, so any one of them
would be a poor answer. A one-element list (``objective: [latency]``)
asks for no second objective. ``edp`` alone is followed by energy too,
whatever is priced: CP-SAT cannot minimize a product, so an EDP optimum
is made canonical only by a search that holds it and minimizes the next
objective (docs/tiling-multilevel.md, "Secondary objectives")."""


def _energy_breaks_ties(spec: "MultiLevelSpec", hierarchy: Hierarchy) -> "MultiLevelSpec":
    """``spec`` with energy after an objective named alone (not in a list)
    that leaves it free, when some on-chip level prices its accesses (with
    DRAM's alone, energy follows the traffic and would break no tie)."""
    priced = any(level.read_energy or level.write_energy for level in hierarchy.levels[1:])
    if spec.objective == "edp" or (isinstance(spec.objective, str) and spec.objective in TIES_BROKEN_BY_ENERGY
                                   and priced):
        return spec.model_copy(update={"objective": [spec.objective, "energy"]})
    return spec


def build_multilevel(data: dict, where: Located, label: str,
                     base: Path = Path(".")) -> MultiLevelProblem | MultiLevelNetwork | None:
    """The problem of a multi-level instance document, or None with the
    problems recorded on ``where`` (``base``: the folder of the instance)."""
    spec = validate_spec(MultiLevelSpec, data, where, (), "an instance mapping")
    workload = data.get("workload")
    network = _whole_network(workload, where, base) if is_network(workload) else None
    layer = None
    if network is None and workload is not None and not is_network(workload):
        if is_onnx(workload):
            workload = onnx_layer(workload, where, ("workload",), base)
        layer = build_layer(workload, where, ("workload",)) if workload is not None else None
    hardware = data.get("hardware")
    one_layer = set(hardware_presets()) - set(hierarchy_presets())
    if is_network(workload) and isinstance(hardware, str) and hardware in one_layer:
        where.add(("hardware",), f"{hardware} is a buffer for one layer; a whole network is tiled on a hierarchy: "
                                 f"a preset ({', '.join(hierarchy_presets())}) or levels: [{{name: DRAM}}, "
                                 "{name: GLB, capacity: 64 KiB}] with objective: offchip_traffic"
                                 + ("; or tile one layer of the model: workload: {onnx: ..., layer: NAME}"
                                    if is_onnx(workload) else ""))
        return None
    built = build_hierarchy(hardware, where, ("hardware",)) if hardware is not None else None
    if where.issues or spec is None or built is None or (layer is None and network is None):
        return None
    hierarchy, hardware_constraints = built
    factors = spec.space.factors or spec.space.tiles or "divisors"
    if spec.space.factors and spec.space.tiles and spec.space.factors != spec.space.tiles:
        where.add(("space",), f"factors: {spec.space.factors} and tiles: {spec.space.tiles} disagree; "
                              "a hierarchy takes factors: divisors or factors: any")
    objective_problems(spec.objectives, where)
    if factors == "any" and spec.objectives[:1] == ("edp",):
        where.add(("space", "factors"), "edp is solved over divisor factors only (its search fixes the busy PEs, "
                                        "which partial tiles do not determine the cycles of); use energy or "
                                        "latency with factors: any, or factors: divisors with edp")
    if spec.space.halo and factors == "any":
        where.add(("space", "halo"), "halo reuse in a hierarchy is modelled over divisor factors (a partial "
                                     "last tile breaks the equal steps of a sweep); use factors: divisors with "
                                     "halo: true, or drop halo")
    if where.issues:
        return None
    if spec.space.bypass == "fixed" or (network is not None and _layer_alone_is_two_level(data)):
        hierarchy = hierarchy.fixed()
    constraints = merge_constraints(hardware_constraints, spec.constraints, hierarchy, where)
    if where.issues:
        return None
    if "objective" not in data and len(hierarchy.levels) == 2 and \
            not any(level.read_energy or level.write_energy for level in hierarchy.levels):
        # DRAM and one buffer without energies (a two-level instance whose partition lets a tensor
        # bypass, say): the default is the two-level model's objective, not an energy nothing prices
        spec = spec.model_copy(update={"objective": "offchip_traffic"})
    spec = _energy_breaks_ties(spec, hierarchy)
    if network is not None:
        name, table = network
        built_network = _network_layers(name, hierarchy, spec, where, label, constraints, table)
        return None if built_network is None or _energy_unpriced(spec, hierarchy, where, "objective" in data) else built_network
    constraints = build_constraints(constraints, hierarchy, where)
    if factors == "any" and any_space_refusal(layer):
        where.add(("space", "factors"), any_space_refusal(layer))
    if where.issues or _energy_unpriced(spec, hierarchy, where, "objective" in data):
        return None
    return MultiLevelProblem(
        layer=layer, hierarchy=hierarchy, objective=spec.objectives[0], secondary=spec.objectives[1:],
        solver=SolverSettings(spec.solver.method, spec.solver.time_limit, spec.solver.workers), source=label,
        constraints=constraints, factors=factors, halo=spec.space.halo,
    )
