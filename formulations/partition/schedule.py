"""The row schedule of a fused subgraph, and the row buffers it needs.

A subgraph runs in steps. In every step each layer ``v`` produces ``rate_v``
more output rows, and after step ``t`` it has produced
``clamp(rate_v * t + delay_v, 0, P_v)`` of them. A tensor the subgraph
reads from DRAM (the output of a layer outside it, or the network input)
is fetched on the same terms. The rates and delays are chosen so that
every row a layer needs has been produced in time; the buffer of a tensor
then holds the rows between the lowest row a consumer still needs and the
highest row already produced (docs/partition.md, "The row schedule"):

* **Rates.** Consumer ``c`` with vertical stride ``s_c`` reads ``s_c`` new
  rows of its producer ``u`` per row it makes, so ``rate_u = s_c *
  rate_c`` on every edge. The smallest positive integers that satisfy
  every edge are the rates; when no such rates exist (two paths with
  different stride products), the subgraph runs tensor by tensor, every
  buffer holding its whole tensor.
* **Delays.** A layer with no consumer inside runs with delay 0. Row ``y``
  of consumer ``c`` needs rows ``s_c * y - p_c`` to ``s_c * y - p_c + F_c -
  1`` of ``u`` (window ``F_c``, top padding ``p_c``), so
  ``delay_u = max_c (s_c * (delay_c - 1) + F_c - p_c)``.
* **Rows held.** After ``u`` has produced its rows of step ``t``, consumer
  ``c`` still needs every row from the first row of its own step ``t``,
  ``s_c * (rate_c * (t - 1) + delay_c) - p_c``. The buffer therefore holds
  ``rate_u + delay_u - min_c (s_c * delay_c - p_c)`` rows, at most ``P_u``.
  A layer whose output only leaves the subgraph writes each row out as it
  is made and holds one row.

The functional model (``hardware/functional/partition.py``) runs this
schedule row by row and checks that no buffer ever needs more rows than
these.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd, lcm

from .graph import PartitionGraph, input_key, top_padding  # noqa: F401 (input_key: the models' key)


@dataclass(frozen=True)
class Buffer:
    """One tensor's row buffer in a subgraph."""

    key: str                  # a layer's name, or ``input_key(layer)`` for the network input
    rows: int                 # rows of the tensor
    row_bytes: int
    rate: int                 # rows produced (or fetched) per step
    delay: int
    held: int                 # rows the buffer holds
    consumers: tuple[str, ...]  # layers of the subgraph that read it
    external: bool            # fetched from DRAM rather than computed in the subgraph
    reach: int = 0            # most rows beyond the stride one consumer's window reads: max (F - s)

    def produced(self, step: int) -> int:
        """Rows produced (or fetched) once ``step`` steps have run."""
        return max(0, min(self.rows, self.rate * step + self.delay))


@dataclass(frozen=True)
class Edge:
    """How consumer ``consumer`` reads the tensor of buffer ``source``."""

    source: str
    consumer: str
    window: int
    stride: int
    pad: int                  # rows of padding above the tensor

    def first_row(self, y: int) -> int:
        """First row of the source that consumer row ``y`` needs (may be < 0: padding)."""
        return y * self.stride - self.pad

    def last_row(self, y: int) -> int:
        return y * self.stride - self.pad + self.window - 1


@dataclass(frozen=True)
class RowSchedule:
    nodes: tuple[str, ...]    # the subgraph's layers in topological order
    buffers: dict[str, Buffer]
    edges: tuple[Edge, ...]
    steps: int
    whole_tensors: bool       # no consistent rates: every tensor is held whole

    def buffer_bytes(self) -> int:
        return sum(b.held * b.row_bytes for b in self.buffers.values())

    def buffer_bytes_lower_bound(self) -> int:
        """Row-buffer bytes no superset of the subgraph needs less of: every
        tensor read inside keeps at least ``rate + F - s`` rows for each of
        its consumers (the lag between branches left out), every other
        tensor one row, and a subgraph without consistent rates holds whole
        tensors. Rates only grow as layers join (they stay a solution of the
        smaller set's equations), so the bound never shrinks; the candidate
        enumeration prunes with it."""
        total = 0
        for b in self.buffers.values():
            if not b.consumers or self.whole_tensors:
                total += b.held * b.row_bytes
                continue
            total += min(b.rows, b.rate + b.reach) * b.row_bytes
        return total

    def sources(self, layer: str) -> list[Edge]:
        return [e for e in self.edges if e.consumer == layer]


