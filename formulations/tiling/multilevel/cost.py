"""Cost model of multi-level tiling: ``evaluate_multilevel`` is the truth.

Derived in docs/tiling-multilevel.md.  In short, for a level ``l`` that holds
tensor ``X`` (the MAC units count as a level below all others, holding one
word of each tensor per PE):

* the loops above ``l`` are the temporal loops of levels 0..l-1, each
  level's block in its own order; a *fill* of ``l``'s tile happens whenever
  a loop that indexes ``X`` advances, and every loop that does not index
  ``X`` multiplies the fills unless it sits inside all non-trivial loops
  that do (the tile then stays resident);
* a fill is served by the nearest level above that holds ``X`` (levels that
  do not hold it are bypassed).  When the spatial fan-out lies between the
  two, a word that several PEs need is read once (multicast), and partial
  sums of several PEs for one output word are added on the way up
  (reduction tree) and written once;
* an output tile's first visit starts from zero; every later visit reads
  the partial sums back from the parent first, every visit ends by draining
  them to the parent; the last drain to DRAM carries final outputs.

Accesses are counted in words, per level and tensor; off-chip traffic in
bits with each tensor's precision (partial sums at psum precision).  All
formulas broadcast over numpy arrays of factors, so the enumerator scores
millions of mappings with the very code that scores one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .problem import (DIMS, RELEVANT, MultiLevelMapping, MultiLevelProblem, kept_problem, layer_extent,
                      mapping_problems)
from ..problem import ConvLayer, _window_table
from .bypass import links

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
def union_window_rows(stride: int, dilation: int, t_out: int, t_tap: int, pe_out: int, pe_tap: int,
                      s_out: int, s_tap: int) -> int:
    """Distinct input rows of all PEs together: PE (j, i) reads outputs
    ``j * pe_out + [0, t_out)`` with taps ``i * pe_tap + [0, t_tap)``. When
    the tiles fill the PE tiles (``t = pe``) this is one window of ``s * t``
    outputs and taps; below the PE level the PEs' ranges leave gaps."""
    outputs = (np.arange(s_out)[:, None] * pe_out + np.arange(t_out)).ravel()
    taps = (np.arange(s_tap)[:, None] * pe_tap + np.arange(t_tap)).ravel()
    return int(np.unique(np.add.outer(outputs * stride, taps * dilation)).size)


_union_window_rows = np.vectorize(union_window_rows, otypes=[np.int64])


def union_input_words(layer: ConvLayer, t: dict, pe_tile: dict, s: dict) -> np.ndarray:
    """Distinct input words of the tiles ``t`` of all PEs (spatial factors
    ``s``, PE tiles ``pe_tile``): the PEs' N, G, C ranges never overlap, their
    windows may."""
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    rows = _union_window_rows(sh, dh, t["P"], t["R"], pe_tile["P"], pe_tile["R"], s["P"], s["R"])
    cols = _union_window_rows(sw, dw, t["Q"], t["S"], pe_tile["Q"], pe_tile["S"], s["Q"], s["S"])
    return t["N"] * s["N"] * t["G"] * s["G"] * t["C"] * s["C"] * rows * cols


def tile_elements(layer: ConvLayer, tensor: str, t: dict[str, np.ndarray]) -> np.ndarray:
    """Elements of a tile of ``tensor`` spanning ``t[d]`` along each dimension."""
    if tensor == "weights":
        return t["G"] * t["M"] * t["C"] * t["R"] * t["S"]
    if tensor == "outputs":
        return t["N"] * t["G"] * t["M"] * t["P"] * t["Q"]
    return (t["N"] * t["G"] * t["C"]
            * window_rows(layer, "P", t["P"], t["R"]) * window_rows(layer, "Q", t["Q"], t["S"]))


def fills_and_distinct(loops: list[tuple[str, np.ndarray]], tensor: str) -> tuple[np.ndarray, np.ndarray]:
    """(fill events, distinct tiles) of one instance of a tile of ``tensor``
    under ``loops`` (outermost first)."""
    relevant = RELEVANT[tensor]
    in_suffix = np.asarray(True)
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
                {"name": n, "reads": r, "writes": w, "tile_bytes": {k: v / 8 for k, v in b.items()}, "cycles": c}
                for n, r, w, b, c in zip(self.level_names, self.reads, self.writes,
                                         self.tile_bits, self.level_cycles, strict=True)
            ],
        }


