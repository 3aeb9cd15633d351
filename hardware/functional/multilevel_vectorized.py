"""Vectorized functional model of a memory hierarchy with a PE array.

The cycle-level model (``multilevel.py``) steps through every MAC and is
limited to small layers. This model executes the same machine for
full-size layers by working on whole tiles and whole loop sequences:

- **Numbers.** The layer is computed tile by tile at the outermost on-chip
  level: for every iteration of the DRAM loops, in the mapping's order, the
  input window, weight tile and output tile are cut from the DRAM arrays by
  their word coordinates, the tile's partial outputs are computed with
  numpy, and added to the partial sums in DRAM. A wrong window, a missing
  or doubled iteration, or a wrong tile shape changes the result, which is
  compared with a direct convolution.
- **Transfers.** For every tensor and every level that holds it (and the
  MAC's operand registers), the loops outside that level are run as index
  arrays in the mapping's order, and the level's tile key (which tile of
  the tensor the level must hold) is computed at every iteration. The level
  is filled whenever the key changes, exactly as a one-tile buffer would
  be; an output tile is drained before every such change and at the end,
  and its first visit starts from zero. The words moved per fill are
  counted from the tile's word coordinates: all distinct words of one
  instance for the writes into it, and for the parent's reads the distinct
  words over all the PEs that one parent instance serves at once
  (multicast; for outputs, the reduction of partial sums that meet at the
  same word).

Tiles are translation-invariant (every tile of a level has the same shape
and all PEs move in step), so one word set per level and tensor serves
every fill; docs/tiling-multilevel.md, "The functional models", gives the
argument and the same counting rules as the cycle-level model. The counts
come from key sequences and coordinate sets, never from the cost model's
formulas; tests compare them with both the cost model and the cycle-level
model.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from ...formulations.tiling.multilevel import DIMS, RELEVANT, MultiLevelMapping, MultiLevelProblem
from .multilevel import MultiLevelReport
from .tiling import random_operands, reference_conv

TENSORS = ("inputs", "weights", "outputs")
CHUNK = 1 << 21
"""Loop iterations per block of index arrays (bounds the memory to tens of MB)."""
MAX_TILE_ITERATIONS = 100_000
"""Most DRAM-level tiles the numeric execution runs through."""


class _Machine:
    """Tile extents, temporal loops and PE offsets of one mapping."""

    def __init__(self, problem: MultiLevelProblem, mapping: MultiLevelMapping):
        layer, hier = problem.layer, problem.hierarchy
        self.layer, self.hier = layer, hier
        self.K, self.pe = len(hier.levels), hier.pe_level
        K, pe = self.K, self.pe
        self.s = {d: mapping.spatial(d) for d in DIMS}
        T = [dict.fromkeys(DIMS, 1) for _ in range(K + 1)]
        for l in range(K - 1, -1, -1):
            T[l] = {d: mapping.factor(l, d) * T[l + 1][d] * (self.s[d] if l + 1 == pe else 1) for d in DIMS}
        self.T = T
        self.extent = dict(T[0])  # the whole layer
        # the block of the iteration space one DRAM-loop iteration covers
        self.block = {d: T[0][d] // mapping.factor(0, d) for d in DIMS}
        # temporal loops per level, outermost first: (dim, trips, stride in index units)
        self.loops = [[(d, mapping.factor(l, d), T[l][d] // mapping.factor(l, d))
                       for d in mapping.levels[l].order if mapping.factor(l, d) > 1] for l in range(K)]
        self.pe_offsets = np.array(list(itertools.product(
            *(range(0, self.s[d] * T[pe][d], T[pe][d]) for d in DIMS))), dtype=np.int64).reshape(-1, len(DIMS))

    def outer_loops(self, level: int) -> list[tuple[str, int, int]]:
        """The temporal loops that lie outside ``level``'s tiles, outermost first."""
        return [loop for l in range(level) for loop in self.loops[l]]

    def instances(self, level: int) -> int:
        return len(self.pe_offsets) if level >= self.pe else 1

    def word_ids(self, tensor: str, level: int, offsets: np.ndarray) -> np.ndarray:
        """Linear ids of the words of ``tensor`` in the level tiles at the given
        index offsets (one row per tile origin, columns in DIMS order)."""
        layer, T = self.layer, self.T[level]
        (sh, sw), (dh, dw) = layer.stride, layer.dilation
        col = {d: i for i, d in enumerate(DIMS)}
        ids = []
        for origin in offsets:
            o = {d: int(origin[col[d]]) for d in DIMS}
            span = {d: np.arange(o[d], o[d] + T[d]) for d in DIMS}
            if tensor == "weights":
                axes = [span["G"], span["M"], span["C"], span["R"], span["S"]]
                shape = (layer.groups, layer.extent("M"), layer.extent("C"), layer.R, layer.S)
            elif tensor == "outputs":
                axes = [span["N"], span["G"], span["M"], span["P"], span["Q"]]
                shape = (layer.N, layer.groups, layer.extent("M"), layer.P, layer.Q)
            else:
                rows = np.unique(np.add.outer(span["P"] * sh, span["R"] * dh))
                cols = np.unique(np.add.outer(span["Q"] * sw, span["S"] * dw))
                axes = [span["N"], span["G"], span["C"], rows, cols]
                shape = (layer.N, layer.groups, layer.extent("C"), layer.input_height, layer.input_width)
            grid = np.meshgrid(*axes, indexing="ij")
            ids.append(np.ravel_multi_index(tuple(g.ravel() for g in grid), shape))
        return np.concatenate(ids)


