"""Exhaustive enumeration of the multi-level space: the exact reference.

Scores every combination of per-dimension factorizations (temporal factor
at each level, spatial rows, spatial columns) with each of the six group
orders per level (one where the order cannot matter, ``space.level_orders``)
and, where keep or bypass is chosen, under every keep set, through the cost
model's own vectorized formulas.  Only for spaces small enough to list
(tests, tiny layers); the exact models are for everything else.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from .problem import DIMS, MultiLevelMapping, MultiLevelProblem
from .bypass import keep_sets, with_keep
from .clipped_cost import ClippedTables, clipped_objective_values
from .cost import link_words, objective_values
from .space import dim_choices, level_orders, mapping_from_choice

MAX_POINTS = 5_000_000
CHUNK_POINTS = 50_000
"""Factor combinations scored at once: bounds the memory of a large space
and how far a search may run past its deadline."""


@dataclass
class EnumerationResult:
    mapping: MultiLevelMapping | None
    objective: float | None
    points: int
    wall_time_s: float
    complete: bool = True
    """False when the deadline stopped the search: ``mapping`` is the best of
    the mappings and orders scored so far, not a proved optimum."""


def space_size(problem: MultiLevelProblem) -> int:
    """Factor combinations the enumeration would score (times the group orders)."""
    return int(np.prod([len(dim_choices(problem, d)) for d in DIMS], dtype=np.float64))


MAX_SCORINGS = 2_000_000_000
"""Mappings (factor combinations x loop orders x keep sets) the enumeration
takes on: it scores about 15 million a second on one core, so this is a
few minutes at most. Beyond it, it could not finish in any time limit a
user would give, and ``methods`` says so rather than offer it."""


def enumeration_size_reason(problem: MultiLevelProblem, max_points: int = MAX_POINTS) -> str | None:
    """Why the enumeration refuses ``problem`` (None when it accepts it)."""
    total = space_size(problem)
    if total > max_points:
        return f"{total:,} factor combinations; enumeration stops at {max_points:,} (use cpsat or milp)"
    orders = int(np.prod([len(o) for o in level_orders(problem)], dtype=np.float64))
    keeps = len(keep_sets(problem.hierarchy)) if problem.hierarchy.chooses_bypass else 1
    if total * orders * keeps > MAX_SCORINGS:
        return (f"{total:,} factor combinations x {orders:,} loop orders" + (f" x {keeps} keep sets" if keeps > 1
                else "") + f" = {total * orders * keeps:.2g} mappings to score, about "
                f"{total * orders * keeps / 15e6 / 60:,.0f} minutes; enumeration takes up to {MAX_SCORINGS:.0e} "
                "(use cpsat or milp)")
    return None


def enumerate_multilevel(problem: MultiLevelProblem, max_points: int = MAX_POINTS,
                         deadline: float | None = None) -> EnumerationResult:
    """The best mapping of the space (``mapping`` None when nothing fits).

    With a ``deadline`` (perf_counter seconds) the search stops once it
    passes, between two blocks of at most ``CHUNK_POINTS`` factor
    combinations or two combinations of group orders, and says so
    (``complete`` False).  Raises ValueError when the space has more than
    ``max_points`` factor combinations.  With keep or bypass chosen, every
    mapping is scored under each keep set (``bypass.keep_sets``) and keeps
    its best."""
    start = time.perf_counter()
    choices = {d: dim_choices(problem, d) for d in DIMS}
    total = int(np.prod([len(c) for c in choices.values()], dtype=np.float64))
    if total > max_points:
        raise ValueError(f"{total:,} factor combinations; enumeration stops at {max_points:,}")
    sizes = [len(choices[d]) for d in DIMS]
    keeps = keep_sets(problem.hierarchy) if problem.hierarchy.chooses_bypass else None
    tables = ClippedTables(problem, choices) if problem.factors != "divisors" else None
    all_orders = list(itertools.product(*level_orders(problem)))
    best_value, best_key = None, None
    complete = True
    for first in range(0, total, CHUNK_POINTS):
        flat = np.arange(first, min(total, first + CHUNK_POINTS))
        index = dict(zip(DIMS, np.unravel_index(flat, sizes), strict=True))
        # (points, row width), column-major: every slot is one contiguous array
        table = {d: np.asfortranarray(choices[d][index[d]]) for d in DIMS}
        if tables is None:
            words = link_words(problem, table)  # the same for every order

            def scores(orders):
                return objective_values(problem, table, orders, keeps, words)
        else:  # partial tiles: per-dimension sums over the candidate rows (clipped_cost.py)
            def scores(orders):
                return clipped_objective_values(problem, tables, index, table, orders, keeps)
        for orders in all_orders:
            if deadline is not None and time.perf_counter() > deadline:
                complete = False
                break
            scored = scores(list(orders))
            value, feasible = scored[:2]
            if not feasible.any():
                continue
            masked = np.where(feasible, value, np.inf)
            i = int(np.argmin(masked))
            if best_value is None or masked[i] < best_value:
                best_value = float(masked[i])
                best_key = ({d: table[d][i].copy() for d in DIMS}, orders,
                            None if keeps is None else keeps[int(scored[2][i])])
        if not complete:
            break
    elapsed = time.perf_counter() - start
    if best_key is None:
        return EnumerationResult(None, None, total, elapsed, complete)
    rows, orders, keep = best_key
    mapping = mapping_from_choice(problem, rows, orders)
    if keep is not None:
        mapping = with_keep(problem, mapping, keep)
    return EnumerationResult(mapping, best_value, total, elapsed, complete)