@dataclass
class LinkWords:
    """The order-independent part of the vectorized core: tiles, instances,
    busy PEs, tile bits, and per fill path (``bypass.links``) the words one
    fill writes into the child's instances and reads at the parent."""

    tiles: list
    instances: list
    pes_used: np.ndarray
    tile_bits: list
    paths: list  # (Link, child words, parent words, crosses the fan-out)


def link_words(problem: MultiLevelProblem, factors: list[dict[str, np.ndarray]],
               spatial: dict[str, np.ndarray]) -> LinkWords:
    """Tiles and words per fill of every path; loop orders do not enter
    them, so a search over orders computes them once."""
    layer, hier = problem.layer, problem.hierarchy
    K, pe = len(hier.levels), hier.pe_level
    one = np.asarray(1, dtype=np.int64)
    s = {d: np.asarray(spatial.get(d, 1), dtype=np.int64) for d in DIMS}
    pes_used = one
    for d in DIMS:
        pes_used = pes_used * s[d]
    tiles: list[dict[str, np.ndarray]] = [dict() for _ in range(K + 1)]
    tiles[K] = {d: one for d in DIMS}
    for l in range(K - 1, -1, -1):
        tiles[l] = {d: np.asarray(factors[l][d], dtype=np.int64) * tiles[l + 1][d] * (s[d] if l + 1 == pe else 1)
                    for d in DIMS}
    union = [{d: tiles[l][d] * s[d] for d in DIMS} if l >= pe else tiles[l] for l in range(K + 1)]
    instances = [pes_used if l >= pe else one for l in range(K + 1)]
    paths = []
    child_of: dict[tuple[int, str], np.ndarray] = {}
    for link in links(hier):
        l, tensor, a = link.level, link.tensor, link.parent
        if (l, tensor) not in child_of:
            child_of[l, tensor] = tile_elements(layer, tensor, tiles[l]) * instances[l]
        child_words = parent_words = child_of[l, tensor]
        crosses = a < pe <= l
        if crosses:  # one shared parent serves every PE at once
            parent_words = (union_input_words(layer, tiles[l], tiles[pe], s) if tensor == "inputs"
                            else tile_elements(layer, tensor, union[l]))
        paths.append((link, child_words, parent_words, crosses))
    prec = layer.precision
    bits = {"inputs": prec.inputs, "weights": prec.weights, "outputs": prec.psums}
    tile_bits = [{t: tile_elements(layer, t, tiles[l]) * bits[t] for t in TENSORS} for l in range(K)]
    return LinkWords(tiles, instances, pes_used, tile_bits, paths)


def link_terms(problem: MultiLevelProblem, factors: list[dict[str, np.ndarray]],
               spatial: dict[str, np.ndarray], orders: list[tuple[str, ...]], words: LinkWords | None = None):
    """The vectorized core: per possible fill path (``bypass.links``), the
    reads and writes it adds (words, as (kind, level, count)) and the words
    it moves into and out of PE-private storage; plus tile bits per level
    and tensor, the tiles, the instances per level and the busy PEs.

    ``factors[l][d]`` are temporal trip counts, ``spatial[d]`` the spatial
    factor of d (rows times columns), ``orders[l]`` each level's order;
    ``words`` is :func:`link_words` of the same factors when already known."""
    K = len(problem.hierarchy.levels)
    words = words or link_words(problem, factors, spatial)
    terms = []
    fills_of: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    for link, child_words, parent_words, crosses in words.paths:
        l, tensor, a = link.level, link.tensor, link.parent
        if (l, tensor) not in fills_of:
            loops = [(d, factors[j][d]) for j in range(l) for d in orders[j]]
            fills_of[l, tensor] = fills_and_distinct(loops, tensor)
        fills, distinct = fills_of[l, tensor]
        counts = []
        boundary = np.asarray(0, dtype=np.int64)  # words into and out of PE-private storage
        if tensor != "outputs":
            counts.append(("reads", a, fills * parent_words))
            if l < K:
                counts.append(("writes", l, fills * child_words))
            if crosses:
                boundary = fills * child_words
        else:
            refills = (fills - distinct) * parent_words
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


