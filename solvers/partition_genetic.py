"""Cocco-style genetic search over partition and capacity together.

A genome is a partition (a list of node sets) plus an index into the
candidate capacities. Fitness is Cocco's design cost, ``capacity + alpha *
EMA energy``; with one capacity it ranks partitions by EMA alone.

* Crossover copies the subgraphs of one parent in topological order of
  their first node, then fills the rest with the other parent's subgraphs
  restricted to the nodes still free.
* Four mutations: move a node across an edge, split a subgraph at a point
  of its topological order, merge two adjacent subgraphs, step the capacity.
* Repair splits what is invalid: disconnected parts become their own
  subgraphs, and subgraphs that are over capacity or not convex are halved
  along the topological order until they fit. A partition whose subgraphs
  still cannot be ordered falls back to single layers.
* Selection is by tournaments of three, and the two best genomes survive
  unchanged.
* Local search (``partition_local_search``): the best seeds, the best
  child of every generation and the final answer are polished by merges
  and single-layer moves, and the seeds and the answer also by exact
  re-partitions of a few neighbouring subgraphs at a time. Recombination
  alone stalls a few percent above the optimum: the last steps regroup
  several subgraphs at once, which a random mutation almost never draws.

Seeded: the same arguments give the same answer.
"""

from __future__ import annotations

import random

import networkx as nx

from ..formulations.partition.coexplore import ALPHA, PJ_PER_BIT, design_cost
from ..formulations.partition.cost import (SplitCapacity, bound_fits, execution, is_convex, quotient_is_acyclic,
                                           total_bytes)
from ..formulations.partition.graph import PartitionGraph
from .partition_heuristics import depth_dp, greedy_merge
from .partition_local_search import BlockCosts, improve, repartition


LNS_SHAPES = ((16, 4), (18, 3))
"""Neighbourhoods of the exact re-partitions, taken in turn: at most so
many layers in at most so many neighbouring subgraphs. Each is a local
optimum the others can leave."""
LNS_ROUNDS = 1
"""Most turns through the shapes in a full polish (it stops once none of them changes anything)."""
POLISHED_SEEDS = 1
"""Seeds (of every capacity together, the best first) polished in full before the search."""


def _ema(pg: PartitionGraph, block: frozenset, capacity) -> int | None:
    run = execution(pg, block, capacity)
    return None if run is None else run.ema


def _repair(pg: PartitionGraph, blocks: list[frozenset], capacity: int, index: dict) -> list[frozenset]:
    undirected = pg.graph.to_undirected(as_view=True)
    pending = [frozenset(c) for b in blocks if b for c in nx.connected_components(undirected.subgraph(b))]
    done = []
    while pending:
        block = pending.pop()
        if len(block) == 1 or (execution(pg, block, capacity) is not None and is_convex(pg, block)):
            done.append(block)
            continue
        ordered = sorted(block, key=index.get)
        half = len(ordered) // 2
        for part in (ordered[:half], ordered[half:]):
            pending.extend(frozenset(c) for c in nx.connected_components(undirected.subgraph(part)))
    if not quotient_is_acyclic(pg, done):
        return [frozenset([v]) for v in pg.order]
    return done


