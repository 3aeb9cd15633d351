"""The capped read-segment bound on off-chip traffic (derivation in docs/bounds.md).

The read-segment bound (``read_segment.py``) lets one segment of the
execution perform up to ``sqrt(Rmax * a * b * c)`` MACs with ``a`` inputs,
``b`` weights and ``c`` outputs touched.  Two things keep that loose:

* the Loomis-Whitney product ignores how many MACs one element can take
  part in at all: a weight is used by ``N*P*Q`` MACs, an input element by at
  most ``Rmax * M/G``, an output by ``C/G * R * S``; a segment cannot do more
  than ``K_x`` times the elements of tensor ``x`` it touches (a short
  reduction, a small image or few output channels bind here);
* the per-segment maximum was bounded from above on a coarse grid.

Here the per-segment maximum of ``min(sqrt(Rmax a b c), K_I a, K_W b,
K_O c)`` under the bit budget is computed exactly for the continuous
relaxation (a convex least-cost problem, solved by enumerating its KKT
patterns), on fine cells of the number of outputs created.  The argument
over many segments is the one of the read-segment bound.

Rigorous for every schedule of the layer on a buffer of ``capacity_bits``:
any loop order, any tiles, R and S split, halo reuse, any replacement, any
order of the MACs, each MAC performed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import product

import numpy as np

from .read_segment import SegmentInstance, segments_needed

_PATTERNS = np.array(list(product((0, 1, 2), repeat=3)), dtype=np.int8)  # per variable: 0 lower, 1 upper, 2 free
COARSE_LENGTHS = (16, 40)
"""Segment lengths of the first pass of each of two searches, from 0.05 B to
64 B; the bound is the larger result.  It is not unimodal in the length:
the fine pass around the best of 16 lengths misses lengths worth up to 15%
more on ResNet-50 at 64 KiB, and 40 lengths alone may centre the fine pass
on a worse neighbourhood than 16 do."""
_SLACK = 1e-9  # feasibility checks err towards accepting, which can only raise the bound's MAC count


@dataclass(frozen=True)
class CappedInstance(SegmentInstance):
    """What the capped read-segment bound needs to know about a layer and a buffer.

    The read-segment view (sizes in elements, precisions and capacity in
    bits) plus ``input_cap``, ``weight_cap`` and ``output_cap``: the most
    MACs one input element, one weight and one output take part in
    (``Rmax * M/G``, ``N*P*Q``, ``C/G * R * S``).
    """

    input_cap: int
    weight_cap: int
    output_cap: int


def _least_cost(v: np.ndarray, inst: CappedInstance, floor_c: np.ndarray) -> np.ndarray:
    """Least bits ``b_I a + b_W b + b_P c`` over real ``a, b, c``
    that allow ``v`` MACs: ``R a b c >= v^2``, ``a >= v / K_I``,
    ``b >= v / K_W``, ``c >= max(v / K_O, floor_c)``, each at most its
    tensor's size (``inf`` where no such point exists): ``least_cost``."""
    prices = np.array([inst.input_bits, inst.weight_bits, inst.psum_bits], dtype=float)
    lower = np.stack([v / inst.input_cap, v / inst.weight_cap, np.maximum(v / inst.output_cap, floor_c)])
    upper = np.array([inst.inputs, inst.weights, inst.outputs], dtype=float).reshape((3,) + (1,) * v.ndim)
    return least_cost(v, prices, lower, np.broadcast_to(upper, lower.shape), inst.reuse_max)


