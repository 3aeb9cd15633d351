"""Rigorous lower bounds on the least pairing distortion (docs/pairing.md).

Both hold for every pairing of the declared space (a perfect matching of the
filters, one filter alone when the count is odd), because each is a lower
bound on every perfect matching of the cost graph with the dummy node:

* *cheapest partner*: every filter but the one left alone (an odd count)
  is paired with another, so a pairing costs at least half the sum, over
  the filters, of each one's cheapest other filter (each pair counted from
  both ends), less the largest of those when one filter may be left alone
  (it could be any: the dearest to pair is left out);
* *matching LP*: the LP relaxation of perfect matching solved over all
  edges by column generation; the sum of its node duals (less any residual
  negative reduced cost) bounds every perfect matching.

Distortions are integers, so both are rounded up.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from ..formulations.pairing.cost import PairingProblem, distortion_matrix
from ..formulations.pairing.exact import column_generation, with_dummy


@dataclass(frozen=True)
class PairingBound:
    """One lower bound on the least distortion (all are rigorous)."""

    name: str
    value: float
    meaning: str


def pairing_bounds(problem: PairingProblem) -> list[PairingBound]:
    """The rigorous lower bounds on ``problem``'s least distortion.

    Examples
    --------
    >>> import numpy as np
    >>> p = PairingProblem(np.array([[3, -4], [-4, 2], [1, 5], [-2, -3], [0, 7]]))
    >>> [(b.name, b.value) for b in pairing_bounds(p)]    # the least distortion is 6
    [('cheapest partner', 6.0), ('matching LP', 6.0)]
    """
    if problem.filters < 2:
        return [PairingBound("nothing to pair", 0.0, "fewer than two filters")]
    real = distortion_matrix(problem)
    cheapest = (real.astype(np.float64) + np.diag(np.full(real.shape[0], np.inf))).min(axis=1)
    partner = (cheapest.sum() - (cheapest.max() if problem.filters % 2 else 0.0)) / 2
    cost, _ = with_dummy(real)
    _, _, _, lp, _ = column_generation(cost)
    return [
        PairingBound("cheapest partner", float(ceil(partner - 1e-9)),
                     "half the sum of every filter's cheapest partner (each pair counted from both ends)"),
        PairingBound("matching LP", float(ceil(lp - 1e-6)),
                     "LP relaxation of perfect matching over every pair (column generation, node duals)"),
    ]