def genetic(pg: PartitionGraph, capacities: list[int] | int, population: int = 24, generations: int = 40,
            seed: int = 0, alpha: float = ALPHA, pj_per_bit: float = PJ_PER_BIT):
    """Best (blocks, capacity) found, or None when no layer fits any capacity."""
    single = isinstance(capacities, (int, SplitCapacity))
    caps = sorted(set([capacities] if single else capacities), key=total_bytes)
    rnd = random.Random(seed)
    index = {v: i for i, v in enumerate(pg.order)}
    edges = list(pg.graph.edges)

    costs = [BlockCosts(pg, lambda block, cap=cap: _ema(pg, block, cap), lambda block, cap=cap: bound_fits(pg, block, cap))
             for cap in caps]
    nodes = sorted(pg.graph.nodes, key=index.get)

    def fitness(genome) -> float:
        """Cocco's design cost, ``inf`` unless the partition runs (the checks of
        ``cost.evaluate``, on subgraph costs remembered across the search)."""
        blocks, c = genome
        ema = 0
        for block in blocks:
            cost = costs[c](block)
            if cost is None:
                return float("inf")
            ema += cost
        if sorted((v for b in blocks for v in b), key=index.get) != nodes or not quotient_is_acyclic(pg, blocks):
            return float("inf")
        return design_cost(caps[c], ema, alpha, pj_per_bit)

    def polish(genome, deep: bool):
        blocks, c = genome
        blocks = improve(pg, blocks, costs[c])
        if not deep:
            return blocks, c
        still = 0  # neighbourhoods in a row that changed nothing
        for nodes_, blocks_ in LNS_SHAPES * LNS_ROUNDS:
            regrouped = improve(pg, repartition(pg, blocks, costs[c], max_nodes=nodes_, max_blocks=blocks_), costs[c])
            still = still + 1 if regrouped == blocks else 0
            blocks = regrouped
            if still == len(LNS_SHAPES):
                break
        return blocks, c

    seeds = []
    for c in range(len(caps)):
        for start in (greedy_merge(pg, caps[c]), depth_dp(pg, caps[c])):
            if start is not None:
                seeds.append((start, c))
    if not seeds:
        return None
    ranked = sorted(range(len(seeds)), key=lambda i: (fitness(seeds[i]), i))
    for i in ranked[:POLISHED_SEEDS]:
        seeds[i] = polish(seeds[i], deep=True)
    pool = [seeds[i % len(seeds)] for i in range(population)]
    scored = sorted(((fitness(g), i, g) for i, g in enumerate(pool)), key=lambda t: (t[0], t[1]))

    def tournament():
        picks = rnd.sample(scored, min(3, len(scored)))
        return min(picks, key=lambda t: (t[0], t[1]))[2]

    def crossover(a, b):
        taken, child = set(), []
        for block in sorted(a[0], key=lambda blk: min(index[v] for v in blk)):
            if rnd.random() < 0.5 and not (block & taken):
                child.append(block)
                taken |= block
        for block in b[0]:
            rest = block - taken
            if rest:
                child.append(frozenset(rest))
                taken |= rest
        return child, rnd.choice((a[1], b[1]))

    def mutate(genome):
        blocks, c = list(genome[0]), genome[1]
        owner = {v: i for i, blk in enumerate(blocks) for v in blk}
        kind = rnd.randrange(4)
        if kind == 0 and edges:
            u, v = rnd.choice(edges)
            if owner[u] != owner[v]:
                mover, target = (v, owner[u]) if rnd.random() < 0.5 else (u, owner[v])
                blocks = [blk - {mover} if k == owner[mover] else blk | {mover} if k == target else blk
                          for k, blk in enumerate(blocks)]
        elif kind == 1:
            big = [k for k, blk in enumerate(blocks) if len(blk) > 1]
            if big:
                k = rnd.choice(big)
                ordered = sorted(blocks[k], key=index.get)
                cut = rnd.randint(1, len(ordered) - 1)
                blocks = blocks[:k] + blocks[k + 1:] + [frozenset(ordered[:cut]), frozenset(ordered[cut:])]
        elif kind == 2 and edges:
            u, v = rnd.choice(edges)
            if owner[u] != owner[v]:
                merged = blocks[owner[u]] | blocks[owner[v]]
                blocks = [blk for k, blk in enumerate(blocks) if k not in (owner[u], owner[v])] + [merged]
        else:
            c = max(0, min(len(caps) - 1, c + rnd.choice((-1, 1))))
        return [blk for blk in blocks if blk], c

    for _ in range(generations):
        children = [scored[0][2], scored[1][2]] if len(scored) > 1 else [scored[0][2]]
        while len(children) < population:
            child = crossover(tournament(), tournament()) if rnd.random() < 0.7 else tournament()
            if rnd.random() < 0.8:
                child = mutate(child)
            children.append((_repair(pg, child[0], caps[child[1]], index), child[1]))
        scored = sorted(((fitness(g), i, g) for i, g in enumerate(children)), key=lambda t: (t[0], t[1]))
        if scored[0][0] < float("inf"):
            best = polish(scored[0][2], deep=False)
            scored[0] = (fitness(best), scored[0][1], best)
    if scored[0][0] < float("inf"):
        best = polish(scored[0][2], deep=True)
        scored[0] = (fitness(best), scored[0][1], best)
    value, _, (blocks, c) = scored[0]
    if value == float("inf"):
        return None
    return blocks, caps[c]