def _edges_into(pg: PartitionGraph, c: str) -> tuple[Edge, ...]:
    """The edges a layer reads along; they do not depend on the subgraph,
    so they are computed once per graph."""
    cache = pg.memo.setdefault("row_edges", {})
    if c not in cache:
        node = pg.node(c)
        edges = [Edge(u, c, node.window, node.stride, top_padding(node.rows, node.stride, node.window, pg.node(u).rows))
                 for u in pg.graph.predecessors(c)]
        if node.input_bytes:
            edges.append(Edge(node.input_tensor or input_key(c), c, node.window, node.stride, node.input_pad))
        cache[c] = tuple(edges)
    return cache[c]


def _rates(keys: list[str], edges: list[Edge]) -> dict[str, int] | None:
    """Smallest positive integer rates with ``rate_source = stride * rate_consumer``
    on every edge; None when the strides disagree. A rate is kept as a
    numerator and a denominator (products of strides) and compared crosswise."""
    adjacent: dict[str, list[tuple[str, int, int]]] = {k: [] for k in keys}
    for e in edges:
        adjacent[e.consumer].append((e.source, e.stride, 1))
        adjacent[e.source].append((e.consumer, 1, e.stride))
    rate: dict[str, tuple[int, int]] = {}
    for root in keys:
        if root in rate:
            continue
        rate[root] = (1, 1)
        stack = [root]
        while stack:
            k = stack.pop()
            num, den = rate[k]
            for other, times, over in adjacent[k]:
                value = (num * times, den * over)
                if other not in rate:
                    rate[other] = value
                    stack.append(other)
                elif rate[other][0] * value[1] != value[0] * rate[other][1]:
                    return None
    scale = lcm(*(den for _, den in rate.values()))
    scaled = {k: num * (scale // den) for k, (num, den) in rate.items()}
    common = gcd(*scaled.values())
    return {k: r // common for k, r in scaled.items()}


def row_schedule(pg: PartitionGraph, nodes: frozenset) -> RowSchedule:
    order = tuple(sorted(nodes, key=pg.position.__getitem__))
    edges = [e for c in order for e in _edges_into(pg, c)]
    rows, row_bytes = {}, {}
    for v in order:
        rows[v], row_bytes[v] = pg.node(v).rows, pg.node(v).row_bytes
    for e in edges:
        if e.source not in nodes:
            if e.source in pg.graph:
                rows[e.source], row_bytes[e.source] = pg.node(e.source).rows, pg.node(e.source).row_bytes
            else:  # the network input of e.consumer
                n = pg.node(e.consumer)
                rows[e.source], row_bytes[e.source] = n.input_bytes // n.input_row_bytes, n.input_row_bytes
    keys = list(rows)
    consumers: dict[str, list[Edge]] = {k: [] for k in keys}
    for e in edges:
        consumers[e.source].append(e)
    rate = _rates(keys, edges)
    whole = rate is None
    delay: dict[str, int] = {}
    held: dict[str, int] = {}
    producers_last = [k for k in keys if k not in nodes]  # fetched tensors come after their consumers
    for k in [*reversed(order), *producers_last]:
        reads = consumers[k]
        if not reads:
            delay[k], held[k] = 0, 1
        elif whole:
            delay[k], held[k] = 0, rows[k]
        else:
            delay[k] = max(e.stride * (delay[e.consumer] - 1) + e.window - e.pad for e in reads)
            lowest = min(e.stride * delay[e.consumer] - e.pad for e in reads)
            held[k] = min(rows[k], rate[k] + delay[k] - lowest)
    if whole:
        rate = dict(rows)
    steps = max(1, *(-(-(rows[k] - delay[k]) // rate[k]) for k in keys))
    buffers = {k: Buffer(k, rows[k], row_bytes[k], rate[k], delay[k], held[k],
                         tuple(e.consumer for e in consumers[k]), k not in nodes,
                         max((e.window - e.stride for e in consumers[k]), default=0)) for k in keys}
    return RowSchedule(order, buffers, tuple(edges), steps, whole)