def least_cost(v: np.ndarray, prices: np.ndarray, lower: np.ndarray, upper: np.ndarray, reuse_max: int) -> np.ndarray:
    """Least ``sum_x prices[x] * x`` over real touched counts ``x = (a, b, c)``
    with ``reuse_max * a * b * c >= v^2`` and ``lower <= x <= upper``
    (elementwise over ``v``; ``lower`` and ``upper`` have a leading axis of
    3; ``inf`` where no such point exists).

    The problem is convex in ``log a, log b, log c``, so its minimum is a
    KKT point: each variable at its lower end, its upper end, or free with
    ``prices[x] * x`` the same for every free one (the product constraint
    then tight).  All 27 patterns are evaluated and the cheapest feasible
    one is the exact minimum."""
    w = np.asarray(prices, dtype=float)
    need = 2 * np.log(np.maximum(v, 1e-300)) - np.log(reuse_max)  # log of the product a*b*c needed
    log_lo, log_hi = np.log(np.maximum(lower, 1e-300)), np.log(upper)
    shape = (len(_PATTERNS),) + (1,) * v.ndim
    state = [_PATTERNS[:, i].reshape(shape) for i in range(3)]
    free = [s == 2 for s in state]
    count = sum(f.astype(int) for f in free)
    clamped_log = [np.where(state[i] == 0, log_lo[i], log_hi[i]) for i in range(3)]
    rest = sum(np.where(free[i], np.log(w[i]), -clamped_log[i]) for i in range(3))
    log_lambda = (need + rest) / np.maximum(count, 1)  # b_x x = lambda for every free x
    xs = [np.where(free[i], np.exp(log_lambda - np.log(w[i])), np.where(state[i] == 0, lower[i], upper[i]))
          for i in range(3)]
    ok = np.all(lower <= upper * (1 + _SLACK), axis=0)[None]
    for i in range(3):
        ok = ok & (~free[i] | ((xs[i] >= lower[i] * (1 - _SLACK)) & (xs[i] <= upper[i] * (1 + _SLACK))))
    ok = ok & ((count > 0) | (sum(clamped_log) >= need - _SLACK))
    cost = w[0] * xs[0] + w[1] * xs[1] + w[2] * xs[2]
    return np.where(ok, cost, np.inf).min(axis=0)


