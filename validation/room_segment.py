"""The room segment bound: off-chip accesses when each tensor has its own room on chip
(derivation in docs/bounds.md, "Room segment bound").

The read-segment and capped read-segment bounds take all on-chip storage
as one buffer, so a segment of the execution may start with the buffer
full of whichever tensor suits it.  Hardware with a partitioned buffer, or
with levels that keep only some tensors, cannot: Simba's PE holds at most
1,024 partial sums in its 3 KiB accumulation buffer, however empty its
weight buffer is.  Here each tensor's elements on chip at any moment are at
most its *room* (every place on chip that may hold it, added up), and a
segment may touch no more of a tensor than its room plus what it fetches.

The segments are cut by a weighted count of events: a read of an input or
a weight, the spill write owed by a partial sum read back, and the final
write owed by an output created.  With the weights of bits this bounds the
off-chip traffic; with DRAM's access energies, DRAM's energy.

Rigorous for every schedule on storage that holds at most the rooms (any
loop order, tiles, halo reuse, replacement, each MAC once and added into
its output's one partial sum).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .capped_segment import best_length_bound, cell_edges, least_cost, most_macs


@dataclass(frozen=True)
class RoomInstance:
    """What the room segment bound needs to know about a layer and its storage.

    Sizes and rooms are in elements: ``inputs`` counts the input elements
    some MAC reads, ``psum_room`` the partial sums on-chip storage can hold
    at once.  ``input_cap``, ``weight_cap`` and ``output_cap`` are the most
    MACs one element of each tensor takes part in.  The four prices weigh
    the events the segments are cut by: a read of an input or a weight,
    the write that stored a partial sum read back (its spill), and the
    final write of an output created.
    """

    macs: int
    reuse_max: int
    inputs: int
    weights: int
    outputs: int
    input_cap: int
    weight_cap: int
    output_cap: int
    input_room: int
    weight_room: int
    psum_room: int
    input_read: float
    weight_read: float
    psum_return: float
    output_write: float

    @classmethod
    def from_capped(cls, capped, rooms: tuple[int, int, int], prices: tuple[float, float, float, float]):
        """A layer's sizes and caps (a ``CappedInstance``), with the rooms of
        inputs, weights and partial sums and the four prices of the events."""
        return cls(macs=capped.macs, reuse_max=capped.reuse_max, inputs=capped.inputs, weights=capped.weights,
                   outputs=capped.outputs, input_cap=capped.input_cap, weight_cap=capped.weight_cap,
                   output_cap=capped.output_cap, input_room=rooms[0], weight_room=rooms[1], psum_room=rooms[2],
                   input_read=prices[0], weight_read=prices[1], psum_return=prices[2], output_write=prices[3])


def segment_macs(inst: RoomInstance, lengths: np.ndarray, steps_n: int = 64, iterations: int = 14,
                 focus: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Upper bounds on the MACs of one segment whose events weigh at most
    ``lengths[i]``, for every length at once.

    Returns ``(n_grid, upper)`` as ``capped_segment.segment_macs`` does: a
    segment that creates ``n`` outputs, ``n`` in ``[n_grid[i, j],
    n_grid[i, j + 1]]``, performs at most ``upper[i, j]`` MACs.

    A segment touching ``x = (a, b, c)`` elements fetches at least
    ``x - room`` of each (outputs: beyond the ``n`` it creates), so its
    weight is at least ``sum p_x (x - L_x)^+ + p_N n`` with ``L = (room_I,
    room_W, n + room_O)`` capped at the tensor sizes.  Touching up to ``L``
    is free and never lowers the MAC count, so the largest count is that of
    ``x >= L`` under the linear budget ``sum p_x x <= length - p_N n +
    sum p_x L_x``; over a cell of ``n`` the budget of ``n_lo`` and the
    floor of ``n_hi`` relax every ``n`` in it."""
    t = np.asarray(lengths, dtype=float)[:, None]
    n_max = np.minimum(inst.outputs, t / inst.output_write)
    n_grid = n_max * cell_edges(steps_n, np.ones(len(t)) if focus is None else focus)
    n_lo, n_hi = n_grid[:, :-1], n_grid[:, 1:]
    sizes = np.array([inst.inputs, inst.weights, inst.outputs], dtype=float)
    prices = np.array([inst.input_read, inst.weight_read, inst.psum_return], dtype=float)
    free_in, free_w = min(inst.input_room, inst.inputs), min(inst.weight_room, inst.weights)
    free_out = np.minimum(n_hi + inst.psum_room, inst.outputs)
    budget = t - inst.output_write * n_lo + prices[0] * free_in + prices[1] * free_w + prices[2] * free_out
    upper = np.broadcast_to(sizes.reshape(3, 1, 1), (3,) + budget.shape)

    def fits(v: np.ndarray) -> np.ndarray:
        lower = np.stack([np.maximum(v / inst.input_cap, free_in), np.maximum(v / inst.weight_cap, free_w),
                          np.maximum(v / inst.output_cap, free_out)])
        return least_cost(v, prices, lower, upper, inst.reuse_max) <= budget

    top = float(min(inst.macs, inst.weight_cap * inst.weights, inst.input_cap * inst.inputs,
                    inst.output_cap * inst.outputs))
    return n_grid, most_macs(fits, budget.shape, top, iterations)


