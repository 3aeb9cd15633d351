"""Exhaustive search over every set partition of a tiny graph: the reference
the exact methods and the bounds are tested against.

Nothing here shares code with the exact methods: every set partition of the
layers (Bell(n) of them) whose subgraphs are all connected and convex is
scored by the cost model's ``evaluate``, which checks connectivity,
convexity, fit and order itself.  (The others ``evaluate`` refuses at every
capacity; skipping them, with the test per subgraph remembered, makes brute
force a hundred times faster on sparse graphs.)
"""

from __future__ import annotations

from collections.abc import Iterator

from .coexplore import design_cost
from .cost import evaluate, is_connected, is_convex
from .problem import PartitionProblem

MAX_LAYERS = 10
"""Most layers brute force takes on (Bell(10) = 115,975 partitions)."""


def set_partitions(items: list) -> Iterator[list[list]]:
    """Every partition of ``items`` into non-empty blocks, each once."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield [[first]] + partition
        for i in range(len(partition)):
            yield partition[:i] + [[first] + partition[i]] + partition[i + 1:]


def brute_force_optimum(problem: PartitionProblem) -> float | None:
    """The least objective over every set partition (and, when co-exploring,
    every candidate size) that runs, or None when none does.

    Raises
    ------
    ValueError
        The graph has more than :data:`MAX_LAYERS` layers.
    """
    pg = problem.graph
    nodes = list(pg.order)
    if len(nodes) > MAX_LAYERS:
        raise ValueError(f"brute force enumerates the set partitions of at most {MAX_LAYERS} layers; "
                         f"this graph has {len(nodes)}")
    best = None
    shaped: dict[frozenset, bool] = {}

    def well_shaped(block: frozenset) -> bool:
        if block not in shaped:
            shaped[block] = is_connected(pg, block) and is_convex(pg, block)
        return shaped[block]

    for partition in set_partitions(nodes):
        blocks = [frozenset(b) for b in partition]
        if not all(well_shaped(b) for b in blocks):
            continue
        for capacity in problem.capacities:
            metrics = evaluate(pg, blocks, capacity, problem.objective, problem.machine)
            if not metrics.feasible:
                continue
            value = design_cost(capacity, metrics.ema_bytes, problem.alpha, problem.pj_per_bit) \
                if problem.coexplore else metrics.value
            if best is None or value < best:
                best = value
    return None if best is None else float(best)
