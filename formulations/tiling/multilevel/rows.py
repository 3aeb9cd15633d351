"""Factor rows: one dimension's share of a mapping, as a tuple of integers.

A mapping of a hierarchy with ``K`` levels and ``F`` fan-outs is, per
dimension, one row ``(f_0, ..., f_{K-1}, r_0, c_0, ..., r_{F-1}, c_{F-1})``:
the temporal trip count at every level (outermost first), then per fan-out
the factor unrolled on its rows and on its columns. The product of a row is
the dimension's extent. Everything a dimension contributes to the cost (a
tile's extent, the trips above a level, the spatial factor of a fan-out) is
a function of its row alone, so every exact method picks one row per
dimension and reads these functions off it; they are defined here once.
"""

from __future__ import annotations

from math import prod

from ....hardware.hierarchy import Hierarchy


def row_width(hierarchy: Hierarchy) -> int:
    """Entries of a row: one per level, two per fan-out."""
    return len(hierarchy.levels) + 2 * len(hierarchy.fanouts)


def fanout_factor(row, K: int, f: int) -> int:
    """The factor fan-out ``f`` unrolls (rows times columns)."""
    return row[K + 2 * f] * row[K + 2 * f + 1]


def spatial_factor(row, K: int) -> int:
    """The factor all fan-outs unroll together."""
    return prod(row[K:])


def tile_extent(row, hierarchy: Hierarchy, level: int) -> int:
    """Extent of the tile ``level`` holds: the trips at and below it and
    the fan-outs below it (one tile of the level covers all their instances)."""
    K = len(hierarchy.levels)
    return prod(row[level:K]) * prod(fanout_factor(row, K, f) for f, fan in enumerate(hierarchy.fanouts)
                                      if fan.level > level)


def fits_fanouts(row, hierarchy: Hierarchy) -> bool:
    """Whether no single dimension's factors exceed a fan-out's rows or columns."""
    K = len(hierarchy.levels)
    return all(row[K + 2 * f] <= fan.rows and row[K + 2 * f + 1] <= fan.cols
               for f, fan in enumerate(hierarchy.fanouts))


def collapse_splits(rows, K: int, F: int) -> tuple[list[tuple[int, ...]], list[list[tuple[int, int, int]]]]:
    """One dimension's rows with each fan-out's split left out, and the splits.

    The cost sees a fan-out's spatial factor of a dimension only as a whole
    (``s = rows x cols``, :func:`fanout_factor`); how it splits over the
    fan-out's rows and columns decides only whether the array fits. Rows
    that differ only in the split are equal-cost twins that an exact search
    would have to refute one by one. So the exact models pick a collapsed
    row ``(factor per level..., s_0, 1, s_1, 1, ...)`` and, per fan-out, a
    split ``(s, rows, cols)`` among those of ``splits[f]`` with the same
    ``s``. The splits of one fan-out do not depend on the rest of the row
    (``dim_choices`` admits each fan-out's split on its own), so every pair
    of a collapsed row and matching splits is a row of the table."""
    rows = [tuple(int(v) for v in r) for r in rows]
    collapsed = sorted({(*r[:K], *(v for f in range(F) for v in (fanout_factor(r, K, f), 1))) for r in rows})
    splits = [sorted({(fanout_factor(r, K, f), r[K + 2 * f], r[K + 2 * f + 1]) for r in rows}) for f in range(F)]
    return collapsed, splits