def _key_runs(machine: _Machine, tensor: str, level: int) -> tuple[int, int]:
    """(fills, distinct tiles): how often ``level``'s tile key of ``tensor``
    changes over the loops outside the level (the first tile counts), and
    how many different tiles it visits."""
    loops = machine.outer_loops(level)
    T = machine.T[level]
    relevant = [i for i, (d, _, _) in enumerate(loops) if d in RELEVANT[tensor]]
    if not relevant:
        return 1, 1
    trips = np.array([f for _, f, _ in loops], dtype=np.int64)
    n = int(np.prod(trips))
    inner = np.array([int(np.prod(trips[i + 1:])) for i in range(len(loops))], dtype=np.int64)
    # the tile key: per relevant dimension, the tile index along it, mixed-radix combined
    extent = {d: machine.extent[d] // T[d] for d in DIMS}
    key_dims = [d for d in DIMS if d in RELEVANT[tensor]]
    radix = {}
    weight = 1
    for d in reversed(key_dims):
        radix[d] = weight
        weight *= extent[d]
    seen = np.zeros(weight, dtype=bool)
    fills, last = 0, None
    for start in range(0, n, CHUNK):
        step = np.arange(start, min(n, start + CHUNK), dtype=np.int64)
        key = np.zeros_like(step)
        for i in relevant:
            d, f, stride = loops[i]
            key += ((step // inner[i]) % f) * (stride // T[d]) * radix[d]
        changes = int(np.count_nonzero(key[1:] != key[:-1]))
        fills += changes + (1 if last is None or key[0] != last else 0)
        last = key[-1]
        seen[key] = True
    return fills, int(np.count_nonzero(seen))


def _execute(machine: _Machine, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Run the layer tile by tile over the DRAM loops; partial sums in DRAM."""
    layer, T = machine.layer, machine.block
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    loops = machine.outer_loops(1)
    out = np.zeros((layer.N, layer.groups, layer.extent("M"), layer.P, layer.Q))
    rows_local = np.unique(np.add.outer(np.arange(T["P"]) * sh, np.arange(T["R"]) * dh))
    cols_local = np.unique(np.add.outer(np.arange(T["Q"]) * sw, np.arange(T["S"]) * dw))
    # where each (p, r) and (q, s) tap lies in the tile's input window
    row_at = np.searchsorted(rows_local, np.add.outer(np.arange(T["P"]) * sh, np.arange(T["R"]) * dh))
    col_at = np.searchsorted(cols_local, np.add.outer(np.arange(T["Q"]) * sw, np.arange(T["S"]) * dw))
    trips = [f for _, f, _ in loops]
    if math.prod(trips) > MAX_TILE_ITERATIONS:
        raise ValueError(f"{math.prod(trips):,} DRAM-level tiles; the vectorized model stops at {MAX_TILE_ITERATIONS:,}")
    for counters in itertools.product(*(range(f) for f in trips)):
        o = dict.fromkeys(DIMS, 0)
        for (d, _, stride), c in zip(loops, counters, strict=True):
            o[d] += c * stride
        sl = {d: slice(o[d], o[d] + T[d]) for d in DIMS}
        rows = rows_local + o["P"] * sh + o["R"] * dh
        cols = cols_local + o["Q"] * sw + o["S"] * dw
        window = inputs[sl["N"], sl["G"], sl["C"]][:, :, :, rows][:, :, :, :, cols]
        # patches[n, g, c, p, r, q, s] = the input word that tap (r, s) of output (p, q) reads
        patches = window[:, :, :, row_at][:, :, :, :, :, col_at]
        w = weights[sl["G"], sl["M"], sl["C"], sl["R"], sl["S"]]
        out[sl["N"], sl["G"], sl["M"], sl["P"], sl["Q"]] += np.einsum("ngcprqs,gmcrs->ngmpq", patches, w,
                                                                       optimize=True)
    return out


def run_multilevel_vectorized(problem: MultiLevelProblem, mapping: MultiLevelMapping,
                              seed: int = 0) -> MultiLevelReport:
    """Execute ``mapping`` on random integers and count every level's reads and writes."""
    start = time.perf_counter()
    machine = _Machine(problem, mapping)
    hier, K, pe = problem.hierarchy, machine.K, machine.pe
    reads = [dict.fromkeys(TENSORS, 0) for _ in range(K)]
    writes = [dict.fromkeys(TENSORS, 0) for _ in range(K)]
    origin = np.zeros((1, len(DIMS)), dtype=np.int64)
    for tensor in TENSORS:
        for level in [l for l in range(1, K) if tensor in hier.levels[l].holds] + [K]:
            parent = hier.holder_above(level, tensor)
            fills, distinct = _key_runs(machine, tensor, level)
            own = len(machine.word_ids(tensor, level, origin))  # words of one instance's tile
            if level < pe or parent >= pe:  # each instance has its own parent instance
                served = machine.instances(level) * own
            else:  # one shared parent instance serves all PEs at once
                served = len(np.unique(machine.word_ids(tensor, level, machine.pe_offsets)))
            if tensor != "outputs":
                reads[parent][tensor] += fills * served
                if level < K:
                    writes[level][tensor] += fills * machine.instances(level) * own
            else:
                refills = fills - distinct  # a first visit starts from zero, later ones read partial sums
                reads[parent][tensor] += refills * served
                writes[parent][tensor] += fills * served  # every tile is drained once per fill
                if level < K:
                    writes[level][tensor] += refills * served
                    reads[level][tensor] += fills * machine.instances(level) * own
    inputs, weights = random_operands(problem.layer, seed)
    result = _execute(machine, inputs, weights)
    reference = reference_conv(problem.layer, inputs, weights)
    cycles = math.prod(f for loops in machine.loops for _, f, _ in loops)
    return MultiLevelReport(
        outputs_match=bool(np.array_equal(result, reference)),
        reads=reads, writes=writes, cycles=cycles,
        max_abs_error=float(np.max(np.abs(result - reference))),
        wall_time_s=time.perf_counter() - start,
    )
