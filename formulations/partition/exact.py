"""Exact graph partition: candidates, DP over ideals, MILP and CP-SAT.

Candidates are the connected, convex subgraphs that fit the buffer.  An
optimal partition picks candidates covering every node once such that they
can run one after another (docs/partition.md):

* **DP over ideals** (independent reference): f(I) is the least EMA to run
  the nodes outside the downward-closed set I; the next subgraph is any
  candidate disjoint from I whose outside predecessors all lie in I.
* **MILP / CP-SAT** (set partitioning with order): a binary x_S per
  candidate, each node covered once; a potential t_v per node and tau_S per
  candidate with t_v = tau_S for the nodes of a chosen S, and
  t_v >= t_u + 1 - same(u, v) on every edge, same(u, v) being the chosen
  candidates holding both ends.  Potentials exist exactly when the chosen
  subgraphs can be ordered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import pyomo.environ as pyo
from ortools.sat.python import cp_model

from ...solvers.cpsat import solve_cpsat
from ...solvers.highs import solve_highs
from .cost import ema_bytes, memory_bytes
from .graph import PartitionGraph

METHODS = ("dp", "milp", "cpsat")


@dataclass(frozen=True)
class Candidate:
    nodes: frozenset
    ema: int
    memory: int
    outside_predecessors: frozenset


def candidates(pg: PartitionGraph, capacity: int, max_candidates: int = 200_000) -> list[Candidate]:
    """Every connected convex subgraph that fits ``capacity`` bytes, each once
    (ESU enumeration rooted at its first node in topological order).

    Growth stops as soon as weights plus one output row per node exceed the
    capacity: that sum only grows as nodes are added and never exceeds the
    memory a subgraph needs.  Sets are bitmasks; convexity asks whether any
    node reachable from an outside successor lies inside."""
    g = pg.graph
    order = pg.order
    bit = {v: 1 << i for i, v in enumerate(order)}
    index = {v: i for i, v in enumerate(order)}
    reach = {}
    for v in reversed(order):  # descendants including itself, as masks
        mask = bit[v]
        for w in g.successors(v):
            mask |= reach[w]
        reach[v] = mask
    succ_mask = {v: sum(bit[w] for w in g.successors(v)) for v in order}
    neighbours = {v: set(g.predecessors(v)) | set(g.successors(v)) for v in order}
    floor = {v: pg.node(v).weight_bytes + pg.node(v).row_bytes for v in order}
    found: list[Candidate] = []

    def convex(mask: int, members: list[str]) -> bool:
        outside = 0
        for v in members:
            outside |= succ_mask[v]
        outside &= ~mask
        while outside:
            low = outside & -outside
            w = order[low.bit_length() - 1]
            if reach[w] & mask:
                return False
            outside ^= low
        return True

    def visit(nodes: frozenset, mask: int) -> None:
        if convex(mask, list(nodes)):
            mem = memory_bytes(pg, nodes)
            if mem <= capacity:
                preds = frozenset(u for v in nodes for u in g.predecessors(v) if u not in nodes)
                found.append(Candidate(nodes, ema_bytes(pg, nodes), mem, preds))
                if len(found) > max_candidates:
                    raise OverflowError(f"more than {max_candidates} candidate subgraphs")

    def extend(nodes: frozenset, mask: int, extension: set, root: str, lower: int) -> None:
        visit(nodes, mask)
        extension = set(extension)
        while extension:
            w = extension.pop()
            bound = lower + floor[w]
            if bound > capacity:
                continue
            exclusive = {u for u in neighbours[w] if index[u] > index[root] and not (bit[u] & mask)
                         and not any(u in neighbours[x] for x in nodes)}
            extend(nodes | {w}, mask | bit[w], extension | exclusive, root, bound)

    for root in order:
        if floor[root] > capacity:
            continue
        extend(frozenset([root]), bit[root], {u for u in neighbours[root] if index[u] > index[root]}, root,
               floor[root])
    return found


@dataclass
class PartitionResult:
    status: str
    method: str
    blocks: list[frozenset] | None
    objective: int | None
    best_bound: float | None
    candidates: int
    wall_time_s: float
    message: str = ""
    details: dict = field(default_factory=dict)


def _dp(pg: PartitionGraph, cands: list[Candidate]) -> tuple[int | None, list[frozenset] | None]:
    everything = frozenset(pg.graph.nodes)

    @lru_cache(maxsize=None)
    def best(done: frozenset) -> tuple[float, tuple]:
        if done == everything:
            return 0, ()
        result = (float("inf"), ())
        for c in cands:
            if c.nodes & done or not c.outside_predecessors <= done:
                continue
            rest, blocks = best(done | c.nodes)
            if c.ema + rest < result[0]:
                result = (c.ema + rest, (c.nodes,) + blocks)
        return result

    value, blocks = best(frozenset())
    if value == float("inf"):
        return None, None
    return int(value), list(blocks)


def _milp(pg: PartitionGraph, cands: list[Candidate], time_limit: float):
    n = pg.graph.number_of_nodes()
    nodes = list(pg.graph.nodes)
    m = pyo.ConcreteModel(name="partition")
    m.x = pyo.Var(range(len(cands)), domain=pyo.Binary)
    m.t = pyo.Var(nodes, bounds=(0, n))
    m.tau = pyo.Var(range(len(cands)), bounds=(0, n))
    holders: dict[str, list[int]] = {v: [] for v in nodes}
    for k, c in enumerate(cands):
        for v in c.nodes:
            holders[v].append(k)
    m.cover = pyo.ConstraintList()
    for v in nodes:
        m.cover.add(sum(m.x[k] for k in holders[v]) == 1)
    m.link = pyo.ConstraintList()
    for k, c in enumerate(cands):
        for v in c.nodes:
            m.link.add(m.t[v] - m.tau[k] <= n * (1 - m.x[k]))
            m.link.add(m.tau[k] - m.t[v] <= n * (1 - m.x[k]))
    m.order = pyo.ConstraintList()
    for u, v in pg.graph.edges:
        same = sum(m.x[k] for k in holders[u] if v in cands[k].nodes)
        m.order.add(m.t[v] >= m.t[u] + 1 - same)
    m.objective = pyo.Objective(expr=sum(c.ema * m.x[k] for k, c in enumerate(cands)))

    def read(model):
        return [k for k in range(len(cands)) if (pyo.value(model.x[k]) or 0) > 0.5]

    return solve_highs(m, read, time_limit)


def _cpsat(pg: PartitionGraph, cands: list[Candidate], time_limit: float, workers: int):
    n = pg.graph.number_of_nodes()
    nodes = list(pg.graph.nodes)
    model = cp_model.CpModel()
    x = [model.NewBoolVar(f"x{k}") for k in range(len(cands))]
    t = {v: model.NewIntVar(0, n, f"t_{i}") for i, v in enumerate(nodes)}
    tau = [model.NewIntVar(0, n, f"tau{k}") for k in range(len(cands))]
    holders: dict[str, list[int]] = {v: [] for v in nodes}
    for k, c in enumerate(cands):
        for v in c.nodes:
            holders[v].append(k)
            model.Add(t[v] == tau[k]).OnlyEnforceIf(x[k])
    for v in nodes:
        model.AddExactlyOne(x[k] for k in holders[v])
    for u, v in pg.graph.edges:
        same = sum(x[k] for k in holders[u] if v in cands[k].nodes)
        model.Add(t[v] >= t[u] + 1 - same)
    model.Minimize(sum(c.ema * x[k] for k, c in enumerate(cands)))

    def read(solver):
        return [k for k in range(len(cands)) if solver.BooleanValue(x[k])]

    return solve_cpsat(model, read, time_limit, workers)


def solve_partition(pg: PartitionGraph, capacity: int, method: str = "milp", time_limit: float = 60.0,
                    workers: int = 0) -> PartitionResult:
    """Least-EMA partition of ``pg`` into subgraphs that fit ``capacity``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    start = time.perf_counter()
    cands = candidates(pg, capacity)
    covered = set().union(*(c.nodes for c in cands)) if cands else set()
    missing = [v for v in pg.order if v not in covered]
    if missing:
        return PartitionResult("infeasible", method, None, None, None, len(cands), time.perf_counter() - start,
                               f"layer {missing[0]} alone needs more than {capacity} B on chip")
    if method == "dp":
        value, blocks = _dp(pg, cands)
        status = "optimal" if blocks is not None else "infeasible"
        return PartitionResult(status, method, blocks, value, value, len(cands), time.perf_counter() - start)
    remaining = max(0.05, time_limit - (time.perf_counter() - start))
    outcome = _milp(pg, cands, remaining) if method == "milp" else _cpsat(pg, cands, remaining, workers)
    if outcome.infeasible:
        return PartitionResult("infeasible", method, None, None, None, len(cands), time.perf_counter() - start,
                               "no ordered partition into fitting subgraphs")
    if not outcome.has_solution:
        return PartitionResult("error", method, None, None, outcome.bound, len(cands), time.perf_counter() - start,
                               "time limit reached before any partition was found")
    blocks = [cands[k].nodes for k in outcome.values]
    value = int(round(outcome.objective))
    return PartitionResult("optimal" if outcome.proved else "feasible", method, blocks, value,
                           float(value) if outcome.proved else outcome.bound, len(cands),
                           time.perf_counter() - start, outcome.message)
