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

The time limit is the whole search's: each capacity's solve gets what the
ones before it left, and once it is spent the sizes not yet solved are
left out and the result is at best ``feasible``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .cost import compulsory_ema, total_bytes
from .exact import solve_partition
from .graph import PartitionGraph

ALPHA = 0.002
PJ_PER_BIT = 12.5


LARGEST_SHARE = 0.5
"""Most of the time limit the largest size's solve may take (it comes first)."""


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
    Only those three sizes, and the infeasible ones below them, are solved,
    all within ``time_limit`` seconds: a size reached after it is left out
    (like a size that errs)."""
    caps = sorted(set(capacities))
    points: dict[int, CapacityPoint] = {}
    deadline = time.perf_counter() + time_limit

    def solve(capacity: int) -> CapacityPoint | None:
        if capacity not in points:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None  # not solved, and not remembered as unsolvable
            result = solve_partition(pg, capacity, method, remaining)
            points[capacity] = None if result.blocks is None else CapacityPoint(
                capacity, result.status, result.objective,
                design_cost(capacity, result.objective, alpha, pj_per_bit), result.blocks)
        return points[capacity]

    # a partition that fits one size fits every larger one: the feasible sizes are a suffix
    first = None
    for i, capacity in enumerate(caps):
        if solve(capacity) is not None:
            first = i
            break
        if time.perf_counter() >= deadline:
            return {}  # out of time before a size that fits was found
    if first is None:
        return {}
    feasible = caps[first:]
    chosen = {"small": feasible[0], "medium": feasible[len(feasible) // 2], "large": feasible[-1]}
    solved = {which: solve(capacity) for which, capacity in chosen.items()}
    return {which: point for which, point in solved.items() if point is not None}  # a size that errs is left out


def coexplore(pg: PartitionGraph, capacities: list[int], method: str = "dp", alpha: float = ALPHA,
              pj_per_bit: float = PJ_PER_BIT, time_limit: float = 60.0) -> CoexploreResult:
    capacities = sorted(set(capacities))
    deadline = time.perf_counter() + time_limit
    # the largest size first, for its bound; at most half the time, unless it is the only size
    largest = solve_partition(pg, capacities[-1], method,
                              time_limit if len(capacities) == 1 else LARGEST_SHARE * time_limit)
    if largest.status == "infeasible":
        return CoexploreResult("infeasible", None, None, None, None,
                               [CapacityPoint(capacities[-1], "infeasible", None, None)])
    floor = max(compulsory_ema(pg), largest.best_bound or 0.0)  # no capacity moves less
    best, proved, points = None, True, []  # the largest size's bound is valid either way; its result counts if used

    def record(capacity: int, result) -> None:
        nonlocal best, proved
        if result.status == "infeasible":
            points.append(CapacityPoint(capacity, "infeasible", None, None))
            return
        proved &= result.status == "optimal"
        if result.blocks is None:
            points.append(CapacityPoint(capacity, result.status, None, None))
            return
        cost = design_cost(capacity, result.objective, alpha, pj_per_bit)
        points.append(CapacityPoint(capacity, result.status, result.objective, cost))
        if best is None or cost < best[0]:
            best = (cost, capacity, result.blocks, result.objective)

    out_of_time = False
    for capacity in capacities:
        if best is not None and design_cost(capacity, floor, alpha, pj_per_bit) >= best[0]:
            break
        if capacity == capacities[-1]:
            record(capacity, largest)
        elif time.perf_counter() >= deadline:
            out_of_time = True  # the sizes from here on are not solved
            break
        else:
            record(capacity, solve_partition(pg, capacity, method, deadline - time.perf_counter()))
    if out_of_time:
        proved = False
        if best is None or design_cost(capacities[-1], floor, alpha, pj_per_bit) < best[0]:
            record(capacities[-1], largest)  # solved first, so it may still win
    if best is None:
        status = "infeasible" if points and not out_of_time and all(p.status == "infeasible" for p in points) \
            else "error"
        return CoexploreResult(status, None, None, None, None, points)
    cost, capacity, blocks, ema = best
    return CoexploreResult("optimal" if proved else "feasible", capacity, blocks, ema, cost, points)
