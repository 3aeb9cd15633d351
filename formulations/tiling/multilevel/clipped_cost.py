"""Cost model of mappings with partial tiles (the ``any`` space).

The same fill paths, sides and counting rules as ``cost.py``, with every
access count written as a product over dimensions of the per-dimension sums
of ``clipping.py``: the fills of a boundary are the non-empty events of the
loops above it that re-fetch the tile, the words per event are the valid
indices of its tile. For a dimension that does not index the tensor, which
of its loops re-fetch is a *prefix* of its levels: the loops outside the
innermost non-trivial loop that indexes the tensor (``nonfree_prefix``). On
divisor rows every sum is the product of the factors it covers, so this
model gives the counts of ``cost.py`` there (tested on random mappings).

``ClippedTables`` holds the per-dimension sums as tables over candidate rows
(and prefixes), so the enumeration scores many mappings at once and CP-SAT
reads the same numbers through element constraints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bypass import links
from .clipping import chain, collapsed_levels, count, pair_rows, roles, temporal_roles
from .cost import (TENSORS, MultiLevelMetrics, assemble_metrics, best_keep, fanout_fits, sum_terms,
                   tile_elements)
from .problem import DIMS, RELEVANT, MultiLevelMapping, MultiLevelProblem, kept_problem, layer_extent
from .rows import tile_extent

WINDOWS = (("P", "R"), ("Q", "S"))


@dataclass(frozen=True)
class Side:
    """One side of a fill path's transfers: the tiles of ``level`` for tensor
    ``tensor``, merged over the fan-outs in ``union`` (one parent read serves
    their instances)."""

    level: int
    tensor: str
    union: tuple[int, ...] = ()


def path_sides(hier, link) -> tuple[Side, Side, Side]:
    """(child, parent, refill) sides of a fill path: the child's instances
    each take their own words; the parent's reads merge over the fan-outs
    between that share the tensor; a revisit's partial sums go to one
    instance of every group of the fan-outs between."""
    l, X, a = link.level, link.tensor, link.parent
    crossed = hier.fanouts_between(a, l)
    shared = tuple(f for f in crossed if hier.fanouts[f].shares(X))
    refill = crossed if X == "outputs" and len(shared) < len(crossed) else shared
    return Side(l, X), Side(l, X, shared), Side(l, X, refill)


class ClippedTables:
    """Per-dimension sums over candidate factor rows, computed once per side
    and prefix. ``rows[d]`` is an array of factor rows (``rows.py``)."""

    def __init__(self, problem: MultiLevelProblem, rows: dict[str, np.ndarray]):
        self.problem = problem
        self.hier = problem.hierarchy
        self.extent = {d: layer_extent(problem.layer, d) for d in DIMS}
        self.rows = {d: np.asarray(rows[d]).reshape(-1, np.shape(rows[d])[-1]) for d in DIMS}
        self.chains = {d: [chain(r, self.hier) for r in self.rows[d]] for d in DIMS}
        self._cache: dict = {}

    def dim(self, d: str, side: Side) -> np.ndarray:
        """(rows, level + 1) table: the sum of dimension ``d`` for ``side``
        when the loops of the levels above each prefix re-fetch (a dimension
        that indexes the tensor has every loop above re-fetch: one column
        repeated)."""
        key = ("dim", d, side)
        if key not in self._cache:
            l, D = side.level, self.extent[d]
            if d in RELEVANT[side.tensor]:  # every valid index lies in exactly one event
                table = np.full((len(self.chains[d]), l + 1), D, dtype=np.int64)
            else:
                table = np.asarray([[count(D, c, roles(self.hier, l, p, side.union)) for p in range(l + 1)]
                                    for c in self.chains[d]], dtype=np.int64).reshape(-1, l + 1)
            self._cache[key] = table
        return self._cache[key]

    def pair(self, axis: str, side: Side) -> np.ndarray:
        """(rows of the output axis, rows of its window dimension): the
        distinct input rows (or columns) summed over the events of ``side``."""
        key = ("pair", axis, side)
        if key not in self._cache:
            tap = "R" if axis == "P" else "S"
            layer = self.problem.layer
            s, dil = layer.stride[axis == "Q"], layer.dilation[axis == "Q"]
            role = roles(self.hier, side.level, side.level, side.union)
            self._cache[key] = np.asarray(
                [[pair_rows(s, dil, self.extent[axis], co, role, self.extent[tap], ct, role)
                  for ct in self.chains[tap]] for co in self.chains[axis]], dtype=np.int64)
        return self._cache[key]

    def tile(self, d: str, level: int) -> np.ndarray:
        """Per row, the extent of ``level``'s largest tile along ``d``."""
        key = ("tile", d, level)
        if key not in self._cache:
            self._cache[key] = np.asarray([min(tile_extent(r, self.hier, level), self.extent[d]) for r in self.rows[d]],
                                          dtype=np.int64)
        return self._cache[key]

    def collapsed(self, d: str, level: int) -> np.ndarray:
        """Per row, whether a partial tile leaves ``d``'s loop at ``level`` a
        single trip on some instance (``clipping.collapsed_positions``)."""
        key = ("collapsed", d)
        if key not in self._cache:
            self._cache[key] = [collapsed_levels(r, self.hier, self.extent[d]) for r in self.rows[d]]
        return np.asarray([level in levels for levels in self._cache[key]], dtype=bool)

    def compute(self, d: str) -> np.ndarray:
        """Per row, the temporal iterations of ``d`` in which some PE works."""
        key = ("compute", d)
        if key not in self._cache:
            role = temporal_roles(self.hier)
            self._cache[key] = np.asarray([count(self.extent[d], c, role) for c in self.chains[d]], dtype=np.int64)
        return self._cache[key]

    def side_words(self, side: Side, index: dict[str, np.ndarray], prefix: dict[str, np.ndarray]) -> np.ndarray:
        """Words of ``side`` for the mappings whose rows are ``index[d]`` and
        whose re-fetching prefixes are ``prefix[d]`` (dimensions that do
        not index the tensor)."""
        X = side.tensor
        total = np.asarray(1, dtype=np.int64)
        windowed = {"P", "R", "Q", "S"} if X == "inputs" else set()
        for d in DIMS:
            if d in windowed:
                continue
            column = prefix[d] if d not in RELEVANT[X] else 0
            total = total * self.dim(d, side)[index[d], column]
        for axis, tap in WINDOWS if X == "inputs" else ():
            total = total * self.pair(axis, side)[index[axis], index[tap]]
        return total


