"""Cost model of multi-level tiling: ``evaluate_multilevel`` is the truth.

Derived in docs/tiling-multilevel.md.  In short, for a level ``l`` that holds
tensor ``X`` (the MAC units count as a level below all others, holding one
word of each tensor per PE):

* the loops above ``l`` are the temporal loops of levels 0..l-1, each
  level's block in its own order; a *fill* of ``l``'s tile happens whenever
  a loop that indexes ``X`` advances, and every loop that does not index
  ``X`` multiplies the fills unless it sits inside all non-trivial loops
  that do (the tile then stays resident); without operand latches
  (``latches: false``) the MAC units' one-word tiles are fetched at every
  MAC, so there every loop multiplies them;
* a fill is served by the nearest level above that holds ``X`` (levels that
  do not hold it are bypassed).  When spatial fan-outs lie between the
  two, a word that several instances need is read once (multicast), and
  partial sums of several instances for one output word are added on the
  way up (reduction tree) and written once; across a fan-out whose network
  cannot multicast (reduce), each instance reads (writes) its own copy, and
  a revisit's partial sums go to one instance of the group;
* an output tile's first visit starts from zero; every later visit reads
  the partial sums back from the parent first, every visit ends by draining
  them to the parent; the last drain to DRAM carries final outputs.

Accesses are counted in words, per level and tensor; off-chip traffic in
bits with each tensor's precision (partial sums at psum precision).  All
formulas broadcast over numpy arrays of factors, so the enumerator scores
millions of mappings with the very code that scores one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .problem import (DIMS, RELEVANT, MultiLevelMapping, MultiLevelProblem, kept_problem, layer_extent,
                      mapping_problems)
from ..problem import ConvLayer, _window_table
from .bypass import links
from .halo import AXIS_OF, step_rows, sweep_masks

TENSORS = ("inputs", "weights", "outputs")


def window_rows(layer: ConvLayer, axis: str, outputs: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Distinct input rows (axis P) or columns (Q) read by ``outputs``
    consecutive output positions and ``taps`` consecutive filter taps."""
    if axis == "P":
        table = _window_grid(layer.stride[0], layer.dilation[0], layer.P, layer.R)
    else:
        table = _window_grid(layer.stride[1], layer.dilation[1], layer.Q, layer.S)
    return table[np.asarray(taps, dtype=np.int64) - 1, np.asarray(outputs, dtype=np.int64)]


@lru_cache(maxsize=256)
def _window_grid(stride: int, dilation: int, extent: int, window: int) -> np.ndarray:
    """``grid[w - 1, e]``: distinct rows of ``e`` outputs and ``w`` taps."""
    return np.stack([_window_table(stride, dilation, w, extent + 1) for w in range(1, window + 1)])


@lru_cache(maxsize=65536)
def union_window_rows(stride: int, dilation: int, t_out: int, t_tap: int,
                      out_spread: tuple[tuple[int, int], ...], tap_spread: tuple[tuple[int, int], ...]) -> int:
    """Distinct input rows of all instances of some fan-outs together.

    Every fan-out in a spread is (step, count): its ``j``-th instance starts
    ``j * step`` further along (the step is the tile of one of its
    instances), so an instance reads outputs ``sum_f j_f * step_f + [0,
    t_out)`` with taps ``sum_f i_f * tap_step_f + [0, t_tap)``. When the
    tiles fill their instances' tiles this is one window; below a fan-out's
    level the ranges leave gaps, counted here exactly."""
    def positions(extent: int, spread) -> np.ndarray:
        out = np.arange(extent)
        for step, count in spread:
            out = np.add.outer(np.arange(count) * step, out).ravel()
        return out

    outputs, taps = positions(t_out, out_spread), positions(t_tap, tap_spread)
    return int(np.unique(np.add.outer(outputs * stride, taps * dilation)).size)


def _on_distinct(fn, *arrays) -> np.ndarray:
    """``np.vectorize(fn)`` over the broadcast ``arrays``, calling ``fn``
    once per distinct combination of their values: a search scores
    thousands of mappings whose tiles repeat a few dozen window shapes."""
    columns = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in arrays))
    shape = columns[0].shape
    stacked = np.stack([c.ravel() for c in columns], axis=1)
    distinct, where = np.unique(stacked, axis=0, return_inverse=True)
    values = np.fromiter((fn(*row) for row in distinct.tolist()), dtype=np.int64, count=len(distinct))
    return values[where.ravel()].reshape(shape)


