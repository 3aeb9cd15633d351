"""Functional model of a graph partition: run it on random tensors.

Every subgraph runs on chip by its row schedule
(``formulations/partition/schedule.py``), row by row with numpy:

- **Buffers as the model sizes them.** Each tensor a subgraph touches has a
  row buffer of the rows the cost model gives it. A row enters when it is
  computed (or fetched from DRAM) and leaves once no consumer in the
  subgraph will read it again. A full buffer takes no new row until one
  leaves (back-pressure, as a hardware FIFO would stall its producer).
- **Order.** Steps run one after another. Within a step, rounds visit the
  fetched tensors and then the layers in topological order; each makes its
  next row if it is still short of its target for the step, its buffer has
  room, and every row its window reads is on chip. A step that ends short
  of its targets while a buffer is full means the model's buffers are too
  small: ``BufferOverflow``. Short for any other reason, or a row read that
  is not on chip, is a ``ScheduleError``.
- **DRAM.** Weights are read once per subgraph, every row fetched counts
  its bytes, every row of a layer whose output leaves the subgraph (or the
  network) is written once. A lone layer that streams its weights runs once
  per group of output channels, reading its input again each time or
  keeping the whole input on chip, as ``execution`` chose.

The outputs written to DRAM are compared with the layers computed whole,
one after another (``layer_rows.layer_output``), and the bytes counted per
subgraph with the cost model's EMA. docs/partition.md, "The functional
model", says what is counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import networkx as nx
import numpy as np

from ...formulations.partition.cost import DEFAULT_MACHINE, Machine, execution
from ...formulations.partition.graph import FLATTENING_OPS, SHARED_INPUT, PartitionGraph, input_key
from ...formulations.partition.schedule import RowSchedule, row_schedule
from .blas import single_threaded_blas
from .layer_rows import DTYPE, LayerShape, check_sources, layer_output, layer_row, layer_weights


MAX_VALUES = 200_000_000
"""Most float32 values (weights, inputs, and every output twice: the
reference and the DRAM copy) the model allocates, about 800 MB: VGG-16's
fc layers fit, absurd graphs are refused before anything is allocated."""
MAX_ROWS = 100_000
"""Most output rows, summed over the layers, the model computes one by one
in Python (ResNet-50 has 1,864)."""


def size_refusal(pg: PartitionGraph) -> str | None:
    """Why the model will not run ``pg`` (too many values or rows), or None."""
    values = rows = 0
    for v in pg.order:
        raw = pg.graph.nodes[v].get("layer")
        if raw is None:
            return None  # _Network says what is missing
        d = raw["dims"]
        m, c, p, q = d["M"], d.get("C", d["M"]), d.get("P", 1), d.get("Q", 1)
        weights = m * (c // raw.get("groups", 1)) * d.get("R", 1) * d.get("S", 1) \
            if raw.get("op", "conv2d") in ("conv2d", *FLATTENING_OPS) else 0
        node = pg.node(v)
        values += weights + 2 * d.get("N", 1) * m * p * q + node.input_bytes
        rows += p
    if values > MAX_VALUES:
        return (f"the network holds {values:,} values, more than the functional model's limit of "
                f"{MAX_VALUES:,} (about {4 * MAX_VALUES // 10**6:,} MB)")
    if rows > MAX_ROWS:
        return f"the network has {rows:,} output rows, more than the functional model's limit of {MAX_ROWS:,}"
    return None


class BufferOverflow(ValueError):
    """A buffer had to hold more rows than the cost model gives it."""


class ScheduleError(ValueError):
    """A row was needed before it was made, or after it was dropped."""


@dataclass
class BlockRun:
    layers: list[str]
    counted_ema: int              # bytes moved to and from DRAM, counted
    model_ema: int                # the cost model's EMA of the same subgraph
    peak_rows: dict[str, int]     # most rows each buffer held at once
    held_rows: dict[str, int]     # rows the model gives each buffer (``held_rows``)
    weight_groups: int = 1
    resident_input: bool = False


@dataclass
class PartitionRun:
    blocks: list[BlockRun]
    max_relative_error: float
    wall_time_s: float
    mismatched: list[str] = field(default_factory=list)  # layers whose DRAM output differs from the reference

    @property
    def counted_ema(self) -> int:
        return sum(b.counted_ema for b in self.blocks)

    @property
    def counts_match(self) -> bool:
        return all(b.counted_ema == b.model_ema for b in self.blocks)

    @property
    def passed(self) -> bool:
        return self.counts_match and not self.mismatched


def _source_names(pg: PartitionGraph, layer: str) -> list[str]:
    """The buffers a layer reads, in the order of its ``inputs``."""
    raw = pg.graph.nodes[layer]["layer"]
    names = raw.get("inputs") or list(pg.graph.predecessors(layer)) or ["input"]
    return [(pg.node(layer).input_tensor or input_key(layer)) if name == "input" else name for name in names]


class _Network:
    """Shapes, random inputs and weights of a network, and its reference outputs."""

    def __init__(self, pg: PartitionGraph, seed: int):
        rng = np.random.default_rng(seed)
        missing = [v for v in pg.order if "layer" not in pg.graph.nodes[v]]
        if missing:
            raise ValueError(f"layer {missing[0]} has sizes but no shape: the functional model needs the "
                             "layer descriptions (graphs from from_network or from_layers)")
        self.shape = {v: LayerShape.of(v, pg.graph.nodes[v]["layer"]) for v in pg.order}
        self.tensor_shape: dict[str, tuple[int, int, int]] = {}
        self.inputs: dict[str, np.ndarray] = {}
        self.weights = {}
        for v in pg.order:
            shape, node = self.shape[v], pg.node(v)
            key = node.input_tensor or input_key(v)
            if node.input_bytes and key not in self.inputs:  # a shared network input is made once
                width = shape.input_width() if shape.op in ("conv2d", "pool") else 1
                channels = shape.channels_in if shape.op not in ("add", "concat") else shape.channels_out
                rows = node.input_bytes // node.input_row_bytes
                if key == SHARED_INPUT:  # the smallest region its readers read; the others pad it
                    width = min(self.shape[u].input_width() for u in pg.order
                                if pg.node(u).input_tensor == SHARED_INPUT)
                self.inputs[key] = rng.standard_normal((rows, channels, width), dtype=DTYPE)
                self.tensor_shape[key] = (rows, channels, width)
            sources = [self.tensor_shape[k] for k in _source_names(pg, v)]
            check_sources(shape, sources)
            self.weights[v] = layer_weights(shape, sources, rng)
            self.tensor_shape[v] = (shape.rows, shape.channels_out, shape.width)
        first = pg.order[0]  # the bytes of one value, from a layer's output row (batch 1)
        self.value_bytes = Fraction(pg.node(first).row_bytes, self.shape[first].channels_out * self.shape[first].width)
        self.reference: dict[str, np.ndarray] = {}
        for v in pg.order:
            ins = [self.inputs[k] if k in self.inputs else self.reference[k] for k in _source_names(pg, v)]
            self.reference[v] = layer_output(self.shape[v], ins, self.weights[v])


def held_rows(schedule: RowSchedule, resident_input: bool) -> dict[str, int]:
    """Rows each buffer may hold: the model's, or a whole fetched tensor
    when a lone layer keeps its input on chip."""
    return {k: (b.rows if resident_input and b.external else b.held) for k, b in schedule.buffers.items()}


class _BlockExecutor:
    """Runs one subgraph's row schedule against DRAM, counting bytes."""

    def __init__(self, pg: PartitionGraph, net: _Network, schedule: RowSchedule, dram: dict, block: frozenset):
        self.pg, self.net, self.schedule, self.dram = pg, net, schedule, dram
        self.bytes = Fraction(0)
        self.peak = {k: 0 for k in schedule.buffers}
        self.leaves = {v for v in block
                       if not list(pg.graph.successors(v)) or any(w not in block for w in pg.graph.successors(v))}
        self.edges_of = {v: {e.source: e for e in schedule.sources(v)} for v in schedule.nodes}
        self.readers = {k: [e for e in schedule.edges if e.source == k] for k in schedule.buffers}

    def _tensor_rows(self, key: str) -> int:
        return self.schedule.buffers[key].rows

    def _lowest_needed(self, key: str, produced: dict) -> int:
        lowest = self._tensor_rows(key)
        for e in self.readers[key]:
            if produced[e.consumer] < self.schedule.buffers[e.consumer].rows:
                lowest = min(lowest, max(0, e.first_row(produced[e.consumer])))
        return lowest

    def _store(self, key: str, y: int, row: np.ndarray, live: dict) -> None:
        live[key][y] = row
        self.peak[key] = max(self.peak[key], len(live[key]))

    def _full(self, key: str, live: dict, held: dict) -> bool:
        """A buffer with consumers inside takes no new row while it holds all the rows it has."""
        return bool(self.schedule.buffers[key].consumers) and len(live[key]) >= held[key]

    def _free(self, key: str, live: dict, produced: dict) -> None:
        lowest = self._lowest_needed(key, produced)
        for y in [y for y in live[key] if y < lowest]:
            del live[key][y]

    def _ready(self, v: str, y: int, produced: dict) -> bool:
        for e in self.edges_of[v].values():
            if min(self._tensor_rows(e.source) - 1, e.last_row(y)) >= produced[e.source]:
                return False
        return True

    def _reader(self, key: str, live: dict, consumer: str, y: int):
        def read(i: int) -> np.ndarray:
            if i not in live[key]:
                raise ScheduleError(f"{consumer} row {y} needs row {i} of {key}, which is not on chip")
            return live[key][i]
        return read

    def run(self, channels: slice = slice(None), resident: dict | None = None) -> None:
        """One pass of the schedule, for output channels ``channels``;
        ``resident`` holds fetched tensors kept whole across passes. Bytes
        are counted from the rows moved, as the tensors hold them, not from
        the cost model's row sizes."""
        s, pg, net = self.schedule, self.pg, self.net
        held = held_rows(s, resident is not None)
        live: dict[str, dict[int, np.ndarray]] = {k: {} for k in s.buffers}
        produced = {k: 0 for k in s.buffers}
        if resident is not None:
            for k, rows in resident.items():
                live[k], produced[k] = rows, len(rows)
        fetched = [k for k, b in s.buffers.items() if b.external]
        for step in range(1, s.steps + 1):
            target = {k: b.produced(step) for k, b in s.buffers.items()}
            progress = True
            while progress:
                progress = False
                for k in fetched:
                    if produced[k] < target[k] and not self._full(k, live, held):
                        y = produced[k]
                        tensor = net.inputs[k] if k in net.inputs else self.dram[k]
                        if np.isnan(tensor[y]).any():
                            raise ScheduleError(f"{k} row {y} is read from DRAM before it was written")
                        self.bytes += tensor[y].size * net.value_bytes  # the row as the tensor holds it
                        self._store(k, y, tensor[y], live)
                        produced[k] += 1
                        if resident is None:
                            self._free(k, live, produced)
                        progress = True
                for v in s.nodes:
                    y = produced[v]
                    if y >= target[v] or self._full(v, live, held) or not self._ready(v, y, produced):
                        continue
                    sources = [(self._reader(k, live, v, y), *net.tensor_shape[k][::2], self.edges_of[v][k].pad)
                               for k in _source_names(pg, v)]
                    row = layer_row(net.shape[v], y, sources, net.weights[v], channels)
                    if v in self.leaves:
                        self.dram[v][y, channels] = row
                        self.bytes += row.size * net.value_bytes
                    if s.buffers[v].consumers:
                        self._store(v, y, row, live)
                    produced[v] += 1
                    for k in self.edges_of[v]:
                        if resident is None or not s.buffers[k].external:
                            self._free(k, live, produced)
                    self._free(v, live, produced)
                    progress = True
            short = [k for k in s.buffers if produced[k] < target[k]]
            full = [k for k in short if self._full(k, live, held)]
            if full:
                raise BufferOverflow(f"step {step}: the buffer of {full[0]} is full ({held[full[0]]} rows, as the "
                                     f"cost model sizes it) and the run cannot go on without a larger one")
            if short:
                raise ScheduleError(f"step {step}: {', '.join(short[:3])} cannot make their rows "
                                    "(a row they read is not there)")
        if resident is not None:
            for k in fetched:
                resident[k] = live[k]