def outermost_rule(tables: ClippedTables, index: dict[str, np.ndarray], table: dict[str, np.ndarray],
                   orders) -> np.ndarray:
    """Whether every loop that a partial tile leaves a single trip on some
    instance lies outside all non-trivial loops of other dimensions (a G
    loop outside is harmless: G indexes every tensor), the condition under
    which the per-dimension sums are exact (``clipping.py``)."""
    ok = np.asarray(True)
    K = len(orders)
    for d in DIMS:
        for j in range(K):
            collapsed = tables.collapsed(d, j)
            if not collapsed.any():
                continue
            outside = np.asarray(False)
            for e in DIMS:
                if e in (d, "G"):
                    continue
                for i in range(j + (orders[j].index(e) < orders[j].index(d))):
                    outside = outside | (np.asarray(table[e])[..., i] > 1)
            ok = ok & ~(collapsed[index[d]] & outside)
    return ok


def nonfree_prefix(table: dict[str, np.ndarray], orders, level: int, tensor: str) -> dict[str, np.ndarray]:
    """Per dimension, how many levels (outermost first) have its loop above
    ``level`` re-fetch ``tensor``'s tile: the loops outside the innermost
    non-trivial loop that indexes the tensor. ``table[d]`` holds factor rows
    along its last axis; ``orders[j]`` is level j's loop order."""
    relevant = RELEVANT[tensor]
    shape = np.broadcast_shapes(*(np.shape(table[d])[:-1] for d in DIMS))
    cut_level = np.full(shape, -1, dtype=np.int64)
    cut_rank = np.zeros(shape, dtype=np.int64)
    for j in range(level - 1, -1, -1):
        for rank in range(len(orders[j]) - 1, -1, -1):
            d = orders[j][rank]
            if d not in relevant:
                continue
            hit = (cut_level < 0) & (np.asarray(table[d])[..., j] > 1)
            cut_level = np.where(hit, j, cut_level)
            cut_rank = np.where(hit, rank, cut_rank)
    out = {}
    for d in DIMS:
        if d in relevant:
            continue
        before = np.zeros(shape, dtype=np.int64)
        for j in range(level):
            before = np.where(cut_level == j, (orders[j].index(d) < cut_rank).astype(np.int64), before)
        out[d] = np.where(cut_level < 0, 0, cut_level + before)
    return out