def union_input_words(layer: ConvLayer, t: dict, steps: list[dict], counts: list[dict],
                      shift: tuple[str, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Distinct input words of the tiles ``t`` of all instances of some
    fan-outs (per fan-out, its instances' tile ``steps`` and its factors
    ``counts``): their N, G, C ranges never overlap, their windows may.

    With ``shift = (axis, outputs, taps)``, the words one step of a halo
    sweep along ``axis`` brings in instead (``halo.step_rows``): the tiles
    move by that many outputs and taps and keep the rows they share."""
    (sh, sw), (dh, dw) = layer.stride, layer.dilation

    def rows(stride, dilation, out_dim, tap_dim):
        stepped = shift is not None and shift[0] == out_dim

        def one(t_out, t_tap, shift_out, shift_tap, *spread):
            pairs = [tuple(int(v) for v in spread[4 * i: 4 * i + 4]) for i in range(len(spread) // 4)]
            outs, taps = tuple(p[:2] for p in pairs), tuple(p[2:] for p in pairs)
            if stepped:
                return step_rows(stride, dilation, int(t_out), int(t_tap), outs, taps, int(shift_out), int(shift_tap))
            return union_window_rows(stride, dilation, int(t_out), int(t_tap), outs, taps)
        spread = [v for step, count in zip(steps, counts, strict=True)
                  for v in (step[out_dim], count[out_dim], step[tap_dim], count[tap_dim])]
        moved = (shift[1], shift[2]) if stepped else (0, 0)
        return _on_distinct(one, t[out_dim], t[tap_dim], *moved, *spread)

    total = t["N"] * t["G"] * t["C"] * rows(sh, dh, "P", "R") * rows(sw, dw, "Q", "S")
    for count in counts:
        total = total * count["N"] * count["G"] * count["C"]
    return total


def tile_elements(layer: ConvLayer, tensor: str, t: dict[str, np.ndarray]) -> np.ndarray:
    """Elements of a tile of ``tensor`` spanning ``t[d]`` along each dimension."""
    if tensor == "weights":
        return t["G"] * t["M"] * t["C"] * t["R"] * t["S"]
    if tensor == "outputs":
        return t["N"] * t["G"] * t["M"] * t["P"] * t["Q"]
    return (t["N"] * t["G"] * t["C"]
            * window_rows(layer, "P", t["P"], t["R"]) * window_rows(layer, "Q", t["Q"], t["S"]))


def fills_and_distinct(loops: list[tuple[str, np.ndarray]], tensor: str,
                       resident: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(fill events, distinct tiles) of one instance of a tile of ``tensor``
    under ``loops`` (outermost first). ``resident`` False: the tile is
    fetched at every iteration (MAC units without operand latches)."""
    relevant = RELEVANT[tensor]
    in_suffix = np.asarray(resident)
    fills = np.asarray(1, dtype=np.int64)
    distinct = np.asarray(1, dtype=np.int64)
    for dim, trips in reversed(loops):
        trips = np.asarray(trips, dtype=np.int64)
        if dim in relevant:
            in_suffix = in_suffix & (trips == 1)
            distinct = distinct * trips
            fills = fills * trips
        else:
            fills = fills * np.where(in_suffix, 1, trips)
    return fills, distinct


@dataclass
class MultiLevelMetrics:
    """Accesses per level and tensor (words), off-chip bits, energy, cycles."""

    level_names: list[str]
    reads: list[dict[str, int]]
    writes: list[dict[str, int]]
    tile_bits: list[dict[str, int]]
    fits: bool
    offchip_bits: dict[str, int]
    energy: float
    compute_cycles: int
    level_cycles: list[float]
    macs: int
    utilization: float
    array_boundary_words: int = 0
    """Words written into PE-private storage (registers and the MACs' operand
    latches) from shared levels, plus partial sums drained out of it."""
    held: list[frozenset[str]] | None = None
    """Per level, the tensors it keeps in this mapping: a result lists the
    tile sizes of those only (a bypassed tensor takes no room there)."""

    @property
    def offchip_bytes(self) -> float:
        return sum(self.offchip_bits.values()) / 8

    @property
    def latency(self) -> float:
        return max([float(self.compute_cycles), *self.level_cycles])

    @property
    def edp(self) -> float:
        return self.energy * self.latency

    def objective(self, name: str) -> float:
        if name == "offchip_traffic":
            return self.offchip_bytes
        if name == "energy":
            return self.energy
        if name == "latency":
            return self.latency
        if name == "edp":
            return self.edp
        raise ValueError(f"unknown objective {name!r}")

    def to_dict(self) -> dict:
        return {
            "offchip_bytes": self.offchip_bytes,
            "offchip_traffic_bytes": {k: v / 8 for k, v in self.offchip_bits.items()},
            "energy": self.energy,
            "latency_cycles": self.latency,
            "compute_cycles": self.compute_cycles,
            "edp": self.edp,
            "macs": self.macs,
            "pe_utilization": round(self.utilization, 4),
            "array_boundary_words": self.array_boundary_words,
            "fits": self.fits,
            "levels": [
                {"name": n, "reads": r, "writes": w, "cycles": c,
                 "tile_bytes": {k: v / 8 for k, v in b.items() if self.held is None or k in self.held[l]}}
                for l, (n, r, w, b, c) in enumerate(zip(self.level_names, self.reads, self.writes,
                                                        self.tile_bits, self.level_cycles, strict=True))
            ],
        }


@dataclass
class LinkWords:
    """The order-independent part of the vectorized core: tiles, instances,
    busy PEs, tile bits, and per fill path (``bypass.links``) the words one
    fill writes into the child's instances and reads at the parent (for
    outputs: drains into the parent, and the partial sums a revisit reads
    back, which reach one instance of each reduction group)."""

    tiles: list
    instances: list
    pes_used: np.ndarray
    tile_bits: list
    paths: list  # (Link, child words, parent words, refill words, crosses the first fan-out)
    fills: dict = field(default_factory=dict)
    """Per (level, tensor), the fills and distinct tiles under the latest
    orders of the levels above it: a search that varies the inner levels'
    orders first reuses them."""
    spatial: list = field(default_factory=list)
    """Per fan-out, the factor it unrolls of each dimension."""
    steps: dict = field(default_factory=dict)
    """Per (fill path, sweeping dimension, its level), the words one step of
    a halo sweep moves (``halo_step_words``): orders do not change them."""


def link_words(problem: MultiLevelProblem, table: dict[str, np.ndarray]) -> LinkWords:
    """Tiles and words per fill of every path; loop orders do not enter
    them, so a search over orders computes them once. ``table[d]`` holds
    factor rows of ``d`` (``rows.py``) along its last axis."""
    layer, hier = problem.layer, problem.hierarchy
    K, pe = len(hier.levels), hier.pe_level
    one = np.asarray(1, dtype=np.int64)
    s = [{d: np.asarray(table[d][..., K + 2 * f] * table[d][..., K + 2 * f + 1], dtype=np.int64) for d in DIMS}
         for f in range(len(hier.fanouts))]
    size = [np.prod([s[f][d] for d in DIMS], axis=0) for f in range(len(hier.fanouts))]
    pes_used = one
    for f in range(len(hier.fanouts)):
        pes_used = pes_used * size[f]
    tiles: list[dict[str, np.ndarray]] = [dict() for _ in range(K + 1)]
    tiles[K] = {d: one for d in DIMS}
    for l in range(K - 1, -1, -1):
        below = [f for f, fan in enumerate(hier.fanouts) if fan.level == l + 1]
        tiles[l] = {d: np.asarray(table[d][..., l], dtype=np.int64) * tiles[l + 1][d] for d in DIMS}
        for f in below:
            tiles[l] = {d: tiles[l][d] * s[f][d] for d in DIMS}
    instances = []
    for l in range(K + 1):
        count = one
        for f in hier.fanouts_above(l):
            count = count * size[f]
        instances.append(count)
    paths = []
    child_of: dict[tuple[int, str], np.ndarray] = {}
    for link in links(hier):
        l, tensor, a = link.level, link.tensor, link.parent
        if (l, tensor) not in child_of:
            child_of[l, tensor] = tile_elements(layer, tensor, tiles[l]) * instances[l]
        child_words = parent_words = refill_words = child_of[l, tensor]
        crossed = hier.fanouts_between(a, l)
        if crossed:  # one parent instance serves the instances of the fan-outs between at once
            shared = [f for f in crossed if hier.fanouts[f].shares(tensor)]
            copies = instances[a]
            for f in crossed:
                if f not in shared:  # each instance moves its own copy
                    copies = copies * size[f]
            parent_words = copies * _union_words(layer, tensor, tiles, l, hier, shared, s)
            refill_words = parent_words
            if tensor == "outputs" and len(shared) < len(crossed):  # a revisit's partial sums go to one instance
                refill_words = instances[a] * _union_words(layer, tensor, tiles, l, hier, crossed, s)
        paths.append((link, child_words, parent_words, refill_words, a < pe <= l))
    prec = layer.precision
    bits = {"inputs": prec.inputs, "weights": prec.weights, "outputs": prec.psums}
    tile_bits = [{t: tile_elements(layer, t, tiles[l]) * bits[t] for t in TENSORS} for l in range(K)]
    return LinkWords(tiles, instances, pes_used, tile_bits, paths, spatial=s)


def halo_step_words(problem: MultiLevelProblem, words: LinkWords, link, shift) -> tuple[np.ndarray, np.ndarray]:
    """(words written into the child's instances, words read at the parent)
    by one step of a halo sweep of ``link``'s input tile (``halo.py``):
    ``shift = (axis, outputs, taps)`` moves every instance's tile; the
    parent reads the union of the instances' new rows over the fan-outs
    that share the transfer, once per copy over the others."""
    layer, hier = problem.layer, problem.hierarchy
    l, a, tiles, s = link.level, link.parent, words.tiles, words.spatial
    child = union_input_words(layer, tiles[l], [], [], shift) * words.instances[l]
    crossed = hier.fanouts_between(a, l)
    if not crossed:
        return child, child
    shared = [f for f in crossed if hier.fanouts[f].shares("inputs")]
    copies = words.instances[a]
    for f in crossed:
        if f not in shared:
            copies = copies * np.prod([s[f][d] for d in DIMS], axis=0)
    parent = copies * union_input_words(layer, tiles[l], [tiles[hier.fanouts[f].level] for f in shared],
                                        [s[f] for f in shared], shift)
    return child, parent


def halo_totals(problem: MultiLevelProblem, table, orders, words: LinkWords, link, fills, child_words,
                parent_words) -> tuple[np.ndarray, np.ndarray]:
    """(words written into the child, words read at the parent) over all
    fills of ``link``'s input tile with halo reuse: a sweep of ``n`` trips
    moves one whole tile and ``n - 1`` steps (``halo.py``); other fills
    move whole tiles."""
    l = link.level
    loops = [(d, j, table[d][..., j]) for j in range(l) for d in orders[j]]
    written, read = fills * child_words, fills * parent_words
    for (d, j), mask in sweep_masks(loops).items():
        if not np.any(mask):
            continue
        n = np.asarray(table[d][..., j], dtype=np.int64)
        step = words.tiles[j][d] // n
        zero = np.zeros_like(step)
        shift = (AXIS_OF[d], step, zero) if d in ("P", "Q") else (AXIS_OF[d], zero, step)
        if (link, d, j) not in words.steps:
            words.steps[link, d, j] = halo_step_words(problem, words, link, shift)
        child_new, parent_new = words.steps[link, d, j]
        sweeps = fills // n
        written = np.where(mask, sweeps * (child_words + (n - 1) * child_new), written)
        read = np.where(mask, sweeps * (parent_words + (n - 1) * parent_new), read)
    return written, read


def _union_words(layer: ConvLayer, tensor: str, tiles: list, level: int, hier, fanouts, s: list) -> np.ndarray:
    """Distinct words of ``tensor`` in the tiles of ``level`` over all instances of ``fanouts``."""
    if tensor == "inputs":
        return union_input_words(layer, tiles[level], [tiles[hier.fanouts[f].level] for f in fanouts],
                                 [s[f] for f in fanouts])
    spread = dict(tiles[level])
    for f in fanouts:
        spread = {d: spread[d] * s[f][d] for d in DIMS}
    return tile_elements(layer, tensor, spread)


def link_terms(problem: MultiLevelProblem, table: dict[str, np.ndarray], orders: list[tuple[str, ...]],
               words: LinkWords | None = None):
    """The vectorized core: per possible fill path (``bypass.links``), the
    reads and writes it adds (words, as (kind, level, count)) and the words
    it moves into and out of PE-private storage; plus tile bits per level
    and tensor, the tiles, the instances per level and the busy PEs.

    ``table[d]`` holds factor rows of d (``rows.py``) along its last axis,
    ``orders[l]`` each level's order; ``words`` is :func:`link_words` of
    the same table when already known."""
    K = len(problem.hierarchy.levels)
    words = words or link_words(problem, table)
    terms = []
    for link, child_words, parent_words, refill_words, crosses in words.paths:
        l, tensor, a = link.level, link.tensor, link.parent
        above = tuple(orders[:l])
        cached = words.fills.get((l, tensor))
        latched = not problem.hierarchy.fetches_every_trip(l)
        if cached is None or cached[0] != above:
            loops = [(d, table[d][..., j]) for j in range(l) for d in orders[j]]
            cached = words.fills[l, tensor] = (above, *fills_and_distinct(loops, tensor, latched))
        fills, distinct = cached[1:]
        counts = []
        boundary = np.asarray(0, dtype=np.int64)  # words into and out of PE-private storage
        if tensor != "outputs":
            written, read = fills * child_words, fills * parent_words
            if tensor == "inputs" and problem.halo and latched:
                written, read = halo_totals(problem, table, orders, words, link, fills, child_words, parent_words)
            counts.append(("reads", a, read))
            if l < K:
                counts.append(("writes", l, written))
            if crosses:
                boundary = written
        else:
            refills = (fills - distinct) * refill_words
            if crosses:
                boundary = refills + fills * child_words
            counts += [("reads", a, refills), ("writes", a, fills * parent_words)]
            if l < K:
                counts += [("writes", l, refills), ("reads", l, fills * child_words)]
        terms.append((link, counts, boundary))
    return terms, words.tile_bits, words.tiles, words.instances, words.pes_used


def sum_terms(terms, K: int, keep: tuple[frozenset[str], ...] | None):
    """Reads and writes per level and tensor, and the array-boundary words,
    of the fill paths that exist under ``keep`` (None: every path, for a
    hierarchy whose keep sets are fixed)."""
    reads = [{t: np.asarray(0, dtype=np.int64) for t in TENSORS} for _ in range(K)]
    writes = [{t: np.asarray(0, dtype=np.int64) for t in TENSORS} for _ in range(K)]
    boundary = np.asarray(0, dtype=np.int64)
    for link, counts, crossing in terms:
        if keep is not None and not link.active(keep):
            continue
        for kind, level, value in counts:
            table = reads if kind == "reads" else writes
            table[level][link.tensor] = table[level][link.tensor] + value
        boundary = boundary + crossing
    return reads, writes, boundary


def access_counts(problem: MultiLevelProblem, table: dict[str, np.ndarray], orders: list[tuple[str, ...]]):
    """Reads and writes per level and tensor (words), tile bits per level and
    tensor, tiles, instances per level, busy PEs and array-boundary words,
    with every level keeping what it may hold."""
    hier = problem.hierarchy
    terms, tile_bits, tiles, instances, pes_used = link_terms(problem, table, orders)
    keep = hier.default_keep() if hier.chooses_bypass else None
    reads, writes, boundary = sum_terms(terms, len(hier.levels), keep)
    return reads, writes, tile_bits, tiles, instances, pes_used, boundary


def offchip_bits(layer: ConvLayer, reads0: dict, writes0: dict) -> dict[str, np.ndarray]:
    """DRAM traffic in bits per term, from DRAM's word counts."""
    prec = layer.precision
    final = layer.output_elements
    return {
        "inputs_read": reads0["inputs"] * prec.inputs,
        "weights_read": reads0["weights"] * prec.weights,
        "outputs_written": np.broadcast_to(np.int64(final * prec.outputs), np.shape(writes0["outputs"])),
        "psums_read": reads0["outputs"] * prec.psums,
        "psums_written": (writes0["outputs"] - final) * prec.psums,
    }


def energy_of(problem: MultiLevelProblem, reads, writes) -> np.ndarray:
    hier = problem.hierarchy
    total = np.asarray(problem.layer.macs * hier.mac_energy, dtype=np.float64)
    for level, r, w in zip(hier.levels, reads, writes, strict=True):
        for t in TENSORS:
            total = total + r[t] * level.read_energy + w[t] * level.write_energy
    return total


def evaluate_multilevel(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> MultiLevelMetrics:
    """Exact accesses, energy and cycles of ``mapping`` (raises ValueError if
    it is not a mapping of the layer; an overfull mapping has ``fits`` False)."""
    layer, hier = problem.layer, problem.hierarchy
    problems = mapping_problems(layer, hier, mapping)
    if problems:
        raise ValueError("; ".join(problems))
    if not mapping.divides(layer, len(hier.fanouts)):
        from .clipped_cost import evaluate_clipped  # partial tiles: the per-dimension sums

        return evaluate_clipped(problem, mapping)
    problem = kept_problem(problem, mapping)
    hier = problem.hierarchy
    K = len(hier.levels)
    table = {d: np.asarray(mapping.row(d, len(hier.fanouts)), dtype=np.int64) for d in DIMS}
    orders = [tuple(loops.order) for loops in mapping.levels]
    reads, writes, tile_bits, _, instances, pes_used, boundary = access_counts(problem, table, orders)
    compute = 1
    for l in range(K):
        for d in DIMS:
            compute *= mapping.factor(l, d)
    return assemble_metrics(problem, reads, writes, tile_bits, compute, [int(i) for i in instances],
                            int(pes_used) / hier.pes, int(boundary))


def bandwidth_ratio(bandwidth: float) -> Fraction:
    """A declared bandwidth as the ratio it was written as: ``3e-4`` is
    3/10000, not the binary float nearest to it, so that cycles counted from
    it are whole numbers where the decimal gives them."""
    return Fraction(bandwidth).limit_denominator(10**12)


def busy_cycles(words: int, instances: int, bandwidth: float) -> int:
    """Whole cycles a level needs to move ``words`` over ``instances`` at
    ``bandwidth`` words per cycle each: ``ceil(words / (instances *
    bandwidth))``, in exact integer arithmetic."""
    ratio = bandwidth_ratio(bandwidth)
    return -(-int(words) * ratio.denominator // (int(instances) * ratio.numerator))


def assemble_metrics(problem: MultiLevelProblem, reads, writes, tile_bits, compute: int, instances: list[int],
                     utilization: float, boundary: int) -> MultiLevelMetrics:
    """The metrics of one mapping from its counts (words per level and
    tensor, tile bits, compute cycles, instances per level): capacities
    checked, off-chip bits, energy, and each level's cycles."""
    layer, hier = problem.layer, problem.hierarchy
    reads = [{t: int(v) for t, v in r.items()} for r in reads]
    writes = [{t: int(v) for t, v in w.items()} for w in writes]
    tile_bits = [{t: int(v) for t, v in b.items()} for b in tile_bits]
    fits = all(level.fits(tile_bits[l]) for l, level in enumerate(hier.levels) if l > 0)
    level_cycles = []
    for l, level in enumerate(hier.levels):
        words = sum(reads[l].values()) + sum(writes[l].values())
        # whole cycles: a level moving w words at b words per cycle is busy ceil(w / b) cycles
        level_cycles.append(float(busy_cycles(words, instances[l], level.bandwidth)) if level.bandwidth else 0.0)
    return MultiLevelMetrics(
        level_names=[level.name for level in hier.levels],
        reads=reads,
        writes=writes,
        tile_bits=tile_bits,
        fits=fits,
        offchip_bits={k: int(v) for k, v in offchip_bits(layer, reads[0], writes[0]).items()},
        energy=float(energy_of(problem, reads, writes)),
        compute_cycles=compute,
        level_cycles=level_cycles,
        macs=layer.macs,
        utilization=utilization,
        array_boundary_words=boundary,
        held=[frozenset(TENSORS) if l == 0 else frozenset(level.holds) for l, level in enumerate(hier.levels)],
    )


def extents(layer: ConvLayer) -> dict[str, int]:
    return {d: layer_extent(layer, d) for d in DIMS}


def objective_values(problem: MultiLevelProblem, table: dict[str, np.ndarray], orders: list[tuple[str, ...]],
                     keeps: list[tuple[frozenset[str], ...]] | None = None, words: LinkWords | None = None):
    """(objective, feasible) broadcast over arrays of factor rows (``table[d]``
    holds rows of d along its last axis): the same numbers
    ``evaluate_multilevel`` reports, for many mappings at once, with every
    level keeping what it may hold. Feasible means fitting every level and
    fan-out and keeping the instance's least utilizations.

    With ``keeps`` (keep sets of a hierarchy with chosen bypass), each
    mapping's best keep set among them: (objective, feasible, index into
    ``keeps``). The fill paths are computed once and summed per keep set;
    ``words`` (:func:`link_words` of the same factors) saves recomputing
    what the orders do not change."""
    hier = problem.hierarchy
    K = len(hier.levels)
    terms, tile_bits, _, instances, _ = link_terms(problem, table, orders, words)
    compute = np.asarray(1, dtype=np.int64)
    for d in DIMS:
        for l in range(K):
            compute = compute * np.asarray(table[d][..., l], dtype=np.int64)
    return best_keep(problem, lambda keep: sum_terms(terms, K, keep)[:2], tile_bits, compute, instances,
                     fanout_fits(problem, table), keeps)


def fanout_fits(problem: MultiLevelProblem, table: dict[str, np.ndarray]) -> np.ndarray:
    """Whether the factor rows fit every fan-out and keep the instance's least utilizations."""
    hier = problem.hierarchy
    K = len(hier.levels)
    fits_array = np.asarray(True)
    least = dict(problem.constraints.least_busy(hier))
    for f, fan in enumerate(hier.fanouts):
        used = [np.prod([np.asarray(table[d][..., K + 2 * f + side], dtype=np.int64) for d in DIMS], axis=0)
                for side in (0, 1)]
        fits_array = fits_array & (used[0] <= fan.rows) & (used[1] <= fan.cols)
        if f in least:
            fits_array = fits_array & (used[0] * used[1] >= least[f])
    return fits_array


def best_keep(problem: MultiLevelProblem, counts, tile_bits, compute, instances, fits_array, keeps):
    """(objective, feasible), or with ``keeps`` each mapping's best keep set
    among them (objective, feasible, index into ``keeps``), from
    ``counts(keep)``: the reads and writes per level and tensor under a keep
    set (None: every path of a hierarchy whose keep sets are fixed)."""
    hier = problem.hierarchy
    K = len(hier.levels)

    def score(keep):
        held = keep or hier.default_keep()
        reads, writes = counts(keep)
        feasible = fits_array
        for l in range(1, K):
            level = hier.levels[l]
            if level.partition_bits is not None:
                for t in held[l]:
                    feasible = feasible & (tile_bits[l][t] <= level.partition_bits[t])
            else:
                feasible = feasible & (sum((tile_bits[l][t] for t in held[l]), np.asarray(0))
                                       <= level.capacity_bits)
        name = problem.objective
        if name == "offchip_traffic":
            value = sum(offchip_bits(problem.layer, reads[0], writes[0]).values()) / 8
        else:
            energy = energy_of(problem, reads, writes)
            latency = compute.astype(np.float64)
            for l, level in enumerate(hier.levels):
                if level.bandwidth:
                    words = sum(reads[l][t] + writes[l][t] for t in TENSORS)
                    cycles = words / instances[l] / float(bandwidth_ratio(level.bandwidth))
                    latency = np.maximum(latency, np.ceil(cycles - 1e-9 * np.maximum(1.0, cycles)))
            value = {"energy": energy, "latency": latency, "edp": energy * latency}[name]
        value = np.asarray(value, dtype=np.float64)
        shape = np.broadcast_shapes(value.shape, np.shape(feasible))
        return np.broadcast_to(value, shape), np.broadcast_to(feasible, shape)

    if keeps is None:
        return score(hier.default_keep() if hier.chooses_bypass else None)
    best_value = best_feasible = best_index = None
    for index, keep in enumerate(keeps):
        value, feasible = score(keep)
        masked = np.where(feasible, value, np.inf)
        if best_value is None:
            best_value, best_feasible = masked, feasible
            best_index = np.zeros(np.shape(masked), dtype=np.int64)
            continue
        better = masked < best_value
        best_value = np.where(better, masked, best_value)
        best_feasible = best_feasible | feasible
        best_index = np.where(better, index, best_index)
    return best_value, best_feasible, best_index
