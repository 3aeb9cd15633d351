"""Partition and on-chip memory capacity chosen together (Cocco's co-exploration).

Cocco scores a design by ``BUF_SIZE + alpha * cost``: the buffer size in
bytes plus alpha times the energy of the external memory accesses, in pJ.
Its defaults are alpha = 0.002 and 12.5 pJ per DRAM bit. The capacity is
picked from a list of candidates.

For a fixed capacity, the best partition is the least-EMA one. So the joint
optimum is the least, over the candidates, of the capacity plus alpha times
that capacity's optimal EMA energy, and it is exact when each of those
optima is proved. EMA can only fall as the capacity grows, so once
``capacity + alpha * (EMA energy of a floor)`` reaches the best cost found,
no larger capacity can win, and the search stops there. The floor is the
solver's bound at the largest capacity, or the compulsory EMA (every
weight, network input and output once) when that is higher or the largest
capacity could not be solved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cost import compulsory_ema, total_bytes
from .exact import solve_partition
from .graph import PartitionGraph

ALPHA = 0.002
PJ_PER_BIT = 12.5


def design_cost(capacity, ema_bytes: float, alpha: float = ALPHA, pj_per_bit: float = PJ_PER_BIT) -> float:
    return total_bytes(capacity) + alpha * ema_bytes * 8 * pj_per_bit


@dataclass
class CapacityPoint:
    capacity: int
    status: str
    ema_bytes: int | None
    cost: float | None
    blocks: list[frozenset] | None = None


@dataclass
class CoexploreResult:
    status: str                     # optimal | feasible | infeasible | error (no size solved)
    capacity: int | None
    blocks: list[frozenset] | None
    ema_bytes: int | None
    cost: float | None
    points: list[CapacityPoint] = field(default_factory=list)


def fixed_buffers(pg: PartitionGraph, capacities: list[int], method: str = "dp", alpha: float = ALPHA,
                  pj_per_bit: float = PJ_PER_BIT, time_limit: float = 60.0) -> dict[str, CapacityPoint]:
    """The baselines Cocco compares co-exploration with: the best partition
    at a fixed small, medium and large buffer (the smallest feasible, the
    median and the largest candidate), each scored with the same cost.
    Only those three sizes, and the infeasible ones below them, are solved."""
    caps = sorted(set(capacities))
    points: dict[int, CapacityPoint] = {}

    def solve(capacity: int) -> CapacityPoint | None:
        if capacity not in points:
            result = solve_partition(pg, capacity, method, time_limit)
            points[capacity] = None if result.blocks is None else CapacityPoint(
                capacity, result.status, result.objective,
                design_cost(capacity, result.objective, alpha, pj_per_bit), result.blocks)
        return points[capacity]

    # a partition that fits one size fits every larger one: the feasible sizes are a suffix
    first = next((i for i, capacity in enumerate(caps) if solve(capacity) is not None), None)
    if first is None:
        return {}
    feasible = caps[first:]
    chosen = {"small": feasible[0], "medium": feasible[len(feasible) // 2], "large": feasible[-1]}
    solved = {which: solve(capacity) for which, capacity in chosen.items()}
    return {which: point for which, point in solved.items() if point is not None}  # a size that errs is left out


def coexplore(pg: PartitionGraph, capacities: list[int], method: str = "dp", alpha: float = ALPHA,
              pj_per_bit: float = PJ_PER_BIT, time_limit: float = 60.0) -> CoexploreResult:
    capacities = sorted(set(capacities))
    largest = solve_partition(pg, capacities[-1], method, time_limit)
    if largest.status == "infeasible":
        return CoexploreResult("infeasible", None, None, None, None,
                               [CapacityPoint(capacities[-1], "infeasible", None, None)])
    floor = max(compulsory_ema(pg), largest.best_bound or 0.0)  # no capacity moves less
    best, proved, points = None, True, []  # the largest size's bound is valid either way; its result counts if used
    for capacity in capacities:
        if best is not None and design_cost(capacity, floor, alpha, pj_per_bit) >= best[0]:
            break
        result = largest if capacity == capacities[-1] else solve_partition(pg, capacity, method, time_limit)
        if result.status == "infeasible":
            points.append(CapacityPoint(capacity, "infeasible", None, None))
            continue
        proved &= result.status == "optimal"
        if result.blocks is None:
            points.append(CapacityPoint(capacity, result.status, None, None))
            continue
        cost = design_cost(capacity, result.objective, alpha, pj_per_bit)
        points.append(CapacityPoint(capacity, result.status, result.objective, cost))
        if best is None or cost < best[0]:
            best = (cost, capacity, result.blocks, result.objective)
    if best is None:
        status = "infeasible" if all(p.status == "infeasible" for p in points) else "error"
        return CoexploreResult(status, None, None, None, None, points)
    cost, capacity, blocks, ema = best
    return CoexploreResult("optimal" if proved else "feasible", capacity, blocks, ema, cost, points)
