"""Compact model: a lower bound on the least EMA when the candidate
subgraphs are too many to enumerate.

One binary per layer instead of one per candidate: ``y_u = 1`` when the
output of ``u`` crosses a subgraph boundary. Such an output is written once
and read at least once, so every partition moves at least

    EMA >= compulsory + sum over u of 2 * out(u) * y_u

(the compulsory EMA holds every weight, the network input and the network
outputs, which no layer reads). Which outputs must cross comes from memory, by constraint
generation (docs/partition.md, "The compact model"):

* Solve the model with the cuts found so far (HiGHS).
* Join the layers along every edge whose producer does not cross; each
  connected group ``T`` would have to run as one subgraph, which holds at
  least the convex closure of ``T``.
* If that closure's memory lower bound (``bound_fits``; it never
  shrinks as layers join) exceeds the capacity, no valid partition keeps
  ``T`` together. ``T`` is connected along edges whose producers do not
  cross, so one of those edges must cross subgraphs: add ``sum of y_u over
  their producers >= 1``.
  The cuts come from small sets: from every layer of ``T``, a connected
  set grown breadth first until its closure does not fit (``_small_cuts``).
* Repeat until every group fits; the last optimum (or any earlier one,
  when time runs out) bounds the least EMA from below.

Connectivity of the real subgraphs, their order, a tensor read by two
other subgraphs and the lag buffers are left out: each only raises the
true EMA, so the bound stays valid.
"""

from __future__ import annotations

import time

import networkx as nx
import pyomo.environ as pyo

from ...solvers.highs import solve_highs
from ...solvers.outcome import integral_bound
from .cost import bound_fits, compulsory_ema
from .graph import PartitionGraph


def _closure(pg: PartitionGraph, nodes: set) -> frozenset:
    """The smallest convex set holding ``nodes``: every layer on a path between two of them."""
    g = pg.graph
    down = set().union(*(nx.descendants(g, v) for v in nodes)) | nodes
    up = set().union(*(nx.ancestors(g, v) for v in nodes)) | nodes
    return frozenset(down & up)


def _small_cuts(pg: PartitionGraph, group: set, capacity: int, crossing: set) -> list[frozenset]:
    """Cuts from small sets inside a group that does not fit: from every
    layer, grow a connected set through the group's edges, breadth first,
    until its convex closure's memory bound exceeds the capacity; the
    producers of the edges it grew along form a cut. Those producers do not
    cross in the current solution, so every cut is new and violated. Small
    sets give strong cuts, and one per layer makes the loop converge in
    few rounds."""
    g = pg.graph
    inner = nx.Graph((u, v) for u, v in g.edges if u in group and v in group and u not in crossing)
    cuts = []
    for start in inner.nodes:
        taken, frontier = {start}, [start]
        while frontier:
            v = frontier.pop(0)
            for w in inner.neighbors(v):
                if w in taken:
                    continue
                taken.add(w)
                frontier.append(w)
                if not bound_fits(pg, _closure(pg, taken), capacity):
                    cuts.append(frozenset(u for u, x in g.edges
                                          if u in taken and x in taken and u not in crossing))
                    frontier = []
                    break
    return cuts


def compact_lower_bound(pg: PartitionGraph, capacity: int, time_limit: float) -> tuple[float, bool]:
    """(bound, converged): a lower bound on the EMA of every partition into
    subgraphs that fit ``capacity``; ``converged`` when every group of the
    last solution fits, i.e. the bound is the model's optimum."""
    deadline = time.perf_counter() + time_limit
    g = pg.graph
    producers = [u for u in pg.order if g.out_degree(u)]
    floor = compulsory_ema(pg)
    double = {u: 2 * pg.node(u).out_bytes for u in producers}  # written once, read at least once
    cuts: list[list[str]] = []
    seen: set[frozenset] = set()
    bound = float(floor)
    if not producers:  # no edge: nothing can cross
        return bound, True
    while time.perf_counter() < deadline:
        m = pyo.ConcreteModel(name="partition_compact")
        m.y = pyo.Var(producers, domain=pyo.Binary)
        m.cuts = pyo.ConstraintList()
        for cut in cuts:
            m.cuts.add(sum(m.y[u] for u in cut) >= 1)
        m.objective = pyo.Objective(expr=floor + sum(double[u] * m.y[u] for u in producers))
        outcome = solve_highs(m, lambda model: {u for u in producers if (pyo.value(model.y[u]) or 0) > 0.5},
                              max(0.05, deadline - time.perf_counter()))
        if outcome.bound is not None:
            bound = max(bound, integral_bound(outcome.bound) or bound)
        if not outcome.proved:
            return bound, False
        crossing = outcome.values
        joined = nx.Graph()
        joined.add_nodes_from(g.nodes)
        joined.add_edges_from((u, v) for u, v in g.edges if u not in crossing)
        new = 0
        for group in nx.connected_components(joined):
            if len(group) > 1 and not bound_fits(pg, _closure(pg, group), capacity):
                for cut in _small_cuts(pg, group, capacity, crossing):
                    if cut not in seen:
                        seen.add(cut)
                        cuts.append(sorted(cut, key=pg.position.__getitem__))
                        new += 1
        if not new:
            return bound, True
    return bound, False
