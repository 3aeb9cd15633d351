"""The read-segment bound on off-chip traffic (derivation in docs/bounds.md).

A Hong-Kung segment argument that counts only what enters the buffer: reads
from DRAM, and the *creation* of each output (priced at the output
precision, paid for by the final write every output needs).  Unlike the
older segment bound, a segment then needs no room for what it leaves on
chip at its end, which is where the classical argument loses its factor
sqrt(2); and the buffer is counted in bits, with inputs, weights and partial
sums at their own precisions, and no tensor counted beyond its size, so a
tensor that fits on chip pays nothing for re-fetch.

Rigorous for every schedule of the layer on a buffer of ``capacity_bits``:
any loop order, any tiles, R and S split, halo reuse, any replacement, any
order of the MACs, each MAC performed once.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np


@dataclass(frozen=True)
class SegmentInstance:
    """What the read-segment bound needs to know about a layer and a buffer.

    Sizes are in elements, precisions and capacity in bits.  ``reuse_max``
    is the largest number of (output pixel, filter tap) pairs that read one
    input element (``ConvLayer.reuse_max``); ``reduction`` the MACs that
    make one output (``C/G * R * S``).
    """

    macs: int
    reuse_max: int
    inputs: int
    weights: int
    outputs: int
    input_bits: int
    weight_bits: int
    psum_bits: int
    output_bits: int
    capacity_bits: int


def _best_pair(budget: np.ndarray, plus: np.ndarray, cap_b: float, cap_c: np.ndarray,
               bits_b: int, bits_c: int) -> np.ndarray:
    """max over b, c >= 0 of b * (c + plus) with bits_b*b + bits_c*c <= budget,
    b <= cap_b, c <= cap_c (elementwise; 0 where the budget is negative).

    The product is linear in b while c sits at its cap and a concave
    quadratic after, so its maximum is at the clipped vertex, the kink, or
    the end of the range: evaluating all three is exact."""
    budget = np.maximum(budget, 0.0)
    hi = np.minimum(cap_b, budget / bits_b)
    kink = np.clip((budget - bits_c * cap_c) / bits_b, 0.0, hi)
    vertex = np.clip((budget + bits_c * plus) / (2 * bits_b), kink, hi)

    def product(b):
        return b * (np.minimum(cap_c, np.maximum(budget - bits_b * b, 0.0) / bits_c) + plus)

    return np.maximum(np.maximum(product(hi), product(kink)), product(vertex))


def segment_macs(inst: SegmentInstance, t_bits: float, steps_n: int = 48, steps_a: int = 400):
    """Upper bounds on the MACs of one segment of ``t_bits`` read bits.

    Returns ``(n_grid, upper)``: for ``n`` outputs created in the segment,
    anywhere in ``[n_grid[j], n_grid[j+1]]``, the segment performs at most
    ``upper[j]`` MACs.  Each bound comes from
    ``V <= sqrt(Rmax * a * b * c)`` maximized over the touched inputs a,
    weights b and partial sums c (c = old ones + created ones) under the
    bit budget; the maximum is bounded from above on a grid using that the
    product grows with a and with the remaining budget."""
    B = inst.capacity_bits
    total = B + t_bits
    n_max = min(inst.outputs, total / inst.output_bits)
    n_grid = np.linspace(0.0, n_max, steps_n + 1)
    n_lo, n_hi = n_grid[:-1, None], n_grid[1:, None]
    budget_n = total - inst.output_bits * n_lo  # the most budget any n in the cell leaves
    a_max = np.minimum(inst.inputs, budget_n / inst.input_bits)  # (steps_n, 1)
    frac = np.linspace(0.0, 1.0, steps_a + 1)[None, :]
    a_lo, a_hi = a_max * frac[:, :-1], a_max * frac[:, 1:]
    pair = _best_pair(budget_n - inst.input_bits * a_lo, n_hi, float(inst.weights),
                      np.maximum(inst.outputs - n_lo, 0.0), inst.weight_bits, inst.psum_bits)
    upper = np.sqrt(inst.reuse_max * a_hi * pair).max(axis=1)
    return n_grid, upper


def envelope(n_grid: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The breakpoints of the least concave, nondecreasing majorant of the
    step function that is ``upper[j]`` on ``[n_grid[j], n_grid[j+1]]``."""
    xs = np.repeat(n_grid, 2)[1:-1]
    ys = np.repeat(np.maximum.accumulate(upper), 2)
    hull: list[tuple[float, float]] = []
    for point in zip(xs.tolist(), ys.tolist()):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (y2 - y1) * (point[0] - x1) <= (point[1] - y1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append(point)
    return np.array([p[0] for p in hull]), np.array([p[1] for p in hull])


def segments_needed(inst: SegmentInstance, n_grid: np.ndarray, upper: np.ndarray) -> int | None:
    """The least k with ``k * env(|O| / k) >= MACs`` (None if no k reaches),
    ``env`` the majorant of the per-segment bounds (:func:`envelope`): the
    k segments share the |O| creations, and by Jensen do at most that many
    MACs."""
    if upper.max() <= 0:
        return None
    hx, hy = envelope(n_grid, upper)

    def reach(k: int) -> float:
        return k * float(np.interp(min(inst.outputs / k, hx[-1]), hx, hy))

    lo, hi = 1, 1
    while reach(hi) < inst.macs and hi < 2**60:
        hi *= 2
    if reach(hi) < inst.macs:
        return None
    while lo < hi:  # reach(k) grows with k (concave majorant through >= 0)
        mid = (lo + hi) // 2
        if reach(mid) >= inst.macs:
            hi = mid
        else:
            lo = mid + 1
    return lo


def read_segment_bits(inst: SegmentInstance) -> float:
    """Lower bound on the DRAM reads plus the final output writes, in bits.

    For a segment length T (bits of reads and creations), k segments do at
    most ``k * env(|O| / k)`` MACs, where env is the concave majorant of the
    per-segment bound in the number of outputs created (the segments share
    the |O| creations).  The least k that reaches every MAC gives
    ``reads + b_O |O| >= (k - 1) * (T - largest element)``; the best T of a
    grid is returned (any T is valid)."""
    if inst.macs <= 0:
        return 0.0
    largest = max(inst.input_bits, inst.weight_bits, inst.psum_bits, inst.output_bits)
    best = 0.0
    for x in np.geomspace(0.05, 64.0, 56):
        t = x * inst.capacity_bits
        if t <= largest:
            continue
        k = segments_needed(inst, *segment_macs(inst, t))
        if k is None:
            continue
        best = max(best, (k - 1) * (t - largest))
    return best
