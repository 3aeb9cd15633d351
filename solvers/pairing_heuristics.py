"""Heuristic filter pairings, each scored by ``formulations.pairing.evaluate``.

* ``greedy``: the most anti-correlated pair first, i.e. the cheapest exact
  distortion among the filters still unpaired (what one does by hand).
* ``sort-by-norm``: sort filters by the sum of their weights and pair the
  smallest with the largest, the next smallest with the next largest, ...:
  complementary filters have opposite sums.
* ``random``: a seeded random perfect matching.

:func:`no_pairing` is the baseline every pairing is weighed against (no
distortion, no capacity gain), not a competing pairing: it leaves the
declared space of perfect matchings, so it is not among the heuristics.
"""

from __future__ import annotations

import numpy as np

from ..formulations.pairing.cost import Pairing, PairingProblem, distortion_matrix
from ..formulations.pairing.exact import greedy_matching


def _split(pairs: list[tuple[int, int]], filters: int) -> Pairing:
    """Drop the pair that holds the dummy node (odd filter counts)."""
    real = [p for p in pairs if max(p) < filters]
    used = {i for p in real for i in p}
    return Pairing(real, [i for i in range(filters) if i not in used])


def greedy(problem: PairingProblem) -> Pairing:
    cost = distortion_matrix(problem)
    f = problem.filters
    if f % 2:  # one filter stays alone: a dummy node at cost 0
        padded = np.zeros((f + 1, f + 1), dtype=cost.dtype)
        padded[:f, :f] = cost
        padded[f, :f] = padded[:f, f] = cost.max() + 1  # pair it last
        cost = padded
    return _split([tuple(sorted(p)) for p in greedy_matching(cost)], f)


def sort_by_norm(problem: PairingProblem) -> Pairing:
    order = np.argsort(problem.weights.sum(axis=1), kind="stable").tolist()
    pairs = []
    while len(order) >= 2:
        pairs.append((order.pop(0), order.pop(-1)))
    return Pairing(pairs, order)


def random_pairing(problem: PairingProblem, seed: int = 0) -> Pairing:
    order = np.random.default_rng(seed).permutation(problem.filters).tolist()
    pairs = [(order[k], order[k + 1]) for k in range(0, len(order) - 1, 2)]
    return Pairing(pairs, order[len(pairs) * 2:])


def no_pairing(problem: PairingProblem) -> Pairing:
    """Every filter in a row of its own: the baseline without pairing."""
    return Pairing([], list(range(problem.filters)))


PAIRING_HEURISTICS = {
    "greedy": greedy,
    "sort-by-norm": sort_by_norm,
    "random": random_pairing,
}