def clipped_link_terms(problem: MultiLevelProblem, tables: ClippedTables, index: dict[str, np.ndarray],
                       table: dict[str, np.ndarray], orders) -> list:
    """Per fill path, the reads and writes it adds (as (kind, level, words))
    and the words it moves across the array boundary, in the form of
    ``cost.link_terms`` (``cost.sum_terms`` adds those of a keep set), for
    the mappings with rows ``index[d]`` (factor rows ``table[d]``) and loop
    ``orders``."""
    hier = problem.hierarchy
    K, pe = len(hier.levels), hier.pe_level
    zero = np.asarray(0, dtype=np.int64)
    terms = []
    prefixes: dict = {}
    for link in links(hier):
        l, X, a = link.level, link.tensor, link.parent
        if (l, X) not in prefixes:
            prefixes[l, X] = nonfree_prefix(table, orders, l, X)
            if hier.fetches_every_trip(l):  # no operand latches: every loop above re-fetches
                prefixes[l, X] = {d: np.full(np.shape(v), K, dtype=np.int64) for d, v in prefixes[l, X].items()}
        prefix = prefixes[l, X]
        child, parent, refill = path_sides(hier, link)
        child_words = tables.side_words(child, index, prefix)
        parent_words = tables.side_words(parent, index, prefix)
        crosses = a < pe <= l
        if X != "outputs":
            counts = [("reads", a, parent_words)] + ([("writes", l, child_words)] if l < K else [])
            terms.append((link, counts, child_words if crosses else zero))
            continue
        first = {d: zero for d in prefix}
        refills = tables.side_words(refill, index, prefix) - tables.side_words(refill, index, first)
        counts = [("reads", a, refills), ("writes", a, parent_words)]
        if l < K:
            counts += [("writes", l, refills), ("reads", l, child_words)]
        terms.append((link, counts, refills + child_words if crosses else zero))
    return terms


def clipped_tile_bits(problem: MultiLevelProblem, tables: ClippedTables,
                      index: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Bits of the largest tile of every level and tensor (tiles clipped at the extents)."""
    layer = problem.layer
    prec = layer.precision
    bits = {"inputs": prec.inputs, "weights": prec.weights, "outputs": prec.psums}
    out = []
    for l in range(len(problem.hierarchy.levels)):
        t = {d: tables.tile(d, l)[index[d]] for d in DIMS}
        out.append({X: tile_elements(layer, X, t) * bits[X] for X in TENSORS})
    return out


def evaluate_clipped(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> MultiLevelMetrics:
    """Exact accesses, energy and cycles of a mapping with partial tiles
    (``evaluate_multilevel`` sends mappings outside the divisor space here)."""
    problem = kept_problem(problem, mapping)
    layer, hier = problem.layer, problem.hierarchy
    table = {d: np.asarray([mapping.row(d, len(hier.fanouts))], dtype=np.int64) for d in DIMS}
    tables = ClippedTables(problem, table)
    index = {d: np.zeros(1, dtype=np.int64) for d in DIMS}
    orders = [tuple(loops.order) for loops in mapping.levels]
    keep = hier.default_keep() if hier.chooses_bypass else None
    reads, writes, boundary = sum_terms(clipped_link_terms(problem, tables, index, table, orders), len(hier.levels),
                                        keep)
    first = [{t: np.asarray(v).ravel()[0] for t, v in part.items()} for part in (*reads, *writes)]
    instances = [math.prod(mapping.fanout(f).factor(d) for f in hier.fanouts_above(l) for d in DIMS)
                 for l in range(len(hier.levels))]
    compute = math.prod(int(tables.compute(d)[0]) for d in DIMS)
    tile_bits = [{t: np.asarray(v).ravel()[0] for t, v in b.items()} for b in clipped_tile_bits(problem, tables, index)]
    return assemble_metrics(problem, first[:len(reads)], first[len(reads):], tile_bits, compute, instances,
                            layer.macs / (compute * hier.pes), int(np.asarray(boundary).ravel()[0]))


def clipped_objective_values(problem: MultiLevelProblem, tables: ClippedTables, index: dict[str, np.ndarray],
                             table: dict[str, np.ndarray], orders, keeps=None):
    """``cost.objective_values`` for the ``any`` space: (objective, feasible)
    for the mappings with rows ``index[d]`` (factor rows ``table[d]``) and
    loop ``orders``; with ``keeps``, each mapping's best keep set among them
    (objective, feasible, index into ``keeps``)."""
    hier = problem.hierarchy
    K = len(hier.levels)
    compute = np.asarray(1, dtype=np.int64)
    for d in DIMS:
        compute = compute * tables.compute(d)[index[d]]
    instances = []
    for l in range(K):
        count_ = np.asarray(1, dtype=np.int64)
        for f in hier.fanouts_above(l):
            for d in DIMS:
                count_ = count_ * table[d][..., K + 2 * f] * table[d][..., K + 2 * f + 1]
        instances.append(count_)
    terms = clipped_link_terms(problem, tables, index, table, orders)
    return best_keep(problem, lambda keep: sum_terms(terms, K, keep)[:2], clipped_tile_bits(problem, tables, index),
                     compute, instances, fanout_fits(problem, table) & outermost_rule(tables, index, table, orders),
                     keeps)
