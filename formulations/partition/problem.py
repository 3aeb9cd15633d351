"""The graph-partition problem and its solution, as the family contract sees them.

A problem is a graph of layers with one buffer size (least EMA or least
latency) or several candidate sizes (co-exploration: least design cost,
Cocco's ``size + alpha * EMA energy``).  A solution is the partition into
subgraphs and the buffer it runs in; the cost model
(``formulations/partition/cost.py``) scores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .cost import DEFAULT_MACHINE, Machine, SplitCapacity
from .graph import PartitionGraph


@dataclass
class PartitionProblem:
    """A graph and either one buffer (least EMA or latency) or several
    candidate sizes of one shared buffer (least design cost).

    ``workload`` is the graph as the instance names it (a network name,
    ``{randwire: {...}}`` or ``{name, layers}``), kept so that the instance
    can be written back (``schema.dump_partition``).
    """

    graph: PartitionGraph
    workload: str | dict
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
    activation_bits: int = 8
    weight_bits: int = 8

    @property
    def capacity(self):
        """The one buffer of a fixed-buffer instance (the smallest candidate when co-exploring)."""
        return self.capacities[0]

    @property
    def objective_name(self) -> str:
        """``ema``, ``latency``, or ``design_cost`` when co-exploring the buffer size."""
        return "design_cost" if self.coexplore else self.objective


@dataclass(frozen=True)
class PartitionSolution:
    """Subgraphs (sets of layer names) and the buffer they run in (bytes of
    one shared buffer, or a ``SplitCapacity``)."""

    blocks: tuple[frozenset, ...]
    capacity: int | SplitCapacity


def execution_order(pg: PartitionGraph, blocks) -> list[list[str]]:
    """The subgraphs as lists of layer names in an order they can run in.

    Each subgraph lists its layers in topological order; the subgraphs follow
    a topological order of their quotient graph, ties broken by their first
    layer (so the listing is canonical).  When the quotient has a cycle (an
    invalid partition, which ``evaluate`` reports) they follow their first
    layers."""
    ordered = [sorted(block, key=pg.position.__getitem__) for block in blocks if block]
    owner = {v: i for i, layers in enumerate(ordered) for v in layers}
    quotient = nx.DiGraph()
    quotient.add_nodes_from(range(len(ordered)))
    quotient.add_edges_from((owner[u], owner[v]) for u, v in pg.graph.edges
                            if u in owner and v in owner and owner[u] != owner[v])
    first = {i: pg.position[layers[0]] for i, layers in enumerate(ordered)}
    try:
        sequence = list(nx.lexicographical_topological_sort(quotient, key=first.__getitem__))
    except nx.NetworkXUnfeasible:
        sequence = sorted(first, key=first.__getitem__)
    return [ordered[i] for i in sequence]
