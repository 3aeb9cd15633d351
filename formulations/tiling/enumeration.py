"""Exhaustive, vectorized enumeration of the tiling space.

Every tile combination is evaluated with the cost model's own numpy core
(``cost.traffic_bits`` / ``cost.footprint_bits``), once per stationary class
with that class's canonical loop order.  It is an exact method independent of
any solver: it proves optimality by having looked at every point.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .cost import footprint_bits, fits, traffic_bits
from .problem import LOOP_DIMS, Mapping, TilingProblem
from .space import CANONICAL_ORDER, STATIONARY_CLASSES, DimTable, dim_tables, order_classes

ENUMERATION_LIMIT = 10**7
"""Most points evaluated (tile combinations times order classes)."""

_CHUNK = 2_000_000


@dataclass
class EnumerationOutcome:
    mapping: Mapping | None
    objective_bits: int | None
    points: int
    reduced: bool
    wall_time_s: float
    per_class_bits: dict[str, int | None]
    complete: bool = True
    """False when ``deadline`` stopped the walk: the mapping is the best of
    the ``visited`` points only, and says nothing about the others."""
    visited: int = 0


class SpaceTooLarge(ValueError):
    """The space is beyond what enumeration may visit."""


def enumerate_space(
    problem: TilingProblem,
    reduced: bool | None = None,
    limit: int = ENUMERATION_LIMIT,
    tables: dict[str, DimTable] | None = None,
    classes: tuple[str, ...] | None = None,
    deadline: float | None = None,
) -> EnumerationOutcome:
    """Best mapping of the whole space.  ``reduced=None`` visits the full tile
    space when it has at most ``limit`` points, else the undominated tiles
    (an exact reduction); a space still above the limit is refused.
    ``tables`` and ``classes`` restrict the search (heuristics use this).
    Past ``deadline`` (perf_counter seconds, checked between chunks of at
    most a few million points) the walk stops with ``complete=False``."""
    layer = problem.layer
    start = time.perf_counter()
    classes = order_classes(problem.halo) if classes is None else classes
    if tables is None:
        if reduced is None:
            full = dim_tables(layer, problem.space, reduced=False)
            reduced = _points(full, classes) > limit
        tables = dim_tables(layer, problem.space, reduced=reduced)
    points = _points(tables, classes)
    if points > limit:
        raise SpaceTooLarge(f"{points:.3g} points exceed the enumeration limit of {limit:.3g}")

    # split along the largest dimension so that each chunk stays small
    split = max(LOOP_DIMS, key=lambda d: len(tables[d]))
    rest = points // len(classes) // len(tables[split])
    per_chunk = max(1, _CHUNK // max(rest, 1))
    best_bits, best = None, None
    per_class: dict[str, int | None] = {k: None for k in classes}
    axes = {d: i for i, d in enumerate(LOOP_DIMS)}
    visited = 0
    for lo in range(0, len(tables[split]), per_chunk):
        if deadline is not None and time.perf_counter() > deadline:
            return EnumerationOutcome(best, best_bits, points, bool(reduced), time.perf_counter() - start, per_class,
                                      complete=False, visited=visited)
        visited += min(per_chunk, len(tables[split]) - lo) * rest * len(classes)
        grids = {}
        for d in LOOP_DIMS:
            values = tables[d].tiles[lo:lo + per_chunk] if d == split else tables[d].tiles
            shape = [1] * len(LOOP_DIMS)
            shape[axes[d]] = len(values)
            grids[d] = values.reshape(shape)
        feasible = fits(problem, footprint_bits(layer, grids))
        if not np.any(feasible):
            continue
        for cls in classes:
            traffic = traffic_bits(layer, CANONICAL_ORDER[cls], grids, problem.halo)
            total = sum(np.broadcast_to(v, feasible.shape) for v in traffic.values())
            total = np.where(feasible, total, np.iinfo(np.int64).max)
            flat = int(np.argmin(total))
            value = int(total.flat[flat])
            if value == np.iinfo(np.int64).max:
                continue
            if per_class[cls] is None or value < per_class[cls]:
                per_class[cls] = value
            if best_bits is None or value < best_bits:
                idx = np.unravel_index(flat, total.shape)
                tiles = {d: int(grids[d].flat[idx[axes[d]]]) for d in LOOP_DIMS}
                best_bits, best = value, Mapping(tiles=tiles, order=CANONICAL_ORDER[cls])
    return EnumerationOutcome(best, best_bits, points, bool(reduced), time.perf_counter() - start, per_class,
                              visited=points)


def _points(tables, classes=STATIONARY_CLASSES) -> int:
    count = len(classes)
    for table in tables.values():
        count *= len(table)
    return count
