"""Local search on a graph partition: merge neighbours, move boundary layers.

A genetic search recombines partitions well but converges slowly on the
last few percent: a child that is one boundary layer away from a better
partition needs that exact mutation to be drawn. This hill climb takes the
steepest such step until none improves, so every partition the search
keeps is a local optimum of two neighbourhoods:

* **merge** two subgraphs joined by an edge into one;
* **move** one layer across an edge into the neighbouring subgraph (the
  subgraph it leaves may become empty, which is a merge too).

A step is taken only if every subgraph it changes stays connected, convex
and within the capacity, and the subgraphs can still be ordered; the cost
is the sum of the subgraphs' costs, so a step is scored on the subgraphs it
changes alone (each subgraph's cost is computed once and remembered).
"""

from __future__ import annotations

from typing import Callable

from ..formulations.partition.cost import quotient_is_acyclic
from ..formulations.partition.graph import PartitionGraph


class BlockCosts:
    """Cost of running one subgraph (None when it cannot run), remembered
    per node set: a search asks for the same subgraphs again and again.

    Convexity is read off bit sets of every layer's descendants and
    ancestors (a set is convex when no layer outside it is both reached
    from it and reaches it), computed once per graph: a search tests
    hundreds of thousands of sets, and a graph search per test dominated it."""

    def __init__(self, pg: PartitionGraph, cost: Callable[[frozenset], float | None],
                 may_grow: Callable[[frozenset], bool] | None = None):
        self.pg = pg
        self._cost = cost
        self._known: dict[frozenset, float | None] = {}
        self._grows: dict[frozenset, bool] = {}
        self._may_grow = may_grow
        g = pg.graph
        self._bit = {v: 1 << i for i, v in enumerate(pg.order)}
        self._down: dict = {}
        self._up: dict = {}
        for v in reversed(pg.order):
            mask = 0
            for w in g.successors(v):
                mask |= self._bit[w] | self._down[w]
            self._down[v] = mask
        for v in pg.order:
            mask = 0
            for u in g.predecessors(v):
                mask |= self._bit[u] | self._up[u]
            self._up[v] = mask
        self._neighbours = {v: set(g.predecessors(v)) | set(g.successors(v)) for v in g.nodes}

    def __call__(self, block: frozenset) -> float | None:
        if block not in self._known:
            ok = len(block) == 1 or (self.connected(block) and self.convex(block))
            self._known[block] = self._cost(block) if ok else None
        return self._known[block]

    def may_grow(self, block: frozenset) -> bool:
        """Whether a superset of the block may still run (False once a lower
        bound on its memory, which adding layers never lowers, exceeds the capacity)."""
        if self._may_grow is None:
            return True
        if block not in self._grows:
            self._grows[block] = self._may_grow(block)
        return self._grows[block]

    def convex(self, block: frozenset) -> bool:
        inside = down = up = 0
        for v in block:
            inside |= self._bit[v]
            down |= self._down[v]
            up |= self._up[v]
        return not (down & up & ~inside)

    def connected(self, block: frozenset) -> bool:
        start = next(iter(block))
        seen, stack = {start}, [start]
        while stack:
            for w in self._neighbours[stack.pop()]:
                if w in block and w not in seen:
                    seen.add(w)
                    stack.append(w)
        return len(seen) == len(block)


def improve(pg: PartitionGraph, blocks: list[frozenset], costs: BlockCosts, max_steps: int = 200) -> list[frozenset]:
    """A local optimum of merges and single-layer moves reached from
    ``blocks`` (a valid partition) by steepest descent, at most
    ``max_steps`` steps; every step keeps the partition valid."""
    blocks = [b for b in blocks if b]
    for _ in range(max_steps):
        owner = {v: i for i, b in enumerate(blocks) for v in b}
        best_gain, best = 0.0, None
        tried: set = set()
        for u, v in pg.graph.edges:
            a, b = owner[u], owner[v]
            if a == b:
                continue
            for change in _changes(blocks, a, b, u, v):
                key = tuple(sorted(map(tuple, map(sorted, change[1]))))
                if key in tried:
                    continue
                tried.add(key)
                gain = _gain(blocks, change, costs)
                if gain is not None and gain > best_gain + 1e-9:
                    candidate = _apply(blocks, change)
                    if quotient_is_acyclic(pg, candidate):
                        best_gain, best = gain, candidate
        if best is None:
            return blocks
        blocks = best
    return blocks


