"""Cost model of a graph partition (Cocco-style consumption-centric fusion).

A subgraph runs on chip as one fused unit; only tensors that cross its
boundary, and its weights, touch DRAM (derivation in docs/partition.md):

    EMA(S) = weights(S) + inputs read from outside S (each tensor once)
             + outputs of S consumed outside S or leaving the network.

On-chip memory follows consumption-centric execution: the subgraph runs
in steps, every layer producing a fixed number of rows per step, far enough
ahead of its consumers that their windows find every row
(``schedule.row_schedule``).  Memory(S) is the sum of the row buffers of
that schedule (each layer's output, and every tensor read from DRAM) plus
all weights of S.

A layer whose weights do not fit runs alone with its weights streamed: in
``k`` groups of output channels, either re-reading its input rows for every
group or keeping its whole input on chip (``Execution``, ``lone_layer_modes``).
"""


from __future__ import annotations

import math
from functools import cache
from dataclasses import dataclass, field

import networkx as nx

from .graph import PartitionGraph
from .schedule import row_schedule


def is_connected(pg: PartitionGraph, nodes: frozenset) -> bool:
    return len(nodes) > 0 and nx.is_weakly_connected(pg.graph.subgraph(nodes))


def is_convex(pg: PartitionGraph, nodes: frozenset) -> bool:
    """No path leaves the subgraph and comes back."""
    g = pg.graph
    outside_successors = {w for v in nodes for w in g.successors(v) if w not in nodes}
    if not outside_successors:
        return True
    reach = set()
    for w in outside_successors:
        if w not in reach:
            reach |= nx.descendants(g, w) | {w}
    return not (reach & nodes)


def ema_bytes(pg: PartitionGraph, nodes: frozenset) -> int:
    g = pg.graph
    total = 0
    external = set()
    inputs = {}  # the network input once per subgraph, however many of its layers read it
    for v in nodes:
        node = pg.node(v)
        total += node.weight_bytes
        if node.input_bytes:
            inputs[node.input_tensor] = node.input_bytes
        for u in g.predecessors(v):
            if u not in nodes:
                external.add(u)
        successors = list(g.successors(v))
        if not successors or any(w not in nodes for w in successors):
            total += node.out_bytes
    return total + sum(inputs.values()) + sum(pg.node(u).out_bytes for u in external)


def memory_bytes(pg: PartitionGraph, nodes: frozenset) -> int:
    """On-chip bytes of ``nodes`` run as one fused subgraph: all its weights
    and the row buffers of its row schedule (``schedule.row_schedule``)."""
    weights, buffers, _ = memory_parts(pg, nodes)
    return weights + buffers


def memory_parts(pg: PartitionGraph, nodes: frozenset) -> tuple[int, int, int]:
    """(weights, row buffers, row buffers no superset needs less of) of
    ``nodes`` run as one fused subgraph, in bytes. The last never shrinks
    as layers are added, so a set whose weights or buffer bound do not fit
    ends the candidate search; the buffers themselves may shrink, when a
    layer that joins shortens the lag one branch waits for another."""
    memo = pg.memo.setdefault("memory_parts", {})
    key = sum(1 << pg.position[v] for v in nodes)
    if key not in memo:
        schedule = row_schedule(pg, nodes)
        parts = (sum(pg.node(v).weight_bytes for v in nodes), schedule.buffer_bytes(),
                 schedule.buffer_bytes_lower_bound())
        if len(memo) >= MEMORY_MEMO_LIMIT:
            return parts
        memo[key] = parts
    return memo[key]


MEMORY_MEMO_LIMIT = 250_000
"""Most subgraphs whose memory a graph remembers (about 40 MB of integers):
heuristics, brute force and sweeps over buffer sizes score the same
subgraphs again and again, and a row schedule is the costly part."""


def bound_fits(pg: PartitionGraph, nodes: frozenset, capacity) -> bool:
    """Whether some set of layers containing ``nodes`` might fit: false once
    the weights or the buffers' lower bound alone exceed their buffer."""
    weights, _, buffers = memory_parts(pg, nodes)
    return fits(weights, buffers, capacity)


@dataclass(frozen=True)
class SplitCapacity:
    """Separate on-chip buffers: one for activations (every row buffer of
    the row schedule) and one for weights. A plain ``int`` capacity is one
    shared buffer."""

    activations: int
    weights: int

    @property
    def total(self) -> int:
        return self.activations + self.weights

    def __format__(self, spec: str) -> str:  # reads well in "needs ... more than {capacity:,} B"
        return f"activations {self.activations:,} B + weights {self.weights:,}"


