"""Halo reuse in hierarchies: the input rows consecutive tiles share.

With ``space: {halo: true}``, an input tile that the *sweep loop* above its
level moves one step keeps the input rows (or columns) the new tile shares
with the old one and reads only the others. The sweep loop of a level is
the innermost loop above it that indexes the inputs and has more than one
trip; when it runs along P or R (Q or S), consecutive tiles of the level
are the same window shifted by one step along the input rows (columns).
Loops inside it that do not index the inputs (M) keep the tile resident,
so each sweep of ``n`` trips fetches one whole tile and ``n - 1`` steps.
Any other change of the tile (an outer loop advancing, the sweep starting
again) fetches the whole tile. The tile a level holds is unchanged: the
kept rows plus the new ones are the next tile.

Within a level, the order of the loops of one reuse group does not change
any other count (``space.py``), but it decides which of them is innermost
and so which can sweep: a search with halo reuse chooses, per level, which
window dimension (if any) is innermost in its group.

Derivation and the exact counts: docs/tiling-multilevel.md, "Halo reuse".
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .problem import REUSE_GROUPS

WINDOW_DIMS: tuple[str, ...] = ("P", "Q", "R", "S")
"""Dimensions whose loops move an input tile along its rows (P, R) or columns (Q, S)."""

AXIS_OF: dict[str, str] = {"P": "P", "R": "P", "Q": "Q", "S": "Q"}
"""The input axis a window dimension moves along, named by its output dimension."""

AXIS_DIMS: dict[str, tuple[str, str]] = {"P": ("P", "R"), "Q": ("Q", "S")}


def group_of(dim: str) -> str:
    """The tensor whose reuse group ``dim`` belongs to (P, Q: weights; R, S: outputs)."""
    return next(t for t, group in REUSE_GROUPS.items() if dim in group)


def innermost_in_group(order: tuple[str, ...], dim: str) -> tuple[str, ...]:
    """``order`` (a group order) with ``dim`` moved to the innermost place of
    its own group's block; every other loop keeps its place."""
    block = REUSE_GROUPS[group_of(dim)]
    positions = [i for i, d in enumerate(order) if d in block]
    members = [d for d in (order[i] for i in positions) if d != dim] + [dim]
    out = list(order)
    for i, d in zip(positions, members, strict=True):
        out[i] = d
    return tuple(out)


def halo_orders(group_orders) -> tuple[tuple[str, ...], ...]:
    """The orders a search with halo reuse tries at a level: each group
    order, and each with one window dimension innermost in its group."""
    out = []
    for order in group_orders:
        for candidate in (order, *(innermost_in_group(order, d) for d in WINDOW_DIMS)):
            if candidate not in out:
                out.append(candidate)
    return tuple(out)


def sweep_masks(loops) -> dict[tuple[str, int], np.ndarray]:
    """Per window loop ``(dim, level)`` above a level, where it is that
    level's sweep loop: the innermost loop with more than one trip among
    those that index the inputs.

    ``loops``: ``(dim, level, trips)`` outermost first, trips broadcast
    over arrays of mappings."""
    found = np.asarray(False)
    masks = {}
    for dim, level, trips in reversed(loops):
        if dim in ("M",):  # the only dimension that does not index the inputs
            continue
        real = np.asarray(trips) > 1
        if dim in WINDOW_DIMS:
            masks[dim, level] = real & ~found
        found = found | real
    return masks


@lru_cache(maxsize=65536)
def step_rows(stride: int, dilation: int, t_out: int, t_tap: int,
              out_spread: tuple[tuple[int, int], ...], tap_spread: tuple[tuple[int, int], ...],
              shift_out: int, shift_tap: int) -> int:
    """Input rows one step of a sweep brings in, over the instances of some
    fan-outs together.

    An instance's tile reads rows ``W = {p * stride + r * dilation}`` for
    ``p < t_out``, ``r < t_tap``; a step moves it by ``shift_out`` outputs
    and ``shift_tap`` taps, so it needs ``(W + delta) \\ W`` anew. The
    instances of a spread (``(step, count)`` per fan-out, as in
    ``cost.union_window_rows``) start their tiles further along; a parent
    that serves them at once reads the union of their new rows."""
    window = {p * stride + r * dilation for p in range(t_out) for r in range(t_tap)}
    delta = shift_out * stride + shift_tap * dilation
    new = np.array(sorted({row + delta for row in window} - window), dtype=np.int64)
    if not new.size:
        return 0
    offsets = np.zeros(1, dtype=np.int64)
    for step, count in out_spread:
        offsets = np.add.outer(np.arange(count) * step * stride, offsets).ravel()
    for step, count in tap_spread:
        offsets = np.add.outer(np.arange(count) * step * dilation, offsets).ravel()
    return int(np.unique(np.add.outer(offsets, new)).size)
