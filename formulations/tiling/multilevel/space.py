"""The multi-level mapping space and the exact reduction of its loop orders.

Every dimension but G indexes exactly two of the three tensors, so the
dimensions fall into three *reuse groups*, one per tensor they do not index
(``REUSE_GROUPS``).  Within one level, what a loop order decides for tensor
X is only which loops of X's group lie inside every non-trivial loop that
indexes X.  Moving a loop next to the innermost loop of its own group never
shrinks that set for its group and leaves the other groups' sets alone, and
G (which indexes everything) is best outermost.  So the orders that keep
each group together, G outside, lose nothing: six per level, one per
ranking of the three groups (docs/tiling-multilevel.md; tested against all
orders).
"""

from __future__ import annotations

import itertools
import threading
from functools import lru_cache

import numpy as np

from .constraints import emptying_constraints
from .problem import DIMS, REUSE_GROUPS, LevelLoops, MultiLevelMapping, MultiLevelProblem, SpatialLoops, layer_extent
from .clipping import chain, positions, remainder_rows
from .halo import halo_orders
from .rows import fits_fanouts, row_width

GROUP_RANKINGS: tuple[tuple[str, ...], ...] = tuple(itertools.permutations(("inputs", "weights", "outputs")))
"""Rankings of the reuse groups, innermost group first."""


def group_order(ranking: tuple[str, ...]) -> tuple[str, ...]:
    """The loop order (outermost first) that keeps ``ranking[0]``'s group innermost."""
    order = ["G"]
    for tensor in reversed(ranking):
        order.extend(REUSE_GROUPS[tensor])
    return tuple(order)


GROUP_ORDERS: tuple[tuple[str, ...], ...] = tuple(group_order(r) for r in GROUP_RANKINGS)


