"""Cost model of a graph partition (Cocco-style consumption-centric fusion).

A subgraph runs on chip as one fused unit; only tensors that cross its
boundary, and its weights, touch DRAM (derivation in docs/partition.md):

    EMA(S) = weights(S) + inputs read from outside S (each tensor once)
             + outputs of S consumed outside S or leaving the network.

On-chip memory follows consumption-centric execution: every node whose
output leaves S produces one row per step; walking S backwards, a producer
u updates ``offset_u = lcm over consumers v in S of offset_v * s_v`` rows per
step and keeps ``height_u = max over consumers of F_v + (offset_u / s_v - 1)
* s_v`` rows (its MAIN region of new rows plus the SIDE overlap).  Tensors
read from outside S are buffered the same way.  Memory(S) is the sum of
those row buffers plus all weights of S.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd

import networkx as nx

from .graph import PartitionGraph


def _lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


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
    for v in nodes:
        node = pg.node(v)
        total += node.weight_bytes + node.input_bytes
        for u in g.predecessors(v):
            if u not in nodes:
                external.add(u)
        successors = list(g.successors(v))
        if not successors or any(w not in nodes for w in successors):
            total += node.out_bytes
    return total + sum(pg.node(u).out_bytes for u in external)


def memory_bytes(pg: PartitionGraph, nodes: frozenset) -> int:
    g = pg.graph
    offset: dict[str, int] = {}
    height: dict[str, int] = {}
    order = [v for v in reversed(pg.order) if v in nodes]
    for v in order:  # consumers before producers
        consumers = [w for w in g.successors(v) if w in nodes]
        if not consumers:
            offset[v], height[v] = 1, 1
            continue
        off = 1
        for w in consumers:
            off = _lcm(off, offset[w] * pg.node(w).stride)
        offset[v] = off
        need = max(pg.node(w).window + (off // pg.node(w).stride - 1) * pg.node(w).stride for w in consumers)
        height[v] = min(need, pg.node(v).rows)
    total = sum(height[v] * pg.node(v).row_bytes + pg.node(v).weight_bytes for v in nodes)
    # tensors read from outside: one buffer per external producer, sized for its consumers in S
    external: dict[str, list[str]] = {}
    for v in nodes:
        for u in g.predecessors(v):
            if u not in nodes:
                external.setdefault(u, []).append(v)
        if pg.node(v).input_bytes:
            n = pg.node(v)
            in_rows = n.input_bytes // n.input_row_bytes
            total += min(n.window + (offset[v] - 1) * n.stride, in_rows) * n.input_row_bytes
    for u, consumers in external.items():
        off = 1
        for w in consumers:
            off = _lcm(off, offset[w] * pg.node(w).stride)
        need = max(pg.node(w).window + (off // pg.node(w).stride - 1) * pg.node(w).stride for w in consumers)
        total += min(need, pg.node(u).rows) * pg.node(u).row_bytes
    return total


@dataclass
class PartitionMetrics:
    ema_bytes: int
    subgraphs: int
    peak_memory_bytes: int
    feasible: bool
    violations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def quotient_is_acyclic(pg: PartitionGraph, blocks: list[frozenset]) -> bool:
    owner = {v: i for i, block in enumerate(blocks) for v in block}
    quotient = nx.DiGraph()
    quotient.add_nodes_from(range(len(blocks)))
    quotient.add_edges_from((owner[u], owner[v]) for u, v in pg.graph.edges if owner[u] != owner[v])
    return nx.is_directed_acyclic_graph(quotient)


def evaluate(pg: PartitionGraph, blocks: list[frozenset], capacity: int) -> PartitionMetrics:
    """EMA of a partition and whether it can run: blocks cover every node
    once, each is connected and convex and fits ``capacity`` bytes, and the
    blocks can be ordered (their quotient graph is acyclic)."""
    violations = []
    covered = [v for block in blocks for v in block]
    if sorted(covered) != sorted(pg.graph.nodes):
        violations.append("blocks must cover every node exactly once")
    peak = 0
    for block in blocks:
        mem = memory_bytes(pg, block)
        peak = max(peak, mem)
        if mem > capacity:
            violations.append(f"a subgraph of {len(block)} nodes needs {mem} B > {capacity} B")
        if not is_connected(pg, block):
            violations.append(f"subgraph {sorted(block)[:3]}... is not connected")
        if not is_convex(pg, block):
            violations.append(f"subgraph {sorted(block)[:3]}... is not convex")
    if not violations and not quotient_is_acyclic(pg, blocks):
        violations.append("the subgraphs cannot be ordered (their quotient graph has a cycle)")
    return PartitionMetrics(sum(ema_bytes(pg, b) for b in blocks), len(blocks), peak, not violations, violations)