def _changes(blocks: list[frozenset], a: int, b: int, u, v):
    """(indices replaced, their new blocks) for the steps an edge u -> v between blocks a and b offers."""
    A, B = blocks[a], blocks[b]
    yield (a, b), [A | B]
    yield (a, b), [A - {u}, B | {u}]
    yield (a, b), [A | {v}, B - {v}]


def _gain(blocks: list[frozenset], change, costs: BlockCosts) -> float | None:
    removed, added = change
    new = [blk for blk in added if blk]
    after = 0.0
    for blk in new:
        cost = costs(blk)
        if cost is None:
            return None
        after += cost
    before = 0.0
    for i in removed:
        cost = costs(blocks[i])
        if cost is None:
            return None
        before += cost
    return before - after


def _apply(blocks: list[frozenset], change) -> list[frozenset]:
    removed, added = change
    return [blk for i, blk in enumerate(blocks) if i not in removed] + [blk for blk in added if blk]


def repartition(pg: PartitionGraph, blocks: list[frozenset], costs: BlockCosts, max_nodes: int = 12,
                rounds: int = 2, max_blocks: int = 3) -> list[frozenset]:
    """Large-neighbourhood steps: for each pair of neighbouring subgraphs
    (and a third neighbour while the union stays within ``max_nodes``
    layers), the union is re-partitioned exactly, the rest fixed. This
    regroups several subgraphs at once, which no single merge or move can
    do (say, two inception branches trading layers). ``rounds`` passes over
    the pairs, or until a pass changes nothing."""
    blocks = [b for b in blocks if b]
    order = {v: i for i, v in enumerate(pg.order)}
    for _ in range(rounds):
        changed = False
        seen: set = set()
        for u, v in list(pg.graph.edges):
            owner = {w: i for i, b in enumerate(blocks) for w in b}
            a, b = owner[u], owner[v]
            if a == b:
                continue
            region = blocks[a] | blocks[b]
            members = {a, b}
            for w in sorted(region, key=order.get):  # grow by more neighbouring subgraphs while they fit the size
                for x in list(pg.graph.predecessors(w)) + list(pg.graph.successors(w)):
                    c = owner[x]
                    if c not in members and len(region | blocks[c]) <= max_nodes:
                        region, members = region | blocks[c], members | {c}
                        break
                if len(members) >= max_blocks:
                    break
            if len(region) > max_nodes or region in seen:
                continue
            seen.add(region)
            before = sum(costs(blocks[i]) for i in members)
            found = _best_cover(pg, region, costs)
            if found is None or found[0] >= before - 1e-9:
                continue
            candidate = [blk for i, blk in enumerate(blocks) if i not in members] + found[1]
            if quotient_is_acyclic(pg, candidate):
                blocks, changed = candidate, True
        if not changed:
            break
    return blocks


def _best_cover(pg: PartitionGraph, region: frozenset, costs: BlockCosts):
    """(cost, blocks) of the cheapest partition of ``region`` into subgraphs
    that run (connected, convex, fitting), by exact search; None if none.

    The subgraphs that run are listed once (connected sets grown one
    neighbour at a time, a set that ``costs.may_grow`` rules out not grown
    further), then the cheapest cover is found by a search over the first
    uncovered layer, remembered per uncovered set."""
    order = {v: i for i, v in enumerate(pg.order)}
    neighbours = {v: [w for w in list(pg.graph.predecessors(v)) + list(pg.graph.successors(v)) if w in region]
                  for v in region}
    runnable: dict = {v: [] for v in region}  # first layer (in topological order) -> (set, cost)
    seen: set = set()
    stack = [frozenset([v]) for v in sorted(region, key=order.get, reverse=True)]
    while stack:
        block = stack.pop()
        if block in seen:
            continue
        seen.add(block)
        cost = costs(block)
        if cost is not None:
            runnable[min(block, key=order.get)].append((block, cost))
        if not costs.may_grow(block):
            continue
        for w in sorted({x for v in block for x in neighbours[v]} - block, key=order.get, reverse=True):
            stack.append(block | {w})
    memo: dict[frozenset, tuple[float, list] | None] = {}

    def best(remaining: frozenset):
        if not remaining:
            return (0.0, [])
        if remaining in memo:
            return memo[remaining]
        answer = None
        for block, cost in runnable[min(remaining, key=order.get)]:
            if block <= remaining:
                rest = best(remaining - block)
                if rest is not None and (answer is None or cost + rest[0] < answer[0]):
                    answer = (cost + rest[0], [block] + rest[1])
        memo[remaining] = answer
        return answer

    return best(region)
