"""Partition and on-chip memory capacity chosen together (Cocco's co-exploration).

Cocco scores a design by ``BUF_SIZE + alpha * cost``: the buffer size in
bytes plus alpha times the energy of the external memory accesses, in pJ.
Its defaults are alpha = 0.002 and 12.5 pJ per DRAM bit. The capacity is
picked from a list of candidates.

For a fixed capacity, the best partition is the least-EMA one. So the joint
optimum is the least, over the candidates, of the capacity plus alpha times
that capacity's optimal EMA energy, and it is exact when each of those
optima is proved or shown unable to win. The sizes are tried smallest
first, where solves are cheap (few candidate subgraphs fit):

* EMA can never fall below the compulsory EMA (every weight, network input
  and output once), so once ``capacity + alpha * (its energy)`` reaches the
  best cost found, no larger capacity can win, and the search stops;
* a size below that point is ruled out without solving it when the
  covering LP's rigorous bound on its EMA (``relaxation.py``) already makes
  its cost reach the best one (status ``cutoff``).

Both rules drop only sizes whose every partition costs at least the best
design found, so the answer is the one solving every size would give
(docs/partition.md, "Pruning the sizes").

The time limit is the whole search's: each capacity's solve gets what the
ones before it left, and once it is spent the sizes not yet solved are
left out and the result is at best ``feasible``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .cost import compulsory_ema, execution, total_bytes
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
              pj_per_bit: float = PJ_PER_BIT, time_limit: float = 60.0, prune: bool = True) -> CoexploreResult:
    """The least design cost ``capacity + alpha * EMA energy`` over the
    candidate ``capacities`` and the partitions that fit each.

    Parameters
    ----------
    pg : PartitionGraph
        The network.
    capacities : list of int
        Candidate buffer sizes in bytes (any order; duplicates ignored).
    method : {"dp", "milp", "cpsat"}
        The exact method each size is solved with.
    alpha, pj_per_bit : float
        Cocco's weight of the EMA energy, and the DRAM energy per bit.
    time_limit : float
        Seconds for the whole search. Sizes not reached in time are left out
        and the result is at best ``feasible``.
    prune : bool
        Rule out a size whose covering-LP bound shows it cannot beat the
        best design found, without solving it (status ``cutoff``). Off,
        every size up to the stop rule is solved; the answer is the same.

    Returns
    -------
    CoexploreResult
        ``optimal`` when every size that could win was proved or ruled out,
        ``feasible`` when the time ran out first, ``infeasible`` when no
        size fits every layer, ``error`` when no size was solved.
    """
    capacities = sorted(set(capacities))
    deadline = time.perf_counter() + time_limit
    too_big = next((v for v in pg.order if execution(pg, frozenset([v]), capacities[-1]) is None), None)
    if too_big is not None:  # a layer that fits no size alone: nothing fits
        return CoexploreResult("infeasible", None, None, None, None,
                               [CapacityPoint(capacities[-1], "infeasible", None, None)])
    floor = compulsory_ema(pg)  # no capacity moves less
    energy_per_byte = alpha * 8 * pj_per_bit
    best, proved, points = None, True, []
    for capacity in capacities:
        if best is not None and design_cost(capacity, floor, alpha, pj_per_bit) >= best[0]:
            break  # this size alone, and every larger one, costs at least the best design
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            proved = False  # the sizes from here on are not solved
            break
        # only an EMA below this can beat the best design at this size
        cutoff = (best[0] - total_bytes(capacity)) / energy_per_byte if prune and best is not None else None
        result = solve_partition(pg, capacity, method, remaining, cutoff=cutoff)
        if result.status in ("infeasible", "cutoff"):
            points.append(CapacityPoint(capacity, result.status, None, None))
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
        status = "infeasible" if points and proved and all(p.status == "infeasible" for p in points) else "error"
        return CoexploreResult(status, None, None, None, None, points)
    cost, capacity, blocks, ema = best
    return CoexploreResult("optimal" if proved else "feasible", capacity, blocks, ema, cost, points)