def total_bytes(capacity) -> int:
    """Bytes of on-chip memory a capacity provides in all."""
    return capacity.total if isinstance(capacity, SplitCapacity) else capacity


def fits(weights: int, activations: int, capacity) -> bool:
    """Whether weights and activation buffers of these sizes fit ``capacity``
    (one shared buffer, or a ``SplitCapacity``)."""
    if isinstance(capacity, SplitCapacity):
        return weights <= capacity.weights and activations <= capacity.activations
    return weights + activations <= capacity


OBJECTIVES = ("ema", "latency")


@dataclass(frozen=True)
class Machine:
    """What latency needs: MACs per cycle and DRAM bytes per cycle. The
    defaults are a 32 x 32 array with Cocco's 16 GB/s per core at 1 GHz."""

    macs_per_cycle: int = 1024
    dram_bytes_per_cycle: float = 16.0

    def latency(self, macs: int, ema: int) -> int:
        """Cycles of a subgraph: compute and DRAM transfers overlap, the slower one sets the pace."""
        return max(-(-macs // self.macs_per_cycle), math.ceil(ema / self.dram_bytes_per_cycle))


DEFAULT_MACHINE = Machine()


@dataclass(frozen=True)
class Execution:
    """How a subgraph runs on chip: its external memory access, the on-chip
    memory it needs, and for a lone layer the number of output-channel
    groups its weights are streamed in (1: all weights resident) and whether
    its whole input stays on chip meanwhile."""

    ema: int
    memory: int
    weight_groups: int = 1
    resident_input: bool = False
    latency: int = 0             # cycles, on the machine ``execution`` was given
    weight_memory: int = 0       # of ``memory``, the weights held at once

    def fits(self, capacity) -> bool:
        return fits(self.weight_memory, self.memory - self.weight_memory, capacity)

    def cost(self, objective: str) -> int:
        return self.latency if objective == "latency" else self.ema


@cache
def _divisors(n: int) -> tuple[int, ...]:
    return tuple(k for k in range(1, n + 1) if n % k == 0)


def lone_layer_modes(pg: PartitionGraph, v: str, machine: Machine = DEFAULT_MACHINE) -> list[Execution]:
    """Every way to run layer ``v`` alone. With its weights in ``k`` groups of
    output channels it holds ``weights / k`` and one output row of ``M / k``
    channels at a time, and either

    * streams its input rows as usual, reading its input ``k`` times, or
    * keeps its whole input on chip, reading it once.

    ``k = 1`` with streamed rows is the ordinary fused execution of {v}."""
    node = pg.node(v)
    alone = frozenset([v])
    row_buffers = memory_bytes(pg, alone) - node.weight_bytes - node.row_bytes  # input rows on chip
    inputs = ema_bytes(pg, alone) - node.weight_bytes - node.out_bytes  # input bytes read once
    modes = []
    for k in _divisors(node.channels) if node.weight_bytes else [1]:
        weights = -(-node.weight_bytes // k)
        held = weights + -(-node.row_bytes // k)
        streamed = node.weight_bytes + k * inputs + node.out_bytes
        modes.append(Execution(streamed, held + row_buffers, k, False, machine.latency(node.macs, streamed), weights))
        if k > 1:
            once = node.weight_bytes + inputs + node.out_bytes
            modes.append(Execution(once, held + inputs, k, True, machine.latency(node.macs, once), weights))
    return modes


def execution(pg: PartitionGraph, nodes: frozenset, capacity, objective: str = "ema",
              machine: Machine = DEFAULT_MACHINE) -> Execution | None:
    """The cheapest way to run ``nodes`` within ``capacity`` (bytes of one
    shared buffer, or a ``SplitCapacity``) by
    ``objective`` (ties: less EMA, fewer weight groups, less memory), or
    None when none fits. Only a lone layer may stream its weights; a fused
    subgraph keeps all of them on chip, since every row step uses every
    weight."""
    if len(nodes) == 1:
        (v,) = nodes
        fitting = [mode for mode in lone_layer_modes(pg, v, machine) if mode.fits(capacity)]
        return min(fitting, key=lambda mode: (mode.cost(objective), mode.ema, mode.weight_groups, mode.memory)) \
            if fitting else None
    weights, buffers, _ = memory_parts(pg, nodes)
    if not fits(weights, buffers, capacity):
        return None
    ema = ema_bytes(pg, nodes)
    return Execution(ema, weights + buffers, latency=machine.latency(sum(pg.node(v).macs for v in nodes), ema),
                     weight_memory=weights)


def lone_shortfall(pg: PartitionGraph, v: str, capacity) -> str:
    """Why layer ``v`` cannot run alone in ``capacity``: its least need against
    the one buffer, or, with separate buffers, against the buffer that is
    short in every way of running it (the least activations and the least
    weights any execution holds)."""
    modes = lone_layer_modes(pg, v)
    if not isinstance(capacity, SplitCapacity):
        return (f"layer {v} alone needs at least {min(m.memory for m in modes):,} B on chip, more than the "
                f"capacity of {capacity:,} B")
    activations = min(m.memory - m.weight_memory for m in modes)
    weights = min(m.weight_memory for m in modes)
    short = [f"at least {need:,} B of {kind}, more than the {kind} buffer's {have:,} B"
             for kind, need, have in (("activations", activations, capacity.activations),
                                      ("weights", weights, capacity.weights)) if need > have]
    if not short:  # each fits in some execution, but no execution fits both
        return (f"layer {v} alone fits neither way: each of its executions needs more activations than "
                f"{capacity.activations:,} B or more weights than {capacity.weights:,} B")
    return f"layer {v} alone needs " + " and ".join(short)


def least_memory(pg: PartitionGraph, nodes: frozenset) -> int:
    """The least on-chip memory any execution of ``nodes`` needs."""
    if len(nodes) == 1:
        return min(mode.memory for mode in lone_layer_modes(pg, next(iter(nodes))))
    return memory_bytes(pg, nodes)


@dataclass
class PartitionMetrics:
    ema_bytes: int
    subgraphs: int
    peak_memory_bytes: int
    feasible: bool
    violations: list[str] = field(default_factory=list)
    streamed: dict[str, int] = field(default_factory=dict)
    """Lone layers that stream their weights: layer -> output-channel groups."""
    latency_cycles: int = 0
    objective: str = "ema"

    @property
    def value(self) -> int:
        """The partition's objective: EMA bytes or latency cycles."""
        return self.latency_cycles if self.objective == "latency" else self.ema_bytes

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def quotient_is_acyclic(pg: PartitionGraph, blocks: list[frozenset]) -> bool:
    owner = {v: i for i, block in enumerate(blocks) for v in block}
    quotient = nx.DiGraph()
    quotient.add_nodes_from(range(len(blocks)))
    quotient.add_edges_from((owner[u], owner[v]) for u, v in pg.graph.edges if owner[u] != owner[v])
    return nx.is_directed_acyclic_graph(quotient)


def evaluate(pg: PartitionGraph, blocks: list[frozenset], capacity: int, objective: str = "ema",
             machine: Machine = DEFAULT_MACHINE) -> PartitionMetrics:
    """EMA of a partition and whether it can run: blocks cover every node
    once, each is connected and convex and fits ``capacity`` bytes (a lone
    layer in its cheapest fitting ``execution``), and the blocks can be
    ordered (their quotient graph is acyclic). Latency is the sum of the
    subgraphs' cycles, since they run one after another. The totals count
    fitting blocks only; they mean nothing unless ``feasible``."""
    violations = []
    covered = [v for block in blocks for v in block]
    if sorted(covered) != sorted(pg.graph.nodes):
        violations.append("blocks must cover every node exactly once")
    peak, ema, latency, streamed = 0, 0, 0, {}
    for block in blocks:
        run = execution(pg, block, capacity, objective, machine)
        if run is None:
            violations.append(f"a subgraph of {len(block)} nodes needs {least_memory(pg, block):,} B, "
                              f"more than {capacity:,} B")
        else:
            peak, ema, latency = max(peak, run.memory), ema + run.ema, latency + run.latency
            if run.weight_groups > 1:
                streamed[next(iter(block))] = run.weight_groups
        if not is_connected(pg, block):
            violations.append(f"subgraph {sorted(block)[:3]}... is not connected")
        if not is_convex(pg, block):
            violations.append(f"subgraph {sorted(block)[:3]}... is not convex")
    if not violations and not quotient_is_acyclic(pg, blocks):
        violations.append("the subgraphs cannot be ordered (their quotient graph has a cycle)")
    return PartitionMetrics(ema, len(blocks), peak, not violations, violations, streamed, latency, objective)


def compulsory_ema(pg: PartitionGraph) -> int:
    """No partition moves less: every weight, the network input and every
    network output cross the chip boundary at least once."""
    g = pg.graph
    inputs = {pg.node(v).input_tensor: pg.node(v).input_bytes for v in g.nodes if pg.node(v).input_bytes}
    return sum(pg.node(v).weight_bytes + (pg.node(v).out_bytes if g.out_degree(v) == 0 else 0)
               for v in g.nodes) + sum(inputs.values())
