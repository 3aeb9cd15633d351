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
    input_tensor: str = ""
    """The network input's buffer this layer reads (``input_key``): one
    shared by every reader when they read one tensor (``_shared_input``),
    so that a subgraph holding several of them reads it once."""
    input_pad: int = 0   # rows of padding above the network input this layer adds (shared input only)

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
    in_row_bytes = n * d["C"] * (input_extent(raw)[1] if op in ("conv2d", "pool") else q) * act_bytes
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
    readers = [v for v in graph.nodes if graph.nodes[v]["node"].input_bytes]
    shared = _shared_input([layers[v] for v in readers], act_bits // 8 or 1)
    for v in readers:
        node = graph.nodes[v]["node"]
        if shared is None:
            graph.nodes[v]["node"] = replace(node, input_tensor=input_key(v))
        else:
            rows, row_bytes = shared
            graph.nodes[v]["node"] = replace(node, input_bytes=rows * row_bytes, input_row_bytes=row_bytes,
                                             input_tensor=SHARED_INPUT,
                                             input_pad=top_padding(node.rows, node.stride, node.window, rows))
    return PartitionGraph(graph, name)


SHARED_INPUT = "network input"
"""The buffer name of a network input that several layers read."""


def input_key(layer: str) -> str:
    """Name of the buffer that holds the network input read by ``layer`` alone."""
    return f"input->{layer}"


def input_extent(raw: dict) -> tuple[int, int]:
    """Rows and columns of the network input a conv or pool reads, padding
    included: ``(P - 1) * stride + R`` by ``(Q - 1) * stride + S``."""
    d = raw["dims"]
    stride = raw.get("stride", 1)
    sh, sw = (stride, stride) if isinstance(stride, int) else (stride[0], stride[-1])
    return (d.get("P", 1) - 1) * sh + d.get("R", 1), (d.get("Q", 1) - 1) * sw + d.get("S", 1)


def _shared_input(readers: list[dict], act_bytes: int) -> tuple[int, int] | None:
    """``(rows, row bytes)`` of the one network input that several convs or
    pools read, or None (one reader, or readers that cannot share a tensor:
    each then reads its own, as the first layer alone does). Their input
    is the smallest region any of them reads; the others pad it, each by
    less than its window on either side, as a layer pads the map it reads
    (docs/partition.md)."""
    if len(readers) < 2 or any(raw.get("op", "conv2d") not in ("conv2d", "pool") for raw in readers):
        return None
    if len({(raw["dims"].get("N", 1), raw["dims"]["C"]) for raw in readers}) > 1:
        return None
    extents = [input_extent(raw) for raw in readers]
    rows, cols = min(e[0] for e in extents), min(e[1] for e in extents)
    for raw, (read_rows, read_cols) in zip(readers, extents):
        d = raw["dims"]
        if read_rows > rows + 2 * (d.get("R", 1) - 1) or read_cols > cols + 2 * (d.get("S", 1) - 1):
            return None
    first = readers[0]["dims"]
    return rows, first.get("N", 1) * first["C"] * cols * act_bytes


def input_conflict(readers: dict[str, dict]) -> str | None:
    """Why convs and pools that read the network input cannot read one
    tensor (None when they can, or when one reads it): one image has one
    batch and one channel count, and each reader pads it by less than its
    window. Readers of other kinds (an fc reading it flattened) each read
    a copy of their own."""
    names = list(readers)
    if len(names) < 2 or any(readers[v].get("op", "conv2d") not in ("conv2d", "pool") for v in names):
        return None
    described = {v: (readers[v]["dims"].get("N", 1), readers[v]["dims"]["C"]) for v in names}
    if len(set(described.values())) > 1:
        return ("they read it with different batch and channels (" + ", ".join(
            f"{v}: N={n}, C={c}" for v, (n, c) in described.items()) + "); one network input has one of each")
    if _shared_input(list(readers.values()), 1) is None:
        extents = {v: input_extent(readers[v]) for v in names}
        return ("their windows need maps of sizes that no one input gives (" + ", ".join(
            f"{v}: {r} x {c}" for v, (r, c) in extents.items()) + "), each padding the smallest by less than its "
            "window; a strided reader that leaves the image's last rows unread beside one that reads them all is "
            "not modelled (give the strided one the rows it reads, or read the image through one layer)")
    return None


def top_padding(consumer_rows: int, stride: int, window: int, source_rows: int) -> int:
    """Rows of padding above a tensor of ``source_rows`` rows that a consumer
    of ``consumer_rows`` rows needs: half the rows its windows reach beyond
    the tensor, rounded up (3x3 stride 1 or 2: 1; 7x7 stride 2 on 224: 3)."""
    beyond = (consumer_rows - 1) * stride + window - source_rows
    return max(0, (beyond + 1) // 2)