@lru_cache(maxsize=4096)
def ordered_factorizations(n: int, slots: int) -> tuple[tuple[int, ...], ...]:
    """All ways to write ``n`` as an ordered product of ``slots`` factors."""
    if slots == 1:
        return ((n,),)
    out = []
    for first in range(1, n + 1):
        if n % first == 0:
            out.extend((first, *rest) for rest in ordered_factorizations(n // first, slots - 1))
    return tuple(out)


def emptied_by(problem: MultiLevelProblem) -> str | None:
    """The mapping constraints that leave some dimension no factor row,
    each named with its dimension (None when every dimension keeps one)."""
    if problem.constraints.empty:
        return None
    hier = problem.hierarchy
    for f, spatial in problem.constraints.fanouts:  # a fixed factor wider than its axis, said with the axis's size
        fan = hier.fanouts[f]
        label = f"fan-out {fan.name}" if len(hier.fanouts) > 1 else "spatial"
        for axis, fixed, size in (("rows", spatial.row_factors, fan.rows), ("cols", spatial.col_factors, fan.cols)):
            wide = [(d, v) for d, v in fixed if v > size]
            if wide:
                return (f"the constraint {label} {axis}: factor {wide[0][0]} = {wide[0][1]} needs {wide[0][1]} "
                        f"{axis}; the fan-out has {size}")
    found = []
    for dim in DIMS:
        candidates = (ordered_factorizations(layer_extent(problem.layer, dim), row_width(hier))
                      if problem.factors == "divisors" else remainder_covers(problem, dim))
        rows = [c for c in candidates if not (dim in ("R", "S") and c[0] != 1) and fits_fanouts(c, hier)]
        names = emptying_constraints(problem.constraints, hier, dim, rows)
        extent = f"{dim} (extent {layer_extent(problem.layer, dim)})"
        if len(names) == 1:
            found.append(f"the constraint {names[0]} leaves no way to map {extent}")
        elif names:
            found.append(f"the constraints {', '.join(names[:-1])} and {names[-1]} together leave no way to "
                         f"map {extent}")
    return "; ".join(found) if found else _overfull_fanout(problem)


def _overfull_fanout(problem: MultiLevelProblem) -> str | None:
    """A fan-out axis that the dimensions' least admissible factors overflow
    together, or a least utilization above what the admissible factors can
    reach: each dimension alone may fit while their product does not."""
    hier = problem.hierarchy
    K = len(hier.levels)
    rows = {d: dim_choices(problem, d) for d in DIMS}
    for f, fan in enumerate(hier.fanouts):
        label = f"fan-out {fan.name}" if len(hier.fanouts) > 1 else "spatial"  # as the instance names it
        for side, size, axis in ((0, fan.rows, "rows"), (1, fan.cols, "cols")):
            least = {d: int(rows[d][:, K + 2 * f + side].min()) for d in DIMS}
            if np.prod(list(least.values())) > size:
                forced = " x ".join(f"{d}={v}" for d, v in least.items() if v > 1)
                return (f"the constraints on {label} {axis} unroll at least {forced} = "
                        f"{int(np.prod(list(least.values())))}, more than its {size} {axis}")
    for f, least_busy in problem.constraints.least_busy(hier):
        fan = hier.fanouts[f]
        most = 1
        for side, size in ((0, fan.rows), (1, fan.cols)):
            # the largest product of one factor per dimension that fits the axis
            reach = {1}
            for d in DIMS:
                options = set(int(v) for v in rows[d][:, K + 2 * f + side])
                reach = {a * b for a in reach for b in options if a * b <= size}
            most *= max(reach)
        if most < least_busy:
            label = f"fan-out {fan.name}" if len(hier.fanouts) > 1 else "the array"
            return (f"the constraint of at least {least_busy} busy instances of {label} ({fan.size} in all) cannot be "
                    f"met: the layer's sizes and the constraints keep at most {most} busy")
    return None


def dim_choices(problem: MultiLevelProblem, dim: str) -> np.ndarray:
    """Factor rows of ``dim`` (``rows.py``: a factor per level, then rows and
    columns per fan-out), DRAM kept at 1 for R and S, spatial factors within
    each fan-out, and the instance's mapping constraints on ``dim`` kept
    (``constraints.py``).

    The table is read-only and shared: the models, their pieces, the
    bounds and the heuristics all ask for it, often many times per layer,
    and listing the factorizations is the costly part."""
    key = (dim, problem.factors, repr(problem.layer), repr(problem.hierarchy), repr(problem.constraints))
    with _DIM_CHOICES_LOCK:  # a sweep may solve in threads
        table = _DIM_CHOICES.get(key)
    if table is None:
        table = _list_dim_choices(problem, dim)
        table.setflags(write=False)
        if table.nbytes <= DIM_CHOICES_BYTES:
            with _DIM_CHOICES_LOCK:
                while sum(t.nbytes for t in _DIM_CHOICES.values()) + table.nbytes > DIM_CHOICES_BYTES:
                    _DIM_CHOICES.pop(next(iter(_DIM_CHOICES)))  # the oldest first
                _DIM_CHOICES[key] = table
    return table


DIM_CHOICES_BYTES = 64 * 2**20
"""Bytes of row tables kept per process: a network's distinct layers on a
preset take a few MiB; a table larger than this is listed again when asked."""

_DIM_CHOICES: dict[tuple, np.ndarray] = {}
_DIM_CHOICES_LOCK = threading.Lock()


def _list_dim_choices(problem: MultiLevelProblem, dim: str) -> np.ndarray:
    """``dim_choices`` without the cache."""
    hier = problem.hierarchy
    width = row_width(hier)
    rows = []
    candidates = (ordered_factorizations(layer_extent(problem.layer, dim), width) if problem.factors == "divisors"
                  else remainder_covers(problem, dim))
    tests = [] if problem.constraints.empty else [test for _, test in problem.constraints.tests(hier, dim)]
    for combo in candidates:
        if dim in ("R", "S") and combo[0] != 1:
            continue
        if not fits_fanouts(combo, hier):
            continue
        if tests and not all(test(combo) for test in tests):
            continue
        rows.append(combo)
    return np.asarray(rows, dtype=np.int64).reshape(-1, width)


def remainder_covers(problem: MultiLevelProblem, dim: str) -> list[tuple[int, ...]]:
    """Factor rows of ``dim`` in the ``any`` space (``clipping.remainder_rows``:
    the divisor rows and those with one remainder position), each fan-out's
    factor split into rows and columns every way that fits."""
    hier = problem.hierarchy
    K = len(hier.levels)
    extent = layer_extent(problem.layer, dim)
    order = positions(hier)
    limits = tuple(None if kind == "t" else hier.fanouts[j].size for kind, j in order)
    out = []
    for factors in remainder_rows(extent, limits):
        row = [1] * row_width(hier)
        splits = []
        for (kind, j), n in zip(order, factors, strict=True):
            if kind == "t":
                row[j] = n
            else:
                fan = hier.fanouts[j]
                splits.append((K + 2 * j, [(r, n // r) for r in range(1, min(n, fan.rows) + 1)
                                           if n % r == 0 and n // r <= fan.cols]))
        for choice in itertools.product(*(options for _, options in splits)):
            for (slot, _), (r, c) in zip(splits, choice, strict=True):
                row[slot], row[slot + 1] = r, c
            out.append(tuple(row))
    return out


MAX_ANY_EXTENT = 4096
"""Largest extent a dimension may have in the ``any`` space: its rows grow
with the extent's divisors times its outer iteration counts, and each row's
partial tiles are found on a grid of the extent's size."""


def any_space_refusal(layer) -> str | None:
    """Why the ``any`` space does not take ``layer`` (None when it does)."""
    from .problem import DIMS as dims

    large = [(d, layer_extent(layer, d)) for d in dims if layer_extent(layer, d) > MAX_ANY_EXTENT]
    if not large:
        return None
    d, extent = large[0]
    return (f"factors: any takes dimensions up to {MAX_ANY_EXTENT:,} ({d} of {layer.name} is {extent:,}); "
            "use factors: divisors for this layer")


def outside_space(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> list[str]:
    """Why ``mapping`` lies outside the problem's declared factor space
    (empty when it lies inside): a partial tile in the ``divisors`` space,
    or in the ``any`` space a row with an empty iteration or partial tiles
    at two levels."""
    hier = problem.hierarchy
    order = positions(hier)
    limits = tuple(None if kind == "t" else hier.fanouts[j].size for kind, j in order)
    out = []
    for d in DIMS:
        row = mapping.row(d, len(hier.fanouts))
        extent = layer_extent(problem.layer, d)
        total = int(np.prod(row))
        one_partial = chain(row, hier) in _remainder_set(extent, limits)
        if problem.factors == "divisors":
            if total != extent:
                out.append(f"factors of {d} multiply to {total}, not its extent {extent}: " + (
                    "a partial tile, outside the divisors space (space: {factors: any} allows one per dimension)"
                    if one_partial else "an empty iteration or partial tiles at two levels, outside every space"))
        elif not one_partial:
            out.append(f"factors of {d} ({total} for its extent {extent}) leave an empty iteration or partial "
                       "tiles at two levels, outside the space of one partial tile per dimension")
    return out


@lru_cache(maxsize=256)
def _remainder_set(extent: int, limits: tuple) -> frozenset:
    return frozenset(remainder_rows(extent, limits))


def axes_interchangeable(problem: MultiLevelProblem) -> bool:
    """Whether swapping the vertical and horizontal axes ((P, R) with (Q, S))
    maps every mapping to one of equal cost: equal output and filter extents,
    strides and dilations, and the same factor rows allowed on both sides
    (a constraint such as "the columns unroll Q but not P" breaks it). In
    the ``any`` space the rule that keeps a collapsed loop outermost reads
    the order inside a reuse group (P before Q), so it is not symmetric."""
    layer = problem.layer
    if problem.factors != "divisors":
        return False
    if not (layer.P == layer.Q and layer.R == layer.S and layer.stride[0] == layer.stride[1]
            and layer.dilation[0] == layer.dilation[1]):
        return False
    return all(np.array_equal(dim_choices(problem, a), dim_choices(problem, b)) for a, b in (("P", "Q"), ("R", "S")))


def settled_rankings(problem: MultiLevelProblem) -> dict[int, tuple[str, ...]]:
    """Levels whose loop order cannot matter, with the ranking to use there.

    At a level where at most one reuse group can have a loop of more than
    one trip (every other dimension's factor there is 1 in every row of its
    table, as in a scratchpad whose constraints allow only C and R loops),
    the six group orders are the same order once one-trip loops are
    dropped. So one ranking, that group innermost, loses nothing."""
    rows = {d: dim_choices(problem, d) for d in DIMS}
    settled = {}
    for l in range(len(problem.hierarchy.levels)):
        groups = [X for X in ("inputs", "weights", "outputs")
                  if any((rows[d][:, l] > 1).any() for d in REUSE_GROUPS[X])]
        if len(groups) <= 1:
            X = groups[0] if groups else "inputs"
            settled[l] = (X, *(Y for Y in ("inputs", "weights", "outputs") if Y != X))
    return settled


def canonical_ranking(ranking: tuple[str, ...], trivial: set[str]) -> tuple[str, ...]:
    """The one ranking the CP-SAT model allows for the loop order of
    ``ranking`` at a level where the groups in ``trivial`` have no loop of
    more than one trip: the others in ``ranking``'s order, innermost, then
    the trivial ones in (inputs, weights, outputs) order
    (docs/tiling-multilevel.md, "One ranking per loop order")."""
    return tuple(X for X in ranking if X not in trivial) + tuple(
        X for X in ("inputs", "weights", "outputs") if X in trivial)


def level_orders(problem: MultiLevelProblem) -> list[tuple[tuple[str, ...], ...]]:
    """Per level, the group orders a search must try (one where the order is
    settled); with halo reuse, each also with every window dimension
    innermost in its group (``halo.halo_orders``)."""
    settled = settled_rankings(problem)
    orders = [(group_order(settled[l]),) if l in settled else GROUP_ORDERS
              for l in range(len(problem.hierarchy.levels))]
    return [halo_orders(o) for o in orders] if problem.halo else orders


def space_points(problem: MultiLevelProblem) -> int:
    count = 1
    for d in DIMS:
        count *= len(dim_choices(problem, d))
    return count * len(GROUP_ORDERS) ** len(problem.hierarchy.levels)


def mapping_from_choice(problem: MultiLevelProblem, rows: dict[str, np.ndarray],
                        orders: tuple[tuple[str, ...], ...]) -> MultiLevelMapping:
    """Assemble a mapping from one factor row per dimension and one order per level."""
    K = len(problem.hierarchy.levels)
    levels = tuple(LevelLoops({d: int(rows[d][l]) for d in DIMS}, orders[l]) for l in range(K))
    fanouts = tuple(SpatialLoops({d: int(rows[d][K + 2 * f]) for d in DIMS if rows[d][K + 2 * f] > 1},
                                 {d: int(rows[d][K + 2 * f + 1]) for d in DIMS if rows[d][K + 2 * f + 1] > 1})
                    for f in range(len(problem.hierarchy.fanouts)))
    return MultiLevelMapping(levels=levels, fanouts=fanouts)