def access_counts(problem: MultiLevelProblem, factors: list[dict[str, np.ndarray]],
                  spatial: dict[str, np.ndarray], orders: list[tuple[str, ...]]):
    """Reads and writes per level and tensor (words), tile bits per level and
    tensor, tiles, instances per level, busy PEs and array-boundary words,
    with every level keeping what it may hold."""
    hier = problem.hierarchy
    terms, tile_bits, tiles, instances, pes_used = link_terms(problem, factors, spatial, orders)
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
    problem = kept_problem(problem, mapping)
    hier = problem.hierarchy
    K = len(hier.levels)
    factors = [{d: np.int64(mapping.factor(l, d)) for d in DIMS} for l in range(K)]
    spatial = {d: np.int64(mapping.spatial(d)) for d in DIMS}
    orders = [tuple(loops.order) for loops in mapping.levels]
    reads, writes, tile_bits, _, instances, pes_used, boundary = access_counts(problem, factors, spatial, orders)
    reads = [{t: int(v) for t, v in r.items()} for r in reads]
    writes = [{t: int(v) for t, v in w.items()} for w in writes]
    tile_bits = [{t: int(v) for t, v in b.items()} for b in tile_bits]
    fits = all(level.fits(tile_bits[l]) for l, level in enumerate(hier.levels) if l > 0)
    compute = 1
    for l in range(K):
        for d in DIMS:
            compute *= mapping.factor(l, d)
    level_cycles = []
    for l, level in enumerate(hier.levels):
        words = sum(reads[l].values()) + sum(writes[l].values())
        # whole cycles: a level moving w words at b words per cycle is busy ceil(w / b) cycles
        level_cycles.append(float(math.ceil(words / int(instances[l]) / level.bandwidth - 1e-9)) if level.bandwidth else 0.0)
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
        utilization=int(pes_used) / hier.pes,
        array_boundary_words=int(boundary),
    )


def extents(layer: ConvLayer) -> dict[str, int]:
    return {d: layer_extent(layer, d) for d in DIMS}


def objective_values(problem: MultiLevelProblem, factors: list[dict[str, np.ndarray]],
                     spatial_rows: dict[str, np.ndarray], spatial_cols: dict[str, np.ndarray],
                     orders: list[tuple[str, ...]], keeps: list[tuple[frozenset[str], ...]] | None = None,
                     words: LinkWords | None = None):
    """(objective, feasible) broadcast over arrays of factors: the same
    numbers ``evaluate_multilevel`` reports, for many mappings at once, with
    every level keeping what it may hold.

    With ``keeps`` (keep sets of a hierarchy with chosen bypass), each
    mapping's best keep set among them: (objective, feasible, index into
    ``keeps``). The fill paths are computed once and summed per keep set;
    ``words`` (:func:`link_words` of the same factors) saves recomputing
    what the orders do not change."""
    hier = problem.hierarchy
    K = len(hier.levels)
    spatial = {d: np.asarray(spatial_rows.get(d, 1)) * np.asarray(spatial_cols.get(d, 1)) for d in DIMS}
    terms, tile_bits, _, instances, _ = link_terms(problem, factors, spatial, orders, words)
    rows_used = np.asarray(1, dtype=np.int64)
    cols_used = np.asarray(1, dtype=np.int64)
    compute = np.asarray(1, dtype=np.int64)
    for d in DIMS:
        rows_used = rows_used * np.asarray(spatial_rows.get(d, 1))
        cols_used = cols_used * np.asarray(spatial_cols.get(d, 1))
        for l in range(K):
            compute = compute * np.asarray(factors[l][d], dtype=np.int64)
    fits_array = (rows_used <= hier.rows) & (cols_used <= hier.cols)

    def score(keep):
        held = keep or hier.default_keep()
        reads, writes, _ = sum_terms(terms, K, keep)
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
                    latency = np.maximum(latency, np.ceil(words / instances[l] / level.bandwidth - 1e-9))
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
