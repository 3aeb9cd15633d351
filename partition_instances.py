"""Instances of the graph-partition family (``family: partition``).

Same conventions as the other families (instances.py): pydantic schemas
with unknown fields forbidden, every problem reported as
``file:line: field: message``.

    family: partition
    workload: resnet50                 # a network of workloads/, or
                                       # {randwire: {nodes: 32, k: 4, p: 0.75, seed: 0}}
    buffer: 512 KiB                    # one shared on-chip buffer: least EMA, or
    buffer: {from: 128 KiB, to: 3072 KiB, step: 64 KiB}   # co-explore the size
                                       # (or a list of sizes); least BUF_SIZE + alpha * EMA energy
    buffer: {activations: 512 KiB, weights: 576 KiB}   # or separate buffers (one size each)
    precision: {activations: 8, weights: 8}
    cost: {alpha: 0.002, pj_per_bit: 12.5}   # Cocco's defaults
    objective: ema                     # or latency (one buffer size): cycles of max(compute, DRAM transfer)
    accelerator: {macs_per_cycle: 1024, dram_bytes_per_cycle: 16}   # for latency
    solver: {method: milp, time_limit: 60}   # dp | milp | cpsat
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from . import workload_library
from .formulations.partition.coexplore import ALPHA, PJ_PER_BIT
from .formulations.partition.cost import DEFAULT_MACHINE, Machine, SplitCapacity
from .formulations.partition.graph import PartitionGraph, from_layers, from_network
from .instances import Located, Strict, validate_spec
from .units import parse_bytes

MAX_CAPACITIES = 200
"""Most buffer sizes a co-exploration sweeps (each is one exact solve)."""


class RandWireSpec(Strict):
    nodes: int = Field(32, ge=2, le=512)
    k: int = Field(4, ge=2)
    p: float = Field(0.75, ge=0, le=1)
    seed: int = 0
    channels: int = Field(78, ge=1)
    size: int = Field(28, ge=1)


class GeneratedWorkload(Strict):
    randwire: RandWireSpec


class BufferRange(Strict):
    from_: Any = Field(alias="from")
    to: Any
    step: Any


class SplitBuffer(Strict):
    activations: Any
    weights: Any


class GraphPrecision(Strict):
    activations: int = Field(8, ge=1, le=32)
    weights: int = Field(8, ge=1, le=32)


class CostSpec(Strict):
    alpha: float = Field(ALPHA, ge=0)
    pj_per_bit: float = Field(PJ_PER_BIT, gt=0)


class AcceleratorSpec(Strict):
    macs_per_cycle: int = Field(1024, ge=1)
    dram_bytes_per_cycle: float = Field(16.0, gt=0)


class PartitionSolverSpec(Strict):
    method: Literal["dp", "milp", "cpsat"] = "milp"
    time_limit: float = Field(60.0, gt=0)
    workers: int = Field(0, ge=0)


class GraphPartitionSpec(Strict):
    family: Literal["partition"]
    workload: Any
    buffer: Any
    precision: GraphPrecision = GraphPrecision()
    cost: CostSpec = CostSpec()
    objective: Literal["ema", "latency"] = "ema"
    accelerator: AcceleratorSpec = AcceleratorSpec()
    solver: PartitionSolverSpec = PartitionSolverSpec()


@dataclass
class PartitionInstance:
    """A graph and either one buffer size (minimize EMA) or several
    (co-explore: minimize size + alpha * EMA energy)."""

    graph: PartitionGraph
    capacities: tuple  # bytes of one shared buffer each, or one SplitCapacity
    coexplore: bool
    alpha: float
    pj_per_bit: float
    method: str
    time_limit: float
    workers: int
    source: str
    objective: str = "ema"
    machine: Machine = DEFAULT_MACHINE

    @property
    def capacity(self):
        return self.capacities[0]


def _graph(raw: Any, where: Located, precision: GraphPrecision) -> PartitionGraph | None:
    if isinstance(raw, str):
        if raw not in workload_library.networks():
            where.add(("workload",), f"unknown network {raw!r}; choose one of {', '.join(workload_library.networks())} "
                      "or {randwire: {nodes: 32}}")
            return None
        return from_network(raw, precision.activations, precision.weights)
    spec = validate_spec(GeneratedWorkload, raw, where, ("workload",), "a network name or {randwire: {...}}")
    if spec is None:
        return None
    rw = spec.randwire
    if rw.k >= rw.nodes:
        where.add(("workload", "randwire", "k"), f"must be below nodes ({rw.nodes}), got {rw.k}")
        return None
    try:
        layers = workload_library.randwire_layers(rw.nodes, rw.k, rw.p, rw.seed, rw.channels, rw.size)
    except Exception as exc:  # networkx gives up on some (nodes, k, p): say which, not a traceback
        where.add(("workload", "randwire"), f"cannot generate this random graph: {exc}")
        return None
    name = f"randwire{rw.nodes}-k{rw.k}-p{rw.p:g}-s{rw.seed}"
    return from_layers(name, layers, precision.activations, precision.weights)


def _capacities(raw: Any, where: Located) -> tuple[tuple[int, ...], bool] | None:
    """(sizes in bytes, co-explore?) from one size, a list, or a range."""
    path = ("buffer",)
    try:
        if isinstance(raw, list):
            if not raw:
                where.add(path, "an empty list; give one size or several")
                return None
            sizes = sorted({parse_bytes(x) for x in raw})
            return tuple(sizes), len(sizes) > 1
        if isinstance(raw, dict) and ("activations" in raw or "weights" in raw):
            split = validate_spec(SplitBuffer, raw, where, path, "{activations: size, weights: size}")
            if split is None:
                return None
            return (SplitCapacity(parse_bytes(split.activations), parse_bytes(split.weights)),), False
        if isinstance(raw, dict):
            spec = validate_spec(BufferRange, raw, where, path, "a size, a list of sizes, {from, to, step} "
                             "or {activations: size, weights: size}")
            if spec is None:
                return None
            low, high, step = parse_bytes(spec.from_), parse_bytes(spec.to), parse_bytes(spec.step)
            if high < low:
                where.add(path + ("to",), f"must not be below from ({low:,} B), got {high:,} B")
                return None
            sizes = tuple(range(low, high + 1, step))
            if len(sizes) > MAX_CAPACITIES:
                where.add(path + ("step",), f"{len(sizes)} sizes; at most {MAX_CAPACITIES} (one exact solve each): "
                          "raise the step")
                return None
            return sizes, len(sizes) > 1
        return (parse_bytes(raw),), False
    except ValueError as exc:
        where.add(path, str(exc))
        return None


def build_partition(data: dict, where: Located, label: str) -> PartitionInstance | None:
    spec = validate_spec(GraphPartitionSpec, data, where, (), "a mapping")
    if spec is None:
        return None
    graph = _graph(spec.workload, where, spec.precision)
    capacities = _capacities(spec.buffer, where)
    if graph is None or capacities is None:
        return None
    sizes, coexplore = capacities
    if coexplore and spec.objective != "ema":
        where.add(("objective",), "co-exploring buffer sizes scores designs by Cocco's cost (size + alpha * EMA "
                  "energy); give one buffer size for latency, or objective: ema")
        return None
    machine = Machine(spec.accelerator.macs_per_cycle, spec.accelerator.dram_bytes_per_cycle)
    return PartitionInstance(graph, sizes, coexplore, spec.cost.alpha, spec.cost.pj_per_bit, spec.solver.method,
                             spec.solver.time_limit, spec.solver.workers, label, spec.objective, machine)
