"""A network as the partition family sees it: a DAG of layers with the
sizes that fusion trades off (weights, output tensors, rows and windows)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import networkx as nx

from ... import workload_library

FLATTENING_OPS = ("fc", "matmul")
"""Layers that read their whole input tensor at once (flattened)."""


@dataclass(frozen=True)
class Node:
    name: str
    rows: int            # output rows (P)
    row_bytes: int       # bytes of one output row: Q * M * N * activation bytes
    window: int          # rows of its input one output row needs (R; 1 for add/concat)
    stride: int
    weight_bytes: int
    input_bytes: int     # bytes of the network input it reads (0 if none)
    input_row_bytes: int
    channels: int = 1    # output channels M: a lone layer may stream its weights in groups of them
    macs: int = 0        # multiply-accumulates (layers with weights)

    @property
    def out_bytes(self) -> int:
        return self.rows * self.row_bytes


def _stride(raw: dict) -> int:
    stride = raw.get("stride", 1)
    return stride if isinstance(stride, int) else int(stride[0])


def node_from_layer(name: str, raw: dict, act_bytes: int, weight_bits: int, reads_input: bool) -> Node:
    d = raw["dims"]
    op = raw.get("op", "conv2d")
    n, m, p, q = d.get("N", 1), d["M"], d.get("P", 1), d.get("Q", 1)
    window = d.get("R", 1) if op in ("conv2d", "pool") else 1
    stride = _stride(raw)
    weights = macs = 0
    if op in workload_library.COMPUTE_OPS:
        groups = raw.get("groups", 1)
        weights = m * (d["C"] // groups) * d.get("R", 1) * d.get("S", 1) * weight_bits // 8
        macs = n * m * (d["C"] // groups) * p * q * d.get("R", 1) * d.get("S", 1)
    in_rows = (p - 1) * stride + window
    in_row_bytes = n * d["C"] * ((q - 1) * stride + d.get("S", 1) if op in ("conv2d", "pool") else q) * act_bytes
    return Node(
        name=name, rows=p, row_bytes=n * m * q * act_bytes, window=window, stride=stride, weight_bytes=weights,
        input_bytes=in_rows * in_row_bytes if reads_input else 0,
        input_row_bytes=in_row_bytes if reads_input else 0, channels=m if weights else 1, macs=macs,
    )


@dataclass
class PartitionGraph:
    graph: nx.DiGraph            # nodes carry ``node`` (a Node)
    name: str = "network"
    memo: dict = field(default_factory=dict, repr=False, compare=False)
    """Per-graph caches of derived quantities (the graph is not changed after construction)."""

    @cached_property
    def order(self) -> list[str]:
        """Topological order, ties broken by the layers' order in the network
        (computed once: the graph is not changed after construction)."""
        return list(nx.lexicographical_topological_sort(self.graph, key=lambda v: self.graph.nodes[v]["index"]))

    @cached_property
    def position(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.order)}

    @cached_property
    def _nodes(self) -> dict[str, Node]:
        return {v: data["node"] for v, data in self.graph.nodes(data=True)}

    def node(self, v: str) -> Node:
        return self._nodes[v]


def from_network(name: str, act_bits: int = 8, weight_bits: int = 8) -> PartitionGraph:
    """The partition graph of a network of workloads/ (layers and their inputs)."""
    return from_layers(name, workload_library.network(name), act_bits, weight_bits)


def from_layers(name: str, layers: dict[str, dict], act_bits: int = 8, weight_bits: int = 8) -> PartitionGraph:
    """The partition graph of a layer dictionary (e.g. ``workload_library.randwire_layers``)."""
    source = workload_library.graph_of_layers(name, layers)
    graph = nx.DiGraph()
    for index, v in enumerate(source.nodes):
        raw = layers[v]
        reads_input = "input" in raw.get("inputs", []) or (index == 0 and "inputs" not in raw)
        node = node_from_layer(v, raw, act_bits // 8 or 1, weight_bits, reads_input)
        producers = list(source.predecessors(v))
        if raw.get("op") in FLATTENING_OPS and producers:
            # a fully connected layer reads its whole input: all rows of its producer
            node = replace(node, window=max(graph.nodes[u]["node"].rows for u in producers), stride=1)
        graph.add_node(v, index=index, node=node, layer=raw)
    graph.add_edges_from(source.edges)
    return PartitionGraph(graph, name)
