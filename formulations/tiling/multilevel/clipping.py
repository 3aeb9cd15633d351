"""Imperfect factors: exact counts of a clipped loop nest, one dimension at a time.

In the ``factors: any`` space a dimension's factors (its temporal trip count
at every level and its share of every fan-out) may multiply to more than its
extent ``D``. Per dimension the loop positions nest, outermost first, as
temporal level 0, the fan-outs right above level 1, temporal level 1, ...,
temporal level K-1, the fan-outs right above the MACs (a fan-out is one
position per dimension, its rows times its columns). Position ``q`` with
index ``i_q`` moves the global index by ``i_q * stride_q``, the product of
the factors inside it. A MAC exists only where every dimension's global
index is below its extent: the tiles of every level form one grid per
dimension, clipped at ``D``, so only the last tile along a dimension is
partial.

Because validity is decided per dimension, every set of fill events is a
product over dimensions of per-dimension sets, and every access count is a
product of per-dimension sums (docs/tiling-multilevel.md, "Imperfect
factors"). Each position plays one *role* in such a sum:

- ``q``: the event distinguishes its index (a loop above the boundary that
  re-fetches, an instance that moves its own copy);
- ``u``: its indices are merged into one event (the tile's own extent, a
  resident loop, instances served by one multicast).

A dimension that indexes the tensor contributes the words of its events,
its extent (every valid index lies in exactly one event); one that does
not, the number of non-empty events (``count``). The input window pairs P with R and
Q with S: their contribution is the sum over pairs of events of the
distinct input rows the two index sets reach (``pair_rows``).

The counts equal what a one-tile-per-level machine does only if no loop of
another dimension lies outside a loop that a partial tile leaves a single
trip for some instance (``collapsed_positions``): that instance's tile
would stay resident across the outer loop, which re-fetches it for the
others. The exact models keep such loops outermost (``outermost_rule``
in the callers), and ``evaluate`` refuses mappings that break it.
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil, prod

import numpy as np

from ....hardware.hierarchy import Hierarchy


def positions(hier: Hierarchy) -> tuple[tuple[str, int], ...]:
    """The loop positions of one dimension, outermost first: ``("t", level)``
    for a level's temporal loop, ``("f", fanout)`` for a fan-out."""
    K = len(hier.levels)
    out = []
    for j in range(K):
        out.append(("t", j))
        out.extend(("f", f) for f, fan in enumerate(hier.fanouts) if fan.level == j + 1)
    return tuple(out)


def chain(row, hier: Hierarchy) -> tuple[int, ...]:
    """A factor row's factors in position order (``rows.py`` layout)."""
    K = len(hier.levels)
    return tuple(int(row[j]) if kind == "t" else int(row[K + 2 * j]) * int(row[K + 2 * j + 1])
                 for kind, j in positions(hier))


@lru_cache(maxsize=1024)
def _grid(factors: tuple[int, ...]) -> np.ndarray:
    """Global index of every index tuple of the positions (shape ``factors``)."""
    total = np.zeros((), dtype=np.int64)
    for n in factors:
        total = np.add.outer(total * n, np.arange(n, dtype=np.int64))
    return total


def _arranged(factors: tuple[int, ...], roles: str) -> np.ndarray:
    """Global indices as (events, merged indices): the ``q`` positions' index
    tuples along the first axis, the ``u`` positions' along the second."""
    grid = _grid(factors)
    q = [i for i, r in enumerate(roles) if r == "q"]
    u = [i for i, r in enumerate(roles) if r == "u"]
    grid = np.transpose(grid, q + u)
    return grid.reshape(prod(factors[i] for i in q), -1)


@lru_cache(maxsize=1 << 18)
def count(extent: int, factors: tuple[int, ...], roles: str) -> int:
    """Non-empty events: the fills (or instances, or cycles) a dimension that
    does not index the tensor multiplies."""
    return int((_arranged(factors, roles) < extent).any(axis=1).sum())


@lru_cache(maxsize=1 << 16)
def shapes(extent: int, factors: tuple[int, ...], roles: str) -> tuple[tuple[tuple[int, ...], int], ...]:
    """The non-empty events as (index set shifted to start at 0, how many)."""
    values = _arranged(factors, roles)
    big = np.iinfo(np.int64).max
    values = np.sort(np.where(values < extent, values, big), axis=1)
    values = values[values[:, 0] != big]
    shifted = np.where(values != big, values - values[:, :1], -1)
    unique, counts = np.unique(shifted, axis=0, return_counts=True)
    return tuple((tuple(int(v) for v in row if v >= 0), int(c)) for row, c in zip(unique, counts, strict=True))


