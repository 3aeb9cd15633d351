"""Vectorized functional model of a memory hierarchy with a PE array.

The cycle-level model (``multilevel.py``) steps through every MAC and is
limited to small layers. This model executes the same machine for
full-size layers by working on whole tiles and whole loop sequences, with
no limit on the number of tiles:

- **Numbers.** The DRAM loops split the iteration space into blocks of the
  same shape, one per DRAM-level tile. Each tile's partial outputs are the
  contraction of its input window (the input rows and columns the on-chip
  tile holds, then each tap's word within them) with its weight tile, added
  to the partial sums in DRAM. The tiles are the product of the DRAM loops'
  counters, and every loop moves the tile along one dimension, so their
  origins are the product of one origin list per dimension. All tiles are
  therefore executed together, as one contraction over (DRAM tile, position
  in the tile) per dimension, in chunks of bounded size, and scattered into
  DRAM by word coordinates with an accumulating add. On integers (exact in
  float64) this is the sum the tile-by-tile execution computes, in another
  order. A wrong window, a missing or doubled tile, or a wrong tile shape
  changes the result, which is compared with a direct convolution.
- **Transfers.** For every tensor and every level that holds it (and the
  MAC's operand registers), the loops outside that level are run as index
  arrays in the mapping's order, and the level's tile key (which tile of
  the tensor the level must hold) is computed at every iteration. The level
  is filled whenever the key changes, exactly as a one-tile buffer would
  be (MAC units without operand latches, ``latches: false``, in every
  iteration); an output tile is drained before every such change and at the end,
  and its first visit starts from zero. The words moved per fill are
  counted from the tile's word coordinates: all distinct words of one
  instance for the writes into it, and for the parent's reads the distinct
  words over all the instances of the fan-outs between that one parent
  instance serves at once (multicast; for outputs, the reduction of partial
  sums that meet at the same word), once per instance of the fan-outs
  whose network cannot share them.

Tiles are translation-invariant (every tile of a level has the same shape
and all PEs move in step), so one word set per level and tensor serves
every fill; docs/tiling-multilevel.md, "The functional models", gives the
argument, why the aggregated execution is exact, and the same counting
rules as the cycle-level model.

That holds for divisor mappings. When the factors of a dimension multiply
to more than its extent, the loops run over a nominal grid clipped to the
layer: units past the layer are idle, tiles are cut, and each instance has
its own fills. The numeric execution then drops the positions past the
layer, and the transfers are counted per class of instances that are idle
and cut in the same iterations (``_clipped_transfers``);
docs/functional-model.md, "Partial last tiles", describes both. The counts come from key sequences and
coordinate sets, never from the cost model's formulas; tests compare them
with both the cost model and the cycle-level model.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from ...formulations.tiling.multilevel.problem import (DIMS, RELEVANT, MultiLevelMapping, MultiLevelProblem,
                                                       kept_problem, layer_extent)
from ...formulations.tiling.problem import ConvLayer
from .multilevel import MultiLevelReport
from .tiling import random_operands, reference_conv, too_many_macs

TENSORS = ("inputs", "weights", "outputs")
CHUNK = 1 << 21
"""Loop iterations per block of key arrays (bounds the memory to tens of MB)."""
NUMERIC_CHUNK_WORDS = 1 << 22
"""Words (input patches + weights + partial outputs) per chunk of the numeric
execution: about 32 MB of float64 each, whatever the number of tiles."""
MAX_TENSOR_BYTES = 4 << 30
"""Most bytes the layer's whole tensors may take (float64 operands, the DRAM
outputs, the reference and the output-tile visit marks). Beyond it the model
does not run; this is a memory guard, not a limit on tiles or iterations."""


class _Machine:
    """Tile extents, temporal loops and PE offsets of one mapping.

    Everything here is in index units of the loop nest (M and C per group);
    word coordinates are derived from it by the tensors' index maps.
    """

    def __init__(self, problem: MultiLevelProblem, mapping: MultiLevelMapping):
        layer, hier = problem.layer, problem.hierarchy
        self.layer, self.hier = layer, hier
        self.K = len(hier.levels)
        K = self.K
        self.spread = [{d: mapping.fanout(f).factor(d) for d in DIMS} for f in range(len(hier.fanouts))]
        T = [dict.fromkeys(DIMS, 1) for _ in range(K + 1)]
        for l in range(K - 1, -1, -1):
            T[l] = {d: mapping.factor(l, d) * T[l + 1][d] for d in DIMS}
            for f, fan in enumerate(hier.fanouts):
                if fan.level == l + 1:
                    T[l] = {d: T[l][d] * self.spread[f][d] for d in DIMS}
        self.T = T
        self.extent = dict(T[0])  # the nominal grid the loops run over
        self.size = {d: layer_extent(layer, d) for d in DIMS}  # the layer
        # partial last tiles: the grid runs past the layer in some dimension and is clipped to it
        self.clipped = any(T[0][d] > self.size[d] for d in DIMS)
        # the block of the iteration space one DRAM-loop iteration covers
        self.block = {d: T[0][d] // mapping.factor(0, d) for d in DIMS}
        # temporal loops per level, outermost first: (dim, trips, stride in index units)
        self.loops = [[(d, mapping.factor(l, d), T[l][d] // mapping.factor(l, d))
                       for d in mapping.levels[l].order if mapping.factor(l, d) > 1] for l in range(K)]

    def offsets(self, fanouts) -> np.ndarray:
        """Index offsets of the instances of ``fanouts`` (fan-out indices)
        within one instance of the level above them, one row per instance."""
        out = np.zeros((1, len(DIMS)), dtype=np.int64)
        for f in fanouts:
            step = self.T[self.hier.fanouts[f].level]
            grid = np.array(list(itertools.product(*(range(0, self.spread[f][d] * step[d], step[d]) for d in DIMS))),
                            dtype=np.int64).reshape(-1, len(DIMS))
            out = (out[:, None, :] + grid[None, :, :]).reshape(-1, len(DIMS))
        return out

    def outer_loops(self, level: int) -> list[tuple[str, int, int]]:
        """The temporal loops that lie outside ``level``'s tiles, outermost first."""
        return [loop for l in range(level) for loop in self.loops[l]]

    def dram_tiles(self) -> int:
        """How many DRAM-level tiles (iterations of the DRAM loops) the mapping runs."""
        return math.prod(f for _, f, _ in self.outer_loops(1))

    def instances(self, level: int) -> int:
        """Instances of ``level``: one per point of the fan-outs above it."""
        return math.prod(math.prod(self.spread[f].values()) for f in self.hier.fanouts_above(level))

    def word_ids(self, tensor: str, level: int, offsets: np.ndarray, clip: bool = False) -> np.ndarray:
        """Linear ids of the words of ``tensor`` in the level tiles at the given
        index offsets (one row per tile origin, columns in DIMS order); with
        ``clip``, each tile's range is cut to the layer along every dimension."""
        T = self.T[level]
        col = {d: i for i, d in enumerate(DIMS)}
        inside = len(offsets) > 1 and all(offsets[:, col[d]].max() + T[d] <= self.size[d] for d in DIMS)
        if not clip and inside:
            # an unclipped tile is the one at the origin shifted: a word's linear id is linear in its
            # indices, so every tile's ids are the origin tile's plus the id of its shift
            local = self.span_ids(tensor, {d: np.arange(T[d]) for d in DIMS})
            return (self.shift_ids(tensor, offsets)[:, None] + local[None, :]).ravel()
        ids = []
        for origin in offsets:
            o = {d: int(origin[col[d]]) for d in DIMS}
            ids.append(self.span_ids(tensor, {d: np.arange(o[d], min(o[d] + T[d], self.size[d]) if clip
                                                           else o[d] + T[d]) for d in DIMS}))
        return np.concatenate(ids)

    def shape(self, tensor: str) -> tuple[int, ...]:
        """The axes of ``tensor``'s words, whose order the linear ids follow:
        (G, M, C, R, S), (N, G, M, P, Q) or (N, G, C, rows, columns)."""
        layer = self.layer
        if tensor == "weights":
            return (layer.groups, layer.extent("M"), layer.extent("C"), layer.R, layer.S)
        if tensor == "outputs":
            return (layer.N, layer.groups, layer.extent("M"), layer.P, layer.Q)
        return (layer.N, layer.groups, layer.extent("C"), layer.input_height, layer.input_width)

    def shift_ids(self, tensor: str, offsets: np.ndarray) -> np.ndarray:
        """What moving a tile of ``tensor`` by each row of ``offsets`` (index
        offsets in DIMS order) adds to the linear ids of its words."""
        (sh, sw), (dh, dw) = self.layer.stride, self.layer.dilation
        at = {d: offsets[:, i].astype(np.int64) for i, d in enumerate(DIMS)}
        coords = {"weights": lambda: [at["G"], at["M"], at["C"], at["R"], at["S"]],
                  "outputs": lambda: [at["N"], at["G"], at["M"], at["P"], at["Q"]],
                  "inputs": lambda: [at["N"], at["G"], at["C"], at["P"] * sh + at["R"] * dh,
                                     at["Q"] * sw + at["S"] * dw]}[tensor]()
        shape = self.shape(tensor)
        strides = [math.prod(shape[k + 1:]) for k in range(len(shape))]
        return sum(c * stride for c, stride in zip(coords, strides, strict=True))

    def span_ids(self, tensor: str, span: dict[str, np.ndarray]) -> np.ndarray:
        """Linear ids of the words of ``tensor`` that the index ranges ``span`` (per dimension) touch."""
        (sh, sw), (dh, dw) = self.layer.stride, self.layer.dilation
        if tensor == "weights":
            axes = [span["G"], span["M"], span["C"], span["R"], span["S"]]
        elif tensor == "outputs":
            axes = [span["N"], span["G"], span["M"], span["P"], span["Q"]]
        else:
            rows = np.unique(np.add.outer(span["P"] * sh, span["R"] * dh))
            cols = np.unique(np.add.outer(span["Q"] * sw, span["S"] * dw))
            axes = [span["N"], span["G"], span["C"], rows, cols]
        grid = np.meshgrid(*axes, indexing="ij")
        return np.ravel_multi_index(tuple(g.ravel() for g in grid), self.shape(tensor))


