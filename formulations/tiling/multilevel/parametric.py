"""Objectives that are not a sum of accesses, by exact searches over pieces.

EDP multiplies energy by cycles, and a per-PE bandwidth limit multiplies the
cycles by the busy PEs: neither is linear in the exact models. Both become
linear once the number of busy PEs ``U`` is fixed (the compute cycles are
then the constant ``C(U) = MACs / U``) and the cycles are capped (every
bandwidth limit is then a linear bound on a level's words). The searches
here solve such pieces (``Restriction``) with either exact method and stop
as soon as a rigorous bound shows that no piece left can win.

- **EDP.** For each ``U``, largest first, walk the energy-latency front:
  least energy ``E1`` with ``U`` busy PEs; if its latency ``L1`` exceeds
  ``C(U)`` (a bandwidth limit binds), every remaining mapping of this ``U``
  has latency below ``L1`` and energy at least ``E1``, so the next piece caps
  the cycles at ``L1 - 1``. A piece only asks for energies below
  ``best / C(U)``: no mapping with more energy beats the best EDP, since its
  latency is at least ``C(U)``. ``U`` is done when a piece holds nothing
  better, when the latency reaches ``C(U)``, or when ``C(U) * E >= best``.
  The search ends when ``C(U) * E*`` reaches the best EDP, ``E*`` being the
  least energy overall (or its proved bound): smaller ``U`` only raise ``C``.
- **Latency with per-PE bandwidth** (for the MILP; CP-SAT multiplies
  directly): for each ``U``, largest first, the least latency with ``U``
  busy PEs, below the best so far; the search ends when ``C(U)`` reaches it.

Derivation: docs/tiling-multilevel.md, "Pieces: EDP and per-PE bandwidth".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

from .problem import DIMS, MultiLevelMapping, MultiLevelProblem, Restriction
from .rows import spatial_factor
from .space import dim_choices

PieceSolver = Callable[[MultiLevelProblem, Restriction, float], object]
"""(problem, restriction, seconds) -> a MultiLevelResult of that piece."""


@dataclass
class SearchOutcome:
    """Best mapping over all pieces, a rigorous bound, and how many pieces ran."""

    mapping: MultiLevelMapping | None
    metrics: object | None
    objective: float | None
    bound: float | None
    proved: bool
    infeasible: bool
    pieces: int
    message: str = ""


def achievable_pe_counts(problem: MultiLevelProblem) -> list[int]:
    """Every number of busy PEs some mapping can have (products of spatial
    factors), largest first."""
    K = len(problem.hierarchy.levels)
    counts = {1}
    for d in DIMS:
        factors = {int(spatial_factor(r, K)) for r in dim_choices(problem, d)}
        counts = {c * f for c in counts for f in factors if c * f <= problem.hierarchy.pes}
    return sorted(counts, reverse=True)


def edp_search(problem: MultiLevelProblem, solve_piece: PieceSolver, deadline: float) -> SearchOutcome:
    """Least energy x latency, by the walk described in the module docstring."""
    macs = problem.layer.macs
    energy_problem = replace(problem, objective="energy")
    overall = solve_piece(energy_problem, Restriction(), max(0.01, deadline - time.perf_counter()))
    pieces = 1
    if overall.status == "infeasible":
        return SearchOutcome(None, None, None, None, True, True, pieces)
    if overall.mapping is None and overall.best_bound is None:
        # the method could not even start (an instance too large for it, or no time)
        return SearchOutcome(None, None, None, None, False, False, pieces, overall.message)
    from ....validation.latency_bound import latency_floor
    from ....validation.multilevel_bounds import multilevel_bounds

    fastest = latency_floor(problem)[0]  # no mapping, whatever its U, is faster (docs/tiling-multilevel.md)
    least_energy = max(multilevel_bounds(energy_problem).objective,
                       overall.best_bound if overall.best_bound is not None else 0.0)
    best = None  # (edp, mapping, metrics)
    if overall.mapping is not None and overall.metrics.fits:
        best = (overall.metrics.edp, overall.mapping, overall.metrics)
    open_bounds: list[float] = []
    counts = achievable_pe_counts(problem)
    for index, pes in enumerate(counts):
        compute = max(macs // pes, fastest)
        if best is not None and compute * least_energy >= best[0]:
            break  # every smaller U has more compute cycles and no less energy
        cap, floor = None, least_energy
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                open_bounds.append(compute * floor)  # out of time: what this U can still reach
                break
            below = None if best is None else best[0] / compute
            piece = solve_piece(energy_problem, Restriction(pes=pes, latency_cap=cap, below=below), remaining)
            pieces += 1
            if piece.status == "infeasible":
                break  # nothing in this piece beats the best EDP
            if piece.mapping is not None and piece.metrics.fits and (best is None or piece.metrics.edp < best[0]):
                best = (piece.metrics.edp, piece.mapping, piece.metrics)
            if piece.status != "optimal":
                known = floor if piece.best_bound is None else max(floor, piece.best_bound)
                open_bounds.append(compute * known)
                break
            energy, latency = piece.metrics.energy, piece.metrics.latency
            if latency <= compute or compute * energy >= best[0]:
                break  # no mapping of this U has less latency, or none left can win
            cap, floor = int(latency) - 1, energy
        if deadline - time.perf_counter() <= 0:
            # every smaller U is at least its own compute cycles times the least energy
            rest = max(macs // counts[index + 1], fastest) if index + 1 < len(counts) else None
            if rest is not None and (best is None or rest * least_energy < best[0]):
                open_bounds.append(rest * least_energy)
            break
    if best is None:
        bound = min(open_bounds) if open_bounds else None
        return SearchOutcome(None, None, None, bound, not open_bounds, not open_bounds, pieces)
    bound = min([best[0], *open_bounds])
    return SearchOutcome(best[1], best[2], best[0], bound, not open_bounds, False, pieces)


def latency_search(problem: MultiLevelProblem, solve_piece: PieceSolver, deadline: float) -> SearchOutcome:
    """Least latency when a per-PE level has a bandwidth limit: one piece per U."""
    from ....validation.latency_bound import latency_floor  # the bounds build on this package's model

    macs = problem.layer.macs
    floor = latency_floor(problem)[0]  # no mapping, whatever its U, is faster (docs/tiling-multilevel.md)
    best = None  # (latency, mapping, metrics)
    open_bounds: list[float] = []
    pieces = 0
    for pes in achievable_pe_counts(problem):
        compute = max(macs // pes, floor)
        if best is not None and compute >= best[0]:
            break  # smaller U never compute in fewer cycles, and none is below the floor
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            open_bounds.append(compute)  # this U and every smaller one
            break
        piece = solve_piece(problem, Restriction(pes=pes, below=None if best is None else best[0]), remaining)
        pieces += 1
        if piece.status == "infeasible":
            continue
        if piece.mapping is not None and piece.metrics.fits and (best is None or piece.metrics.latency < best[0]):
            best = (piece.metrics.latency, piece.mapping, piece.metrics)
        if piece.status != "optimal":
            open_bounds.append(max(compute, piece.best_bound or 0))
    if best is None:
        bound = min(open_bounds) if open_bounds else None
        return SearchOutcome(None, None, None, bound, not open_bounds, not open_bounds, pieces)
    return SearchOutcome(best[1], best[2], best[0], min([best[0], *open_bounds]), not open_bounds, False, pieces)