@lru_cache(maxsize=1 << 18)
def _window(stride: int, dilation: int, outs: tuple[int, ...], taps: tuple[int, ...]) -> int:
    return int(np.unique(np.add.outer(np.asarray(outs) * stride, np.asarray(taps) * dilation)).size)


@lru_cache(maxsize=1 << 18)
def pair_rows(stride: int, dilation: int, out_extent: int, out_factors: tuple[int, ...], out_roles: str,
              tap_extent: int, tap_factors: tuple[int, ...], tap_roles: str) -> int:
    """Distinct input rows summed over every pair of an output event and a
    tap event (P with R, or Q with S)."""
    total = 0
    for outs, m in shapes(out_extent, out_factors, out_roles):
        for taps, n in shapes(tap_extent, tap_factors, tap_roles):
            total += m * n * _window(stride, dilation, outs, taps)
    return total


def roles(hier: Hierarchy, level: int, prefix: int, union=()) -> str:
    """Roles of the positions for the fills of ``level``: temporal loops of
    the levels above ``prefix`` re-fetch (``q``), the others do not; fan-outs
    above ``level`` give every instance its own events unless merged
    (``union``); everything below ``level`` is the tile's own extent."""
    out = []
    for kind, j in positions(hier):
        if kind == "t":
            out.append("q" if j < prefix else "u")
        else:
            fan = hier.fanouts[j]
            out.append("u" if fan.level > level or j in union else "q")
    return "".join(out)


def temporal_roles(hier: Hierarchy) -> str:
    """Roles whose non-empty events are the cycles: every temporal loop, any instance."""
    return "".join("q" if kind == "t" else "u" for kind, _ in positions(hier))


def collapsed_positions(extent: int, factors: tuple[int, ...], temporal: tuple[bool, ...]) -> tuple[int, ...]:
    """The temporal positions of two or more trips that a partial tile leaves
    a single valid trip for some instance: within a range of the positions
    outside the position, with every fan-out index inside it fixed (each
    instance runs its own loops)."""
    grid = _grid(factors)
    out = []
    for q, (n, is_temporal) in enumerate(zip(factors, temporal, strict=True)):
        if n < 2 or not is_temporal:
            continue
        fixed = [i for i in range(q + 1, len(factors)) if not temporal[i]]
        free = [i for i in range(q + 1, len(factors)) if temporal[i]]
        arranged = np.transpose(grid, list(range(q)) + fixed + [q] + free)
        groups = prod(factors[:q]) * prod(factors[i] for i in fixed)
        valid_q = (arranged.reshape(groups, n, -1) < extent).any(axis=2).sum(axis=1)
        if (valid_q == 1).any():
            out.append(q)
    return tuple(out)


def collapsed_levels(row, hier: Hierarchy, extent: int) -> tuple[int, ...]:
    """The levels whose loop of this dimension a partial tile leaves a single
    trip for some instance (``collapsed_positions``)."""
    order = positions(hier)
    return tuple(order[q][1] for q in collapsed_positions(extent, chain(row, hier),
                                                          tuple(kind == "t" for kind, _ in order)))


def _factorizations(n: int, slots: int, limits) -> list[tuple[int, ...]]:
    """Ordered factorizations of ``n`` into ``slots`` factors within ``limits``."""
    if slots == 0:
        return [()] if n == 1 else []
    out = []
    top = n if limits[0] is None else min(n, limits[0])
    for first in range(1, top + 1):
        if n % first == 0:
            out.extend((first, *rest) for rest in _factorizations(n // first, slots - 1, limits[1:]))
    return out


def remainder_rows(extent: int, limits: tuple[int | None, ...]) -> list[tuple[int, ...]]:
    """Factor tuples (position order) of the ``any`` space: the divisor
    tuples, and those with one *remainder position* ``q``: the positions
    inside it multiply to a divisor ``t`` of the extent (whole tiles), those
    outside to ``m`` (its outer iterations), and ``q`` takes the least trip
    count that covers the extent in ``m`` outer iterations, ``ceil(extent /
    (t * m))``. Every position stays within its limit (None: none)."""
    width = len(limits)
    out = set(_factorizations(extent, width, limits))
    divisors = [t for t in range(1, extent + 1) if extent % t == 0]
    for q in range(width):
        for t in divisors:
            inner = None
            for m in range(1, extent // t + 1):
                n = ceil(extent / (t * m))
                if n < 2 or extent % (t * n) == 0 or ceil(extent / (t * n)) != m:
                    continue
                if limits[q] is not None and n > limits[q]:
                    continue
                if inner is None:
                    inner = _factorizations(t, width - q - 1, limits[q + 1:])
                for outer in _factorizations(m, q, limits[:q]):
                    for rest in inner:
                        out.add((*outer, n, *rest))
    return sorted(out)