def _outer_sum(steps: list[np.ndarray]) -> np.ndarray:
    """All sums ``steps[0][i0] + steps[1][i1] + ...`` with the last index
    running fastest: the key of every iteration of a loop nest whose loops
    add ``steps[k][i]`` to the key on their ``i``-th trip."""
    total = np.zeros(1, dtype=np.int64)
    for step in steps:
        total = np.add.outer(total, step).ravel()
    return total


def _key_runs(machine: _Machine, tensor: str, level: int, distinct: bool = True) -> tuple[int, int]:
    """Fills and distinct tiles of ``level``'s tile of ``tensor``.

    Parameters
    ----------
    machine : _Machine
        The mapping's tiles and loops.
    tensor : str
        ``inputs``, ``weights`` or ``outputs``.
    level : int
        A level that holds ``tensor``, or ``K`` for the MAC's registers.
    distinct : bool
        Whether to count the distinct tiles (only outputs need them; the
        count marks every key, so it costs one byte per tile of the level).

    Returns
    -------
    tuple of int
        How often the tile key changes over the loops outside the level, in
        the mapping's order (the first tile counts), and how many different
        tiles it visits (1 when ``distinct`` is false).

    Notes
    -----
    The key is a linear function of the loop counters, so the sequence is
    built as outer sums of per-loop steps instead of decoding every
    iteration. Three exact shortcuts keep it fast without a cap:

    - innermost loops that do not index the tensor keep the key for all
      their trips; they lengthen runs and never start one, so they are
      dropped;
    - outermost loops that do not index the tensor replay the same sequence
      ``repeat`` times; the runs are ``repeat`` times those of one replay,
      minus one per junction where the last key equals the first;
    - the rest is split into an inner block of at most ``CHUNK`` iterations
      and the outer iterations; every outer iteration adds a constant to
      the inner block's keys, which changes no equality inside the block,
      so only the junctions between consecutive blocks are compared anew.
    """
    loops = machine.outer_loops(level)
    T, relevant = machine.T[level], RELEVANT[tensor]
    while loops and loops[-1][0] not in relevant:
        loops = loops[:-1]
    repeat = 1
    while loops and loops[0][0] not in relevant:
        repeat *= loops[0][1]
        loops = loops[1:]
    if not loops:
        return 1, 1
    # the tile key: per relevant dimension, the tile index along it, mixed-radix combined
    tiles = {d: machine.extent[d] // T[d] for d in DIMS}
    radix, weight = {}, 1
    for d in reversed([d for d in DIMS if d in relevant]):
        radix[d] = weight
        weight *= tiles[d]
    # every trip of a loop moves by its stride, a whole number of this level's tiles
    steps = [np.arange(f, dtype=np.int64) * (stride // T[d] * radix[d] if d in relevant else 0)
             for d, f, stride in loops]
    split, size = len(loops) - 1, loops[-1][1]
    while split > 0 and size * loops[split - 1][1] <= CHUNK:
        split -= 1
        size *= loops[split][1]
    inner, outer = _outer_sum(steps[split:]), _outer_sum(steps[:split])
    runs = 1 + len(outer) * int(np.count_nonzero(inner[1:] != inner[:-1])) \
        + int(np.count_nonzero(outer[1:] + inner[0] != outer[:-1] + inner[-1]))
    fills = repeat * runs - (repeat - 1) * int(outer[-1] + inner[-1] == outer[0] + inner[0])
    if not distinct:
        return fills, 1
    seen = np.zeros(weight, dtype=bool)
    batch = max(1, CHUNK // len(inner))
    for start in range(0, len(outer), batch):
        seen[np.add.outer(outer[start:start + batch], inner).ravel()] = True
    return fills, int(np.count_nonzero(seen))


CLIPPED_CHUNK = 1 << 17
"""Loop iterations per block when a clipped mapping's key sequences are decoded."""
CLIPPED_MAX_ITERATIONS = 1 << 25
"""Most loop iterations (summed over the classes of instances) the model
follows for one level and tensor of a clipped mapping; every fill is kept
until the drains are matched to it, so this bounds the memory."""


def _instance_grid(machine: _Machine, fanouts, tensor: str) -> tuple[np.ndarray, np.ndarray]:
    """The instances of ``fanouts`` (fan-out indices, outermost first) within
    one instance of the level above them: their index offsets (one row per
    instance, columns in DIMS order) and the copy of a transfer of ``tensor``
    each takes (its indices on the fan-outs whose network cannot share
    ``tensor``, as one number)."""
    offsets, copy = np.zeros((1, len(DIMS)), dtype=np.int64), np.zeros(1, dtype=np.int64)
    for f in fanouts:
        step = np.array([machine.T[machine.hier.fanouts[f].level][d] for d in DIMS], dtype=np.int64)
        grid = np.array(list(itertools.product(*(range(machine.spread[f][d]) for d in DIMS))),
                        dtype=np.int64).reshape(-1, len(DIMS)) * step
        offsets = (offsets[:, None, :] + grid[None, :, :]).reshape(-1, len(DIMS))
        if machine.hier.fanouts[f].shares(tensor):
            copy = np.repeat(copy, len(grid))
        else:
            copy = (copy[:, None] * len(grid) + np.arange(len(grid))[None, :]).ravel()
    return offsets, copy


@dataclass
class _ClippedRun:
    """How the output tiles of one level come and go on a clipped grid, as
    the level below needs it: the length of the level's loop sequence, the
    class of each of its instances (in the order of the fan-outs above it)
    and, per class, the iterations at which its tile leaves (sorted)."""

    depth: int
    class_of: np.ndarray
    leaves: list[np.ndarray]


def _groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal entries of a 1-D integer array, by one stable sort: where each
    distinct value first occurs, how often it occurs (both in increasing
    order of the values) and, per entry, the index of its value."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(np.concatenate([[True], ordered[1:] != ordered[:-1]])) - 1
    return order[starts], np.diff(np.append(starts, len(values))), inverse


def _pack(table: np.ndarray) -> np.ndarray | None:
    """One integer per column of a small non-negative integer table, equal
    exactly when the columns are (None when it does not fit in 62 bits)."""
    base = int(table.max()) + 1 if table.size else 1
    if base ** len(table) >= 2 ** 62:
        return None
    packed = np.zeros(table.shape[1], dtype=np.int64)
    for row in table:
        packed = packed * base + row
    return packed


def _combinations(times: list[np.ndarray], codes: list[np.ndarray]):
    """The distinct combinations of codes (one per class, 0 when it has no
    event) over the iterations at which some class has an event (each
    class's iterations sorted and distinct): yields each combination, how
    many iterations have it and the first of them."""
    at = times[0] if len(times) == 1 else np.sort(np.concatenate(times))
    if not len(at):
        return
    at = at[np.concatenate([[True], at[1:] != at[:-1]])]
    table = np.zeros((len(times), len(at)), dtype=np.int64)
    for row, (t, c) in enumerate(zip(times, codes, strict=True)):
        table[row, np.searchsorted(at, t)] = c
    packed = _pack(table)
    if packed is not None:
        first, counts, _ = _groups(packed)
    else:
        _, first, counts = np.unique(table, axis=1, return_index=True, return_counts=True)
    for f, c in zip(first, counts, strict=True):
        yield tuple(int(x) for x in table[:, f]), int(c), int(at[f])


def _clipped_transfers(machine: _Machine, tensor: str, level: int, parent: int,
                       above: _ClippedRun | None = None) -> tuple[dict[str, int], _ClippedRun]:
    """Words moved between ``level`` and ``parent`` for ``tensor`` on a clipped grid.

    Parameters
    ----------
    machine : _Machine
        The mapping's tiles and loops (``machine.clipped``).
    tensor : str
        ``inputs``, ``weights`` or ``outputs``.
    level : int
        A level that holds ``tensor``, or ``K`` for the MAC's registers.
    parent : int
        The nearest level above ``level`` that holds ``tensor``.
    above : _ClippedRun or None
        For outputs below an on-chip parent: when the parent's tiles leave.

    Returns
    -------
    dict
        ``own``: the words of all fills of all instances of ``level`` (what
        it receives of inputs and weights, or drains of outputs);
        ``served``: the parent's reads of inputs and weights, per copy
        (multicast); ``refilled``: the partial sums read back for output
        tiles visited before, once per parent instance and word;
        ``drained``: the partial sums written into the parent, once per
        parent instance, copy (reduction) and word.
    _ClippedRun
        When this level's output tiles leave, for the level below.

    Notes
    -----
    An instance of ``level`` is needed in an iteration of the loops outside
    it when its tile has a word inside the layer in every dimension; along
    each dimension that is ``b + o < n``, with ``b`` the loops' position and
    ``o`` the instance's offset, both in tiles, and ``n`` the number of
    tiles that reach into the layer. It is filled when it is needed and its
    key differs from the one it holds, or it holds nothing because its
    parent's output tile left since (taking this one along). So each
    instance has its own fills. Instances fall into classes that are
    needed, and hold a partial last tile, in the same iterations (along
    each dimension, how many positions ``b`` keep them inside the layer and
    whether the last of those is the partial tile; for outputs, also the
    class of the parent instance); each class runs the key sequence once.

    The words a parent instance moves at one moment depend only on which of
    its children move, where their tiles lie relative to each other and
    which of them are cut short: shifting all of them together shifts every
    word coordinate by the same amount. So every event of a class gets a
    code (the shape of the tile it fills or drains, and for a drain where
    that tile lies relative to the moment of the drain), the codes of the
    classes under a parent instance are counted as combinations, and each
    distinct combination is measured once on real word coordinates.
    """
    hier, rel = machine.hier, RELEVANT[tensor]
    outputs = tensor == "outputs"
    T, size = machine.T[level], machine.size
    col = {d: i for i, d in enumerate(DIMS)}
    keyed = [d for d in DIMS if d in rel]
    tile = np.array([T[d] for d in DIMS], dtype=np.int64)
    n = {d: -(-size[d] // T[d]) for d in DIMS}  # tiles that reach into the layer
    part = {d: size[d] - (n[d] - 1) * T[d] for d in DIMS}  # extent of the last of them
    # the loops outside the level, in tiles; innermost loops that do not index the tensor never start a
    # run, except at MAC units without latches, which fetch in every iteration they are needed
    every = hier.fetches_every_trip(level)
    loops = [(d, f, stride // T[d]) for d, f, stride in machine.outer_loops(level)]
    while loops and loops[-1][0] not in rel and not every:
        loops.pop()
    trips = [f for _, f, _ in loops]
    total = math.prod(trips)
    inner = [math.prod(trips[k + 1:]) for k in range(len(loops))]
    positions = {d: np.unique(_outer_sum([np.arange(f, dtype=np.int64) * step for e, f, step in loops if e == d]))
                 for d in DIMS}

    def decode(index: np.ndarray) -> dict[str, np.ndarray]:
        """Per dimension, the position in tiles of the loop iterations ``index``."""
        b = {d: np.zeros(len(index), dtype=np.int64) for d in DIMS}
        for k, (d, f, step) in enumerate(loops):
            b[d] += index // inner[k] % f * step
        return b

    # instances (parent instance, child) with their offsets in tiles, and their classes
    parent_off, _ = _instance_grid(machine, hier.fanouts_above(parent), tensor)
    child_off, copy = _instance_grid(machine, hier.fanouts_between(parent, level), tensor)
    offset = (parent_off[:, None, :] + child_off[None, :, :]) // tile
    count = np.stack([np.searchsorted(positions[d], n[d] - offset[..., col[d]]) for d in DIMS], axis=-1)
    short = np.zeros_like(count)  # the last position inside the layer holds the partial tile
    for d in keyed:
        if part[d] < T[d]:
            c = count[..., col[d]]
            short[..., col[d]] = (c > 0) & (positions[d][np.maximum(c - 1, 0)] == n[d] - 1 - offset[..., col[d]])
    features = [count, short]
    if above is not None:
        features.append(np.broadcast_to(above.class_of[:, None, None], count.shape[:2] + (1,)))
    rows, class_of = np.unique(np.concatenate(features, axis=-1).reshape(count.shape[0] * count.shape[1], -1),
                               axis=0, return_inverse=True)
    class_of = class_of.reshape(count.shape[:2])
    members = np.bincount(class_of.ravel(), minlength=len(rows))
    active = [t for t in range(len(rows)) if rows[t][:len(DIMS)].min() > 0]
    scale = math.prod(trips[above.depth:]) if above is not None else 1  # iterations per parent iteration

    # the fills of every class, block by block
    bounded = [d for d in DIMS if any(rows[t][col[d]] < len(positions[d]) or rows[t][len(DIMS) + col[d]]
                                      for t in active)]
    radix, weight = {}, 1
    for d in reversed(keyed):
        radix[d] = weight
        weight *= int(positions[d][-1]) + 1
    if total * len(active) > CLIPPED_MAX_ITERATIONS:
        name = hier.levels[level].name if level < machine.K else "the MACs"
        raise ValueError(f"partial tiles: the loops outside {name} run {total:,} iterations for {len(active)} "
                         f"classes of instances ({tensor}); the vectorized model follows mappings with partial "
                         f"tiles up to {CLIPPED_MAX_ITERATIONS:,}")
    parent_leaves = {t: above.leaves[rows[t][-1]] * scale if above is not None else np.zeros(0, dtype=np.int64)
                     for t in active}
    visited = {t: np.zeros(weight, dtype=bool) for t in active} if outputs else {}  # output tiles visited
    found = {t: [] for t in active}  # per class and block: fill iterations, shapes, first visits
    last = dict.fromkeys(active)  # per class: key and iteration of its last needed iteration
    for start in range(0, total, CLIPPED_CHUNK):
        index = np.arange(start, min(total, start + CLIPPED_CHUNK), dtype=np.int64)
        b = decode(index)
        rank = {d: np.searchsorted(positions[d], b[d]) for d in bounded}
        key = sum((b[d] * radix[d] for d in keyed), np.zeros(len(index), dtype=np.int64))
        for t in active:
            limit, cut = rows[t][:len(DIMS)], rows[t][len(DIMS):2 * len(DIMS)]
            needed = np.ones(len(index), dtype=bool)
            for d in bounded:
                if limit[col[d]] < len(positions[d]):
                    needed &= rank[d] < limit[col[d]]
            at = np.flatnonzero(needed)
            if not len(at):
                continue
            keys = key[at]
            change = np.empty(len(at), dtype=bool)
            change[1:] = keys[1:] != keys[:-1]
            change[0] = last[t] is None or keys[0] != last[t][0]
            if every:
                change[:] = True
            leaves = parent_leaves[t]
            if len(leaves):  # the parent's tile left since the last needed iteration: this one left with it
                gone = np.searchsorted(leaves, at + start, side="right")  # parent's tiles gone so far
                change[1:] |= gone[1:] > gone[:-1]
                if last[t] is not None:
                    change[0] |= gone[0] > np.searchsorted(leaves, last[t][1], side="right")
            last[t] = (keys[-1], at[-1] + start)
            fills = at[change]
            if not len(fills):
                continue
            shape = np.zeros(len(fills), dtype=np.int16)
            for d in bounded:
                if cut[col[d]]:
                    shape |= (rank[d][fills] == limit[col[d]] - 1).astype(np.int16) << col[d]
            fresh = np.zeros(len(fills), dtype=bool)  # a tile not visited before starts from zero
            if outputs:
                keys = keys[change]
                first = _groups(keys)[0]
                fresh[first[~visited[t][keys[first]]]] = True
                visited[t][keys] = True
            found[t].append((fills + start, shape, fresh))

    shapes: dict[int, int] = {}

    def words_of(shape: int) -> int:
        """Words of one tile of the given shape (bit ``d``: cut short along ``DIMS[d]``)."""
        if shape not in shapes:
            shapes[shape] = len(machine.span_ids(tensor, {d: np.arange(part[d] if shape >> col[d] & 1 else T[d])
                                                          for d in DIMS}))
        return shapes[shape]

    def where(index: np.ndarray) -> np.ndarray:
        """Positions in tiles along the relevant dimensions of the iterations ``index``, one row each."""
        b = decode(index)
        return np.stack([b[d] for d in keyed], axis=-1)

    out = dict.fromkeys(("own", "served", "refilled", "drained"), 0)
    events = {t: {} for t in active}  # per class and kind of transfer: (iterations, codes)
    moves: dict[tuple, int] = {}  # drain code -> (shape, offset of the drained tile in tiles)
    held = {}  # per class: the tile it holds at the end (position, shape)
    leaves_of = [np.zeros(0, dtype=np.int64) for _ in rows]
    for t in active:
        if not found[t]:
            continue
        fills, shape, fresh = (np.concatenate(block) for block in zip(*found[t], strict=True))
        del found[t]
        shape = shape.astype(np.int64)
        times = np.bincount(shape)
        out["own"] += int(members[t]) * sum(int(m) * words_of(c) for c, m in enumerate(times) if m)
        if not outputs:
            events[t]["fill"] = (fills, 1 + shape)
            continue
        events[t]["refill"] = (fills[~fresh], 1 + shape[~fresh])
        # each tile leaves at the next fill or, before that, with the parent's tile
        leave = np.append(fills[1:], total)
        leaves = parent_leaves[t]
        if len(leaves):
            after = np.searchsorted(leaves, fills, side="right")
            leave = np.minimum(leave, np.append(leaves, total)[after])
        gone = leave < total
        leaves_of[t] = leave[gone]
        if not gone[-1]:
            held[t] = (where(fills[-1:])[0], int(shape[-1]))
        if gone.any():
            drained = np.column_stack([shape[gone], where(leave[gone]) - where(fills[gone])])
            lowest = drained.min(axis=0)
            packed = _pack((drained - lowest).T)
            if packed is not None:
                first, _, which = _groups(packed)
                distinct = drained[first]
            else:
                distinct, which = np.unique(drained, axis=0, return_inverse=True)
            ids = np.array([moves.setdefault(tuple(int(x) for x in m), len(moves) + 1) for m in distinct])
            events[t]["drain"] = (leave[gone], ids[which.ravel()])
    offsets_of = {code: m[1:] for m, code in moves.items()}

    signatures, first_parent, parents = np.unique(class_of, axis=0, return_index=True, return_counts=True)

    def union(s: int, tiles: dict[int, np.ndarray], by_copy: bool) -> int:
        """Distinct words the children of one parent instance of signature
        ``s`` move when those of class ``t`` move the tile at ``tiles[t]``
        (tiles along the relevant dimensions), per copy when ``by_copy``."""
        p = first_parent[s]
        ids = []
        for child in range(class_of.shape[1]):
            t = int(class_of[p, child])
            if t in tiles:
                origin = offset[p, child].copy()
                origin[[col[d] for d in keyed]] += tiles[t]
                words = machine.word_ids(tensor, level, (origin * tile)[None, :], clip=True)
                ids.append(words + ((int(copy[child]) << 40) if by_copy else 0))  # copies never merge
        return len(np.unique(np.concatenate(ids))) if ids else 0

    kinds = {"fill": "served", "refill": "refilled", "drain": "drained"}
    for s, signature in enumerate(signatures):
        slots = [t for t in sorted(set(int(x) for x in signature)) if t in events]
        for kind, target in kinds.items():
            present = [t for t in slots if kind in events[t]]
            if not present:
                continue
            for combo, times, first in _combinations([events[t][kind][0] for t in present],
                                                     [events[t][kind][1] for t in present]):
                at = where(np.array([first], dtype=np.int64))[0]
                tiles = {t: at - offsets_of[c] if kind == "drain" else at
                         for t, c in zip(present, combo, strict=True) if c}
                out[target] += times * int(parents[s]) * union(s, tiles, by_copy=kind != "refill")
        if outputs:  # the tiles still held at the end are drained together
            out["drained"] += int(parents[s]) * union(s, {t: held[t][0] for t in slots if t in held}, by_copy=True)
    return out, _ClippedRun(len(loops), class_of.ravel(), leaves_of)


def _halo_steps(machine: _Machine, level: int, parent: int) -> tuple[int, int, int]:
    """Halo reuse of ``level``'s input tile: (how many fills are steps of a
    sweep, input words the parent reads per step, words one instance
    receives per step); (0, 0, 0) when no loop sweeps it.

    The sweep loop is the innermost loop outside the level that indexes the
    inputs; when it moves along P, Q, R or S, every trip after the first of
    each of its runs (one run per iteration of the loops outside it) moves
    the tile one stride, and the tile keeps the words both positions hold.
    The words a step brings are counted as sets: the shifted tile's words
    not in the tile, per instance, and their union over the instances one
    parent instance serves at once (once per copy across fan-outs that
    cannot multicast)."""
    loops = [loop for loop in machine.outer_loops(level) if loop[0] != "M"]
    if not loops or loops[-1][0] not in ("P", "Q", "R", "S"):
        return 0, 0, 0
    dim, trips, stride = loops[-1]
    outer = machine.outer_loops(level)
    runs = math.prod(f for _, f, _ in outer[:outer.index(loops[-1])])
    shift = np.zeros(len(DIMS), dtype=np.int64)
    shift[DIMS.index(dim)] = stride

    def new_words(offsets: np.ndarray) -> np.ndarray:
        """The words the tiles at ``offsets`` moved by one step add, each to its own tile."""
        return np.unique(np.concatenate([np.setdiff1d(machine.word_ids("inputs", level, (o + shift)[None, :]),
                                                      machine.word_ids("inputs", level, o[None, :]))
                                         for o in offsets]))

    origin = np.zeros((1, len(DIMS)), dtype=np.int64)
    own = len(new_words(origin))
    crossed = machine.hier.fanouts_between(parent, level)
    if not crossed:
        served = machine.instances(level) * own
    else:
        shared = [f for f in crossed if machine.hier.fanouts[f].shares("inputs")]
        copies = machine.instances(parent) * math.prod(
            math.prod(machine.spread[f].values()) for f in crossed if f not in shared)
        served = copies * len(new_words(machine.offsets(shared)))
    return runs * (trips - 1), served, own


def _active_cycles(machine: _Machine) -> int:
    """Iterations of the temporal loops in which some MAC unit lies inside the
    layer: the unit at offset zero on every fan-out does whenever any does,
    and the condition holds per dimension, so it is a product of counts."""
    cycles = 1
    for d in DIMS:
        starts = _outer_sum([np.arange(f, dtype=np.int64) * stride
                             for loops in machine.loops for e, f, stride in loops if e == d])
        cycles *= int(np.count_nonzero(starts < machine.size[d]))
    return cycles


def _dram_origins(machine: _Machine) -> dict[str, np.ndarray]:
    """Per dimension, where the DRAM-level tiles start along it (index units),
    one entry per trip of the DRAM loops over that dimension, in loop order.

    The DRAM-level tiles are all combinations of the DRAM loops' counters,
    and each loop moves the tile along its own dimension only, so the set of
    tile origins is the product of these lists (with their repetitions)."""
    origins = {d: np.zeros(1, dtype=np.int64) for d in DIMS}
    for d, f, stride in machine.outer_loops(1):
        origins[d] = np.add.outer(origins[d], np.arange(f, dtype=np.int64) * stride).ravel()
    return origins


def _coordinates(machine: _Machine) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The coordinates the DRAM-level tiles touch, per (tile, position in the tile).

    Returns, per dimension, the index coordinates ``origin + local`` of every
    DRAM tile along it and every position in its block (tile-major), and the
    input rows (columns) read by output row ``p`` and filter row ``r``, as a
    2-D array over those flattened (tile, position) axes of P and R (Q and S).
    The rows are cut the way the on-chip tile is: the window of one block is
    its distinct rows ``{p * stride + r * dilation}``, shifted by the tile's
    origin, and each tap then picks its word inside that window.
    """
    layer, B = machine.layer, machine.block
    origins = _dram_origins(machine)
    coord = {d: np.add.outer(origins[d], np.arange(B[d], dtype=np.int64)).ravel() for d in DIMS}

    def window(out_dim: str, tap_dim: str, stride: int, dilation: int) -> np.ndarray:
        taps = np.add.outer(np.arange(B[out_dim]) * stride, np.arange(B[tap_dim]) * dilation)
        held = np.unique(taps)  # the rows one block's input window holds
        local = held[np.searchsorted(held, taps)]  # tap (p, r) reads this row of the window
        start = np.add.outer(origins[out_dim] * stride, origins[tap_dim] * dilation)
        rows = start[:, None, :, None] + local[None, :, None, :]
        return rows.reshape(len(coord[out_dim]), len(coord[tap_dim]))

    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    return coord, window("P", "R", sh, dh), window("Q", "S", sw, dw)


def _chunk_lengths(lengths: dict[str, int], budget: int) -> dict[str, int]:
    """Chunk lengths per dimension so that one chunk's input patches, weights
    and partial outputs hold at most ``budget`` words (halving greedily the
    dimension that weighs most)."""
    terms = ("NGCPRQS", "GMCRS", "NGMPQ")  # patches, weights, partial outputs
    size = dict(lengths)

    def words(dims: str) -> int:
        return math.prod(size[d] for d in dims)

    while sum(words(t) for t in terms) > budget:
        d = max((d for d in DIMS if size[d] > 1), key=lambda d: sum(words(t) for t in terms if d in t))
        size[d] = -(-size[d] // 2)
    return size


def _execute(machine: _Machine, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """All DRAM-level tiles at once; partial sums accumulated in DRAM.

    Parameters
    ----------
    machine : _Machine
        The mapping's tiles and loops.
    inputs, weights : numpy.ndarray
        The layer's operands in DRAM, shaped as ``random_operands`` draws them.

    Returns
    -------
    numpy.ndarray or None
        The DRAM outputs ``(N, G, M/G, P, Q)`` after every tile's partial
        outputs were added at their word coordinates, or None when a tile
        reaches a word outside a tensor (which the tile-by-tile execution
        could not have run either). On a clipped grid the (tile, position)
        pairs past the layer are dropped first: no MAC runs there.

    Notes
    -----
    Tile by tile, DRAM ends with ``sum over tiles t of scatter(t, X_t W_t)``.
    The tiles are the product of the per-dimension origin lists
    (``_dram_origins``), so that sum runs over (tile, position) pairs per
    dimension: the reduction dimensions C, R, S are contracted across tiles
    by one matrix product, and the output dimensions are scattered with
    ``np.add.at``, which adds every repeated coordinate, so that a doubled
    tile doubles its outputs and a missing one leaves them short. Chunking
    the (tile, position) axes splits the same sum into boxes. Integers below
    2**53 add exactly in float64, so no order changes the result.
    """
    layer = machine.layer
    coord, rows, cols = _coordinates(machine)
    if machine.clipped:  # the grid runs past the layer: positions outside it do no MAC
        keep = {d: coord[d] < machine.size[d] for d in DIMS}
        rows, cols = rows[keep["P"]][:, keep["R"]], cols[keep["Q"]][:, keep["S"]]
        coord = {d: coord[d][keep[d]] for d in DIMS}
    bounds = {"N": layer.N, "G": layer.groups, "M": layer.extent("M"), "C": layer.extent("C"),
              "P": layer.P, "Q": layer.Q, "R": layer.R, "S": layer.S}
    inside = [(coord[d], bounds[d]) for d in DIMS] + [(rows, layer.input_height), (cols, layer.input_width)]
    if any(a.size and (a.min() < 0 or a.max() >= n) for a, n in inside):
        return None
    out = np.zeros((layer.N, layer.groups, layer.extent("M"), layer.P, layer.Q))
    if any(len(coord[d]) == 0 for d in DIMS):
        return out  # no tile at all: nothing reaches DRAM
    flat, (_, G, Mg, P, Q) = out.reshape(-1), out.shape
    lengths = {d: len(coord[d]) for d in DIMS}
    size = _chunk_lengths(lengths, NUMERIC_CHUNK_WORDS)
    spans = [[slice(i, i + size[d]) for i in range(0, lengths[d], size[d])] for d in DIMS]
    for parts in itertools.product(*spans):
        sl = dict(zip(DIMS, parts, strict=True))
        n, g, m, c, p, q, r, s = (coord[d][sl[d]] for d in DIMS)
        # x[n, g, c, p, r, q, s]: the input word that tap (r, s) of output (p, q) reads
        x = inputs[n[:, None, None, None, None, None, None], g[None, :, None, None, None, None, None],
                   c[None, None, :, None, None, None, None], rows[sl["P"], sl["R"]][None, None, None, :, :, None, None],
                   cols[sl["Q"], sl["S"]][None, None, None, None, None, :, :]]
        w = weights[g[:, None, None, None, None], m[None, :, None, None, None], c[None, None, :, None, None],
                    r[None, None, None, :, None], s[None, None, None, None, :]]
        part = np.matmul(x.transpose(1, 0, 3, 5, 2, 4, 6).reshape(len(g), len(n) * len(p) * len(q), -1),
                         w.transpose(0, 2, 3, 4, 1).reshape(len(g), -1, len(m)))  # (g, n*p*q, m)
        ids = (((n[None, :, None, None, None] * G + g[:, None, None, None, None]) * Mg
                + m[None, None, None, None, :]) * P + p[None, None, :, None, None]) * Q + q[None, None, None, :, None]
        np.add.at(flat, ids.ravel(), part.ravel())
    return out


def _memory_needed(layer: ConvLayer) -> int:
    """Bytes the model holds at once: the float64 operands, the DRAM outputs,
    the reference and their difference, one numeric chunk (with its copies
    for the product) and one visit mark per output word."""
    outputs = layer.N * layer.groups * layer.extent("M") * layer.P * layer.Q
    inputs = layer.N * layer.groups * layer.extent("C") * layer.input_height * layer.input_width
    weights = layer.groups * layer.extent("M") * layer.extent("C") * layer.R * layer.S
    return 8 * (inputs + weights + 3 * outputs + 3 * NUMERIC_CHUNK_WORDS) + outputs


def run_multilevel_vectorized(problem: MultiLevelProblem, mapping: MultiLevelMapping,
                              seed: int = 0) -> MultiLevelReport:
    """Execute ``mapping`` on random integers and count every level's reads and writes.

    Parameters
    ----------
    problem : MultiLevelProblem
        The layer and the hierarchy.
    mapping : MultiLevelMapping
        A mapping of ``problem`` (capacities are not checked); the factors
        of a dimension may multiply to more than its extent (partial last
        tiles).
    seed : int
        Seed of the random integer operands.

    Returns
    -------
    MultiLevelReport
        Whether the DRAM outputs equal a direct convolution, the reads and
        writes per level and tensor, the compute cycles and the wall time.

    Raises
    ------
    ValueError
        When the layer has more than ``tiling.MAX_MACS`` MACs or its
        tensors would need more than ``MAX_TENSOR_BYTES`` (guards of time
        and memory; there is no limit on tiles or loop iterations of
        divisor mappings), or when a mapping with partial tiles runs more
        than ``CLIPPED_MAX_ITERATIONS`` loop iterations outside one level.
    """
    start = time.perf_counter()
    problem = kept_problem(problem, mapping)
    needed = _memory_needed(problem.layer)
    too_large = too_many_macs(problem.layer)
    if too_large:
        raise ValueError(too_large)
    if needed > MAX_TENSOR_BYTES:
        raise ValueError(f"the layer's tensors need {needed / 2**30:.1f} GiB in float64; "
                         f"the vectorized model stops at {MAX_TENSOR_BYTES / 2**30:.0f} GiB")
    machine = _Machine(problem, mapping)
    hier, K = problem.hierarchy, machine.K
    reads = [dict.fromkeys(TENSORS, 0) for _ in range(K)]
    writes = [dict.fromkeys(TENSORS, 0) for _ in range(K)]
    origin = np.zeros((1, len(DIMS)), dtype=np.int64)
    for tensor in TENSORS:
        runs = {}  # on a clipped grid: when each level's tiles leave (output tiles leave with their parent's)
        for level in [l for l in range(1, K) if tensor in hier.levels[l].holds] + [K]:
            parent = hier.holder_above(level, tensor)
            if machine.clipped:
                moved, runs[level] = _clipped_transfers(machine, tensor, level, parent,
                                                         runs.get(parent) if tensor == "outputs" else None)
                if tensor != "outputs":
                    reads[parent][tensor] += moved["served"]
                    if level < K:
                        writes[level][tensor] += moved["own"]
                else:
                    reads[parent][tensor] += moved["refilled"]
                    writes[parent][tensor] += moved["drained"]
                    if level < K:
                        writes[level][tensor] += moved["refilled"]
                        reads[level][tensor] += moved["own"]
                continue
            fills, distinct = _key_runs(machine, tensor, level, distinct=tensor == "outputs")
            if hier.fetches_every_trip(level):  # no operand latches: a fetch in every iteration
                fills = math.prod(f for _, f, _ in machine.outer_loops(K))
            own = len(machine.word_ids(tensor, level, origin))  # words of one instance's tile
            crossed = hier.fanouts_between(parent, level)
            if not crossed:  # each instance has its own parent instance
                served = refilled = machine.instances(level) * own
            else:  # one parent instance serves the instances of the fan-outs between at once
                shared = [f for f in crossed if hier.fanouts[f].shares(tensor)]
                copies = machine.instances(parent) * math.prod(
                    math.prod(machine.spread[f].values()) for f in crossed if f not in shared)
                served = copies * len(np.unique(machine.word_ids(tensor, level, machine.offsets(shared))))
                # a revisit's partial sums reach one instance of each reduction group
                refilled = machine.instances(parent) * len(np.unique(machine.word_ids(tensor, level,
                                                                                      machine.offsets(crossed))))
            if tensor != "outputs":
                steps, served_new, own_new = 0, 0, 0
                if tensor == "inputs" and problem.halo and not hier.fetches_every_trip(level):
                    steps, served_new, own_new = _halo_steps(machine, level, parent)
                reads[parent][tensor] += (fills - steps) * served + steps * served_new
                if level < K:
                    writes[level][tensor] += machine.instances(level) * ((fills - steps) * own + steps * own_new)
            else:
                refills = fills - distinct  # a first visit starts from zero, later ones read partial sums
                reads[parent][tensor] += refills * refilled
                writes[parent][tensor] += fills * served  # every tile is drained once per fill
                if level < K:
                    writes[level][tensor] += refills * refilled
                    reads[level][tensor] += fills * machine.instances(level) * own
    inputs, weights = random_operands(problem.layer, seed)
    result = _execute(machine, inputs, weights)
    reference = reference_conv(problem.layer, inputs, weights)
    cycles = (_active_cycles(machine) if machine.clipped
              else math.prod(f for loops in machine.loops for _, f, _ in loops))
    return MultiLevelReport(
        outputs_match=result is not None and bool(np.array_equal(result, reference)),
        reads=reads, writes=writes, cycles=cycles,
        max_abs_error=float("inf") if result is None else float(np.max(np.abs(result - reference))),
        wall_time_s=time.perf_counter() - start,
    )
