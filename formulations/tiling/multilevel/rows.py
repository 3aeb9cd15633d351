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