def cell_edges(steps: int, focus: np.ndarray) -> np.ndarray:
    """Cell edges on [0, 1], per row of ``focus``: three quarters of the
    cells evenly on ``[0, focus]``, the rest evenly on ``[focus, 1]``.
    Segments that reach every MAC create on average only a fraction of what
    their budget could create; the cells around that average decide the
    bound, so they are the fine ones."""
    fine = steps - steps // 4
    focus = np.clip(np.asarray(focus, dtype=float), 1e-9, 1.0)[:, None]
    low = focus * np.linspace(0.0, 1.0, fine + 1)[None, :]
    high = focus + (1 - focus) * np.linspace(0.0, 1.0, steps // 4 + 1)[None, 1:]
    return np.concatenate([low, high], axis=1)


def segment_macs(inst: CappedInstance, t_bits: np.ndarray, steps_n: int = 64, iterations: int = 14,
                 focus: np.ndarray | None = None):
    """Upper bounds on the MACs of one segment of ``t_bits`` read bits, for
    every length of ``t_bits`` at once.

    Returns ``(n_grid, upper)`` of shapes ``(T, steps_n + 1)`` and
    ``(T, steps_n)`` (cells finer below ``focus * n_max``, see
    ``cell_edges``): a segment of ``t_bits[i]`` bits that creates ``n``
    outputs, ``n`` in ``[n_grid[i, j], n_grid[i, j + 1]]``, performs at most
    ``upper[i, j]`` MACs (the smaller of two relaxations over the cell);
    the largest MAC count the budget allows is found by bisection on the
    least cost, which grows with the count, and the upper end of the last
    bracket is returned."""
    t = np.asarray(t_bits, dtype=float)[:, None]
    total = inst.capacity_bits + t
    n_max = np.minimum(inst.outputs, total / inst.output_bits)
    n_grid = n_max * cell_edges(steps_n, np.ones(len(t)) if focus is None else focus)
    n_lo, n_hi = n_grid[:, :-1], n_grid[:, 1:]
    # n in [n_lo, n_hi] creates outputs at b_O and leaves c - n old partial sums at b_P:
    #   b_I a + b_W b + b_P c <= total + (b_P - b_O) n,  c >= n.
    # Two relaxations over the cell, both kept: the larger budget of its ends with c >= n_lo (exact
    # where c >= n does not bind), and the budget of n_lo plus b_P (n_hi - n_lo) with c >= n_hi.
    bp, bo = inst.psum_bits, inst.output_bits
    budget = np.stack([total + np.maximum((bp - bo) * n_hi, (bp - bo) * n_lo), total + bp * n_hi - bo * n_lo])
    floor_c = np.stack([n_lo, n_hi])
    top = float(min(inst.macs, inst.weight_cap * inst.weights, inst.input_cap * inst.inputs,
                    inst.output_cap * inst.outputs))
    upper = most_macs(lambda v: _least_cost(v, inst, floor_c) <= budget, budget.shape, top, iterations)
    return n_grid, upper.min(axis=0)


def most_macs(fits, shape: tuple, top: float, iterations: int) -> np.ndarray:
    """At least the largest MAC count ``v <= top`` with ``fits(v)``, per
    entry of an array of ``shape``, by bisection on ``log v`` (``fits``
    must hold for every count below one that fits: the least cost grows
    with the count).  The upper end of the last bracket is returned, so the
    result errs upwards, which keeps a bound built on it valid."""
    hi = np.full(shape, np.log(top))
    lo = hi - 14.0  # log of a MAC count the budget allows, or so small that its error does not matter
    top_fits = fits(np.full(shape, top))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        ok = fits(np.exp(mid))
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.where(top_fits, top, np.exp(hi))


@lru_cache(maxsize=512)  # a certificate, a verify and a report ask for the same instance's bound
def capped_segment_bits(inst: CappedInstance) -> float:
    """Lower bound on the DRAM reads plus the final output writes, in bits.

    As in the read-segment bound: for a segment length T, k segments do at
    most ``k * env(|O| / k)`` MACs (env the concave majorant of the
    per-segment bound in the outputs created), and the least k that reaches
    every MAC gives ``reads + b_O |O| >= (k - 1) * (T - largest element)``.
    Any T gives a valid bound; the search is in two passes: a coarse one
    over T from ``0.05 B`` to ``64 B`` (twice: 16 and 40 values, see
    ``COARSE_LENGTHS``), then a fine one around the best T,
    with fine cells where its segments create ``|O| / k`` outputs each.

    >>> inst = CappedInstance(macs=2**20, reuse_max=1, inputs=2**14, weights=2**14, outputs=2**14,
    ...     input_bits=8, weight_bits=8, psum_bits=24, output_bits=8, capacity_bits=8 * 1024,
    ...     input_cap=128, weight_cap=128, output_cap=64)
    >>> capped_segment_bits(inst) > 8 * (3 * 2**14)    # more than every element once
    True
    """
    if inst.macs <= 0:
        return 0.0
    largest = max(inst.input_bits, inst.weight_bits, inst.psum_bits, inst.output_bits)
    return max(best_length_bound(inst, segment_macs, np.geomspace(0.05, 64.0, n) * inst.capacity_bits, largest)
               for n in COARSE_LENGTHS)


def best_length_bound(inst, macs_of, coarse: np.ndarray, heaviest: float, fine_lengths: int = 8) -> float:
    """The best ``(k - 1) * (T - heaviest)`` over segment lengths T, ``k``
    the least number of segments of length T that reach every MAC
    (``read_segment.segments_needed``, from ``macs_of(inst, lengths,
    steps_n, focus=...)``'s per-segment bounds).

    Any T gives a valid bound; the search is in two passes: the ``coarse``
    lengths with 48 cells of the outputs created, then ``fine_lengths``
    lengths around the best one with 320 cells, fine where its segments
    create ``|O| / k`` outputs each (no second pass with ``fine_lengths``
    0)."""
    coarse = coarse[coarse > 2 * heaviest]
    if len(coarse) == 0:
        return 0.0
    best, best_at = 0.0, None
    n_grids, uppers = macs_of(inst, coarse, steps_n=48)
    for i, (t, n_grid, upper) in enumerate(zip(coarse, n_grids, uppers)):
        k = segments_needed(inst, n_grid, upper)
        if k is not None and (k - 1) * (t - heaviest) > best:
            best, best_at = (k - 1) * (t - heaviest), (i, inst.outputs / k / n_grid[-1])
    if best_at is None or fine_lengths <= 0:
        return float(best)
    i, share = best_at
    fine = np.geomspace(coarse[max(i - 1, 0)], coarse[min(i + 1, len(coarse) - 1)], fine_lengths)
    n_grids, uppers = macs_of(inst, fine, steps_n=320, focus=np.full(len(fine), min(1.0, 4 * share)))
    for t, n_grid, upper in zip(fine, n_grids, uppers):
        k = segments_needed(inst, n_grid, upper)
        if k is not None:
            best = max(best, (k - 1) * (t - heaviest))
    return float(best)