def _block_order(pg: PartitionGraph, blocks: list[frozenset]) -> list[frozenset]:
    owner = {v: i for i, b in enumerate(blocks) for v in b}
    quotient = nx.DiGraph()
    quotient.add_nodes_from(range(len(blocks)))
    quotient.add_edges_from((owner[u], owner[v]) for u, v in pg.graph.edges if owner[u] != owner[v])
    return [blocks[i] for i in nx.lexicographical_topological_sort(
        quotient, key=lambda i: min(pg.position[v] for v in blocks[i]))]


def run_partition(pg: PartitionGraph, blocks: list[frozenset], capacity: int, seed: int = 0,
                  rtol: float = 1e-3, objective: str = "ema", machine: Machine = DEFAULT_MACHINE) -> PartitionRun:
    """Run a partition that ``evaluate`` accepts (a lone layer in the
    execution ``objective`` picks); raises ``BufferOverflow`` or
    ``ScheduleError`` when the cost model's buffers or schedule do not
    hold, ValueError for a layer the model cannot compute."""
    start = time.perf_counter()
    refusal = size_refusal(pg)
    if refusal is not None:
        raise ValueError(refusal)
    with single_threaded_blas():
        return _run(pg, blocks, capacity, seed, rtol, objective, machine, start)


def _run(pg: PartitionGraph, blocks: list[frozenset], capacity: int, seed: int, rtol: float, objective: str,
         machine: Machine, start: float) -> PartitionRun:
    net = _Network(pg, seed)
    dram = {v: np.full(net.tensor_shape[v], np.nan, dtype=DTYPE) for v in pg.order}
    runs = []
    for block in _block_order(pg, blocks):
        plan = execution(pg, block, capacity, objective, machine)
        if plan is None:
            raise ValueError(f"a subgraph of {len(block)} layers does not fit {capacity:,} B")
        schedule = row_schedule(pg, block)
        executor = _BlockExecutor(pg, net, schedule, dram, block)
        executor.bytes += sum(pg.node(v).weight_bytes for v in block)
        k = plan.weight_groups
        if k == 1:
            executor.run()
        else:
            (v,) = block
            per_group = net.shape[v].channels_out // k
            resident = {} if plan.resident_input else None
            for g in range(k):
                executor.run(slice(g * per_group, (g + 1) * per_group), resident)
        if executor.bytes.denominator != 1:
            raise ValueError("a streamed row or weight group is not a whole number of bytes")
        runs.append(BlockRun(list(schedule.nodes), int(executor.bytes), plan.ema, executor.peak,
                             held_rows(schedule, plan.resident_input), k, plan.resident_input))
    worst, mismatched = 0.0, []
    for v in pg.order:
        written = dram[v]
        if np.isnan(written).all():
            continue  # stays on chip
        reference = net.reference[v]
        scale = float(np.abs(reference).max()) or 1.0
        error = float(np.nanmax(np.abs(written - reference))) / scale if not np.isnan(written).any() else np.inf
        worst = max(worst, error)
        if error > rtol:
            mismatched.append(v)
    return PartitionRun(runs, worst, time.perf_counter() - start, mismatched)


