"""Heuristic graph partitions, the baselines Cocco compares against.

Each returns a list of blocks (node sets) that ``evaluate`` scores, or None
when a single layer does not fit.

* ``greedy_merge``: Halide-style pair merging. It starts from single layers
  and repeatedly merges the two adjacent subgraphs whose union saves the
  most external memory access. A merge must stay convex, fit, and keep the
  subgraphs orderable. It stops when no merge saves anything.
* ``simulated_annealing``: from the greedy partition, random moves that
  merge two adjacent subgraphs, split one at a point of its topological
  order, or move one layer across an edge. Invalid results are rejected,
  worse ones accepted with probability ``exp(-delta / T)`` under geometric
  cooling. Seeded, with a move budget; it returns the best valid partition
  seen.
* ``depth_dp``: depth-ordered DP (Irregular-NN). It cuts the topological
  order into contiguous segments, optimally, by DP over prefixes. A
  contiguous segment of a topological order is always convex, and segments
  in that order can always run one after another, so only connectivity and
  fit are checked.
"""

from __future__ import annotations

import time

import math
import random

import networkx as nx

from ..formulations.partition.cost import (bound_fits, ema_bytes, evaluate, execution, is_convex,
                                           quotient_is_acyclic)
from ..formulations.partition.graph import PartitionGraph


def _fits(pg: PartitionGraph, nodes: frozenset, capacity: int) -> bool:
    return execution(pg, nodes, capacity) is not None


def _ema(pg: PartitionGraph, nodes: frozenset, capacity: int) -> int:
    """EMA of a block that fits (a lone layer in its cheapest fitting execution)."""
    return execution(pg, nodes, capacity).ema


def executions(pg: PartitionGraph, capacity: int):
    """``execution`` of blocks at ``capacity``, each computed once per call of
    a heuristic (greedy merging scores the same blocks in every round)."""
    memo: dict[frozenset, object] = {}

    def run(nodes: frozenset):
        if nodes not in memo:
            memo[nodes] = execution(pg, nodes, capacity)
        return memo[nodes]
    return run


def greedy_merge(pg: PartitionGraph, capacity: int, deadline: float | None = None) -> list[frozenset] | None:
    """Halide-style greedy merging: start from single layers and merge, each
    round, the two adjacent blocks whose union saves the most EMA and still
    runs (convex, fits, acyclic quotient), until no merge saves anything.

    Every round ends with a valid partition, so with a ``deadline``
    (perf_counter seconds) the merging stops there and returns the partition
    it has reached (single layers at the least); the exact methods' fallback
    uses this when time runs out.  None when some layer fits nowhere."""
    run = executions(pg, capacity)
    united: dict[frozenset, int] = {}  # EMA of a union, remembered across rounds
    convex: dict[frozenset, bool] = {}
    blocks = [frozenset([v]) for v in pg.order]
    if not all(run(b) is not None for b in blocks):
        return None
    while True:
        owner = {v: i for i, block in enumerate(blocks) for v in block}
        pairs = {tuple(sorted((owner[u], owner[v]))) for u, v in pg.graph.edges if owner[u] != owner[v]}
        best = None
        for i, j in pairs:
            if deadline is not None and time.perf_counter() > deadline:
                return blocks
            union = blocks[i] | blocks[j]
            if union not in united:
                united[union] = ema_bytes(pg, union)
            gain = run(blocks[i]).ema + run(blocks[j]).ema - united[union]
            if gain <= 0 or (best is not None and gain <= best[0]):
                continue
            if union not in convex:
                convex[union] = is_convex(pg, union)
            if not (convex[union] and run(union) is not None):
                continue
            merged = [b for k, b in enumerate(blocks) if k not in (i, j)] + [union]
            if quotient_is_acyclic(pg, merged):
                best = (gain, merged)
        if best is None:
            return blocks
        blocks = best[1]


def depth_dp(pg: PartitionGraph, capacity: int) -> list[frozenset] | None:
    """Segments grow as their start moves back; once a segment of two or more
    layers exceeds the capacity by its memory lower bound (which never
    shrinks as layers join, ``cost.bound_fits``), no longer one ending at the
    same layer fits, and the search moves on."""
    order = pg.order
    n = len(order)
    best: list[tuple[float, int] | None] = [None] * (n + 1)  # (cost, start of the last segment)
    best[0] = (0.0, -1)
    undirected = pg.graph.to_undirected(as_view=True)
    for end in range(1, n + 1):
        for start in range(end - 1, -1, -1):
            segment = frozenset(order[start:end])
            if end - start > 1 and not bound_fits(pg, segment, capacity):
                break
            if best[start] is None:
                continue
            if not _fits(pg, segment, capacity):
                if end - start > 1:
                    continue
                return None  # a single layer does not fit
            if len(segment) > 1 and not nx.is_connected(undirected.subgraph(segment)):
                continue
            cost = best[start][0] + _ema(pg, segment, capacity)
            if best[end] is None or cost < best[end][0]:
                best[end] = (cost, start)
    if best[n] is None:
        return None
    blocks, end = [], n
    while end > 0:
        start = best[end][1]
        blocks.append(frozenset(order[start:end]))
        end = start
    return blocks[::-1]


def simulated_annealing(pg: PartitionGraph, capacity: int, moves: int = 3000, seed: int = 0,
                        start_temperature: float = 0.05, cooling: float = 0.998) -> list[frozenset] | None:
    """``start_temperature`` is relative to the starting EMA."""
    current = greedy_merge(pg, capacity)
    if current is None:
        return None
    rnd = random.Random(seed)
    order_index = {v: i for i, v in enumerate(pg.order)}
    edges = list(pg.graph.edges)
    cost = evaluate(pg, current, capacity).ema_bytes
    best, best_cost = current, cost
    temperature = start_temperature * max(1, cost)
    for _ in range(moves):
        owner = {v: i for i, block in enumerate(current) for v in block}
        kind = rnd.random()
        if kind < 0.35 and edges:
            u, v = rnd.choice(edges)
            if owner[u] == owner[v]:
                continue
            candidate = [b for k, b in enumerate(current) if k not in (owner[u], owner[v])]
            candidate.append(current[owner[u]] | current[owner[v]])
        elif kind < 0.7:
            splittable = [b for b in current if len(b) > 1]
            if not splittable:
                continue
            block = rnd.choice(splittable)
            ordered = sorted(block, key=order_index.get)
            cut = rnd.randint(1, len(ordered) - 1)
            candidate = [b for b in current if b is not block] + [frozenset(ordered[:cut]), frozenset(ordered[cut:])]
        elif edges:
            u, v = rnd.choice(edges)
            if owner[u] == owner[v]:
                continue
            mover, target = (v, owner[u]) if rnd.random() < 0.5 else (u, owner[v])
            source = owner[mover]
            candidate = []
            for k, block in enumerate(current):
                if k == source:
                    block = block - {mover}
                elif k == target:
                    block = block | {mover}
                if block:
                    candidate.append(block)
        else:
            continue
        metrics = evaluate(pg, candidate, capacity)
        if metrics.feasible:
            delta = metrics.ema_bytes - cost
            if delta <= 0 or rnd.random() < math.exp(-delta / max(temperature, 1e-9)):
                current, cost = candidate, metrics.ema_bytes
                if cost < best_cost:
                    best, best_cost = current, cost
        temperature *= cooling
    return best


PARTITION_HEURISTICS = {"greedy-merge": greedy_merge, "depth-dp": depth_dp, "annealing": simulated_annealing}
