"""What a back-end reports about one model, before anybody trusts it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class SolverOutcome:
    """Raw answer of one solve.

    ``proved`` is the solver's own claim of optimality; ``objective`` and
    ``bound`` are in the model's units (``None`` when unknown).  ``values``
    holds whatever the family's decoder needs to rebuild a solution.
    """

    backend: str
    proved: bool
    infeasible: bool
    objective: float | None
    bound: float | None
    wall_time_s: float
    values: Any = None
    message: str = ""

    @property
    def has_solution(self) -> bool:
        return self.values is not None


def integral_bound(bound: float | None) -> float | None:
    """A lower bound of an integer-valued objective may be rounded up; the
    small slack absorbs the solver's floating-point tolerance."""
    if bound is None or math.isinf(bound) or math.isnan(bound):
        return None
    return float(math.ceil(bound - 1e-6))


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """(objective - bound) / objective, at least 0; None when either is unknown."""
    if objective is None or bound is None:
        return None
    if objective == 0:
        return 0.0
    return max(0.0, (objective - bound) / objective)