REPRICINGS = ((1, .5, 1), (1, .25, 1), (1, .125, 1), (1, .5, .5), (1, .25, .5), (1, .125, .5), (1, .375, .75),
              (.75, .25, 1), (.5, .5, .5), (1, 1, .5), (.5, 1, .5))
"""Factors ``(inputs, weights, creations)`` on the prices the segments are
cut by, tried besides the true prices (docs/bounds.md, "Repriced
segments"). Any factors in (0, 1] give a valid bound; these are where the
distinct layers of ResNet-50 on ``simba-pe`` find their best on a grid of
quarters (and eighths of the weights' price)."""


@lru_cache(maxsize=512)  # a certificate, a verify and a report ask for the same instance's bound
def room_segment_cost(inst: RoomInstance) -> float:
    """Lower bound on the weighted off-chip events: reads of inputs and
    weights, spill writes of the partial sums read back, final writes.

    The best of :func:`segments_at_prices` at the true prices and with
    cheaper reads and creations: for prices ``q <= p`` the events weigh
    ``sum p_x E_x = sum q_x E_x + sum (p_x - q_x) E_x``, at least the bound
    at ``q`` plus ``p_x - q_x`` for each element that must be read or
    created once (every input some MAC reads, every weight, every output).
    Each repricing is searched on the coarse lengths only, and the best one
    again on the fine lengths when it comes near the rest.

    >>> inst = RoomInstance(macs=2**20, reuse_max=1, inputs=2**10, weights=2**10, outputs=2**10,
    ...     input_cap=2**10, weight_cap=2**10, output_cap=2**10, input_room=2**10, weight_room=2**10,
    ...     psum_room=16, input_read=1, weight_read=1, psum_return=1, output_write=1)
    >>> room_segment_cost(inst) >= segments_at_prices(inst) > 3 * 2**10  # 16 partial sums on chip
    True
    """
    best = segments_at_prices(inst)
    if best <= 0:
        return best  # every tensor fits, or an event is free: no segment argument
    once = (inst.input_read * inst.inputs, inst.weight_read * inst.weights, inst.output_write * inst.outputs)
    trials = []
    for factors in REPRICINGS:
        cheaper = replace(inst, input_read=factors[0] * inst.input_read, weight_read=factors[1] * inst.weight_read,
                          output_write=factors[2] * inst.output_write)
        owed = sum((1 - f) * e for f, e in zip(factors, once, strict=True))
        trials.append((segments_at_prices(cheaper, fine_lengths=0) + owed, cheaper, owed))
    value, cheaper, owed = max(trials, key=lambda trial: trial[0])
    if value > 0.95 * max(best, sum(once)):  # near enough to matter: the fine lengths add a few percent
        value = max(value, segments_at_prices(cheaper) + owed)
    return max(best, value)


def segments_at_prices(inst: RoomInstance, fine_lengths: int = 8) -> float:
    """The room segment argument with the events weighed at ``inst``'s prices.

    For a segment length T, k segments do at most ``k * env(|O| / k)``
    MACs (env the concave majorant of the per-segment bound in the outputs
    created, as in the read-segment bound), so the least k that reaches
    every MAC gives ``events >= (k - 1) * (T - heaviest event)``.  Any T is
    valid; T is searched on a coarse grid from a twentieth of the weight
    of refilling every room to 64 times it (or to the weight of every
    element once, if more), then (``fine_lengths`` > 0) finely around the
    best.
    """
    prices = (inst.input_read, inst.weight_read, inst.psum_return, inst.output_write)
    if inst.macs <= 0 or min(prices) <= 0:
        return 0.0
    if inst.input_room >= inst.inputs and inst.weight_room >= inst.weights and inst.psum_room >= inst.outputs:
        return 0.0  # everything fits at once: one segment may do every MAC
    heaviest = max(prices)
    refill = (inst.input_read * min(inst.input_room, inst.inputs) + inst.weight_read * min(inst.weight_room, inst.weights)
              + inst.psum_return * min(inst.psum_room, inst.outputs))
    once = inst.input_read * inst.inputs + inst.weight_read * inst.weights + inst.output_write * inst.outputs
    coarse = np.geomspace(max(0.05 * refill, 3 * heaviest), max(64 * refill, once), 16)
    return best_length_bound(inst, segment_macs, coarse, heaviest, fine_lengths)
