"""Exact graph partition: candidates, DP over ideals, MILP and CP-SAT.

Candidates are the connected, convex subgraphs that fit the buffer.  An
optimal partition picks candidates covering every node once such that they
can run one after another (docs/partition.md):

* **DP over ideals** (independent reference): f(I) is the least EMA to run
  the nodes outside the downward-closed set I; the next subgraph is any
  candidate disjoint from I whose outside predecessors all lie in I.
* **MILP / CP-SAT** (set partitioning with order): a binary x_S per
  candidate, each node covered once; a potential t_v per node, equal along
  every edge inside a chosen subgraph (same(u, v) = 1, the chosen
  candidates holding both ends) and t_v >= t_u + 1 on every other edge.
  Chosen subgraphs are connected, so equal potentials along their inner
  edges make one potential per subgraph, and such potentials exist exactly
  when the chosen subgraphs can be ordered.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from functools import lru_cache

import pyomo.environ as pyo
from ortools.sat.python import cp_model

from ...solvers.cpsat import solve_cpsat
from ...solvers.highs import not_solved, solve_highs
from .cost import (DEFAULT_MACHINE, OBJECTIVES, Machine, bound_fits, ema_bytes, execution, fits, lone_shortfall,
                   memory_parts, quotient_is_acyclic)
from .graph import PartitionGraph
from .relaxation import covering_lp_bound

METHODS = ("dp", "milp", "cpsat")


def sum_masks(masks) -> int:
    out = 0
    for mask in masks:
        out |= mask
    return out


@dataclass(frozen=True)
class Candidate:
    nodes: frozenset
    cost: int                     # by the objective: EMA bytes or latency cycles
    memory: int
    outside_predecessors: frozenset


def candidates(pg: PartitionGraph, capacity: int, max_candidates: int = 200_000,
               deadline: float | None = None, objective: str = "ema",
               machine: Machine = DEFAULT_MACHINE) -> list[Candidate]:
    """Every connected convex subgraph of two or more layers that fits
    ``capacity`` bytes, each once, and every lone layer in its cheapest
    fitting execution.

    The search grows convex sets only: from a convex connected set it adds
    one neighbouring layer and takes the convex closure (every layer that is
    at once a descendant and an ancestor of a member). Every convex connected
    set is reached this way, by adding its own layers one at a time, and a
    closure whose memory lower bound (``memory_parts``) exceeds the
    capacity ends its branch: that bound never shrinks as layers are added
    (docs/partition.md), and every convex superset holds the closure.
    (Memory itself may shrink: a layer that joins can shorten the lag one
    branch waits for another.) Sets are bitmasks; a set of masks already
    seen keeps each candidate once. More than ``max_candidates`` raises OverflowError, and
    passing ``deadline`` (perf_counter seconds) raises TimeoutError."""
    g = pg.graph
    order = pg.order
    bit = {v: 1 << i for i, v in enumerate(order)}
    below, above = {}, {}  # descendants / ancestors, each including the layer itself
    for v in reversed(order):
        below[v] = bit[v] | sum_masks(below[w] for w in g.successors(v))
    for v in order:
        above[v] = bit[v] | sum_masks(above[u] for u in g.predecessors(v))
    neighbours = {v: sum_masks(bit[u] for u in (*g.predecessors(v), *g.successors(v))) for v in order}
    found: list[Candidate] = []
    seen: set[int] = set()

    def members(mask: int) -> frozenset:
        out = []
        while mask:
            low = mask & -mask
            out.append(order[low.bit_length() - 1])
            mask ^= low
        return frozenset(out)

    def grow(mask: int, down: int, up: int, border: int) -> None:
        """``down`` / ``up``: descendants / ancestors of the set; ``border``:
        its neighbours outside it."""
        while border:
            low = border & -border
            border ^= low
            w = order[low.bit_length() - 1]
            closure = (down | below[w]) & (up | above[w])
            if closure in seen:
                continue
            seen.add(closure)
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError
            nodes = members(closure)
            weights, buffers, bound = memory_parts(pg, nodes)
            if not fits(weights, bound, capacity):
                continue  # nor does any convex superset
            mem = weights + buffers
            around = sum_masks(neighbours[v] for v in nodes) & ~closure
            if not fits(weights, buffers, capacity):  # a superset may fit: its layers can shorten a branch's lag
                grow(closure, down | below[w], up | above[w], around)
                continue
            preds = frozenset(u for v in nodes for u in g.predecessors(v) if u not in nodes)
            ema = ema_bytes(pg, nodes)
            cost = machine.latency(sum(pg.node(v).macs for v in nodes), ema) if objective == "latency" else ema
            found.append(Candidate(nodes, cost, mem, preds))
            if len(found) > max_candidates:
                raise OverflowError(f"more than {max_candidates} candidate subgraphs")
            grow(closure, down | below[w], up | above[w], around)

    for root in order:
        alone = frozenset([root])
        if bound_fits(pg, alone, capacity):
            grow(bit[root], below[root], above[root], neighbours[root])
    for v in order:  # lone layers, in their cheapest fitting execution (weights streamed if need be)
        run = execution(pg, frozenset([v]), capacity, objective, machine)
        if run is not None:
            found.append(Candidate(frozenset([v]), run.cost(objective), run.memory, frozenset(g.predecessors(v))))
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


def _dp(pg: PartitionGraph, cands: list[Candidate], deadline: float) -> tuple[int | None, list[frozenset] | None]:
    """Raises TimeoutError once ``deadline`` (perf_counter seconds) passes."""
    everything = frozenset(pg.graph.nodes)

    @lru_cache(maxsize=None)
    def best(done: frozenset) -> tuple[float, tuple]:
        if done == everything:
            return 0, ()
        if time.perf_counter() > deadline:
            raise TimeoutError
        result = (float("inf"), ())
        for c in cands:
            if c.nodes & done or not c.outside_predecessors <= done:
                continue
            rest, blocks = best(done | c.nodes)
            if c.cost + rest < result[0]:
                result = (c.cost + rest, (c.nodes,) + blocks)
        return result

    value, blocks = best(frozenset())
    if value == float("inf"):
        return None, None
    return int(value), list(blocks)


def _holders(pg: PartitionGraph, cands: list[Candidate]) -> dict[str, list[int]]:
    """Per layer, the candidates that contain it."""
    holders: dict[str, list[int]] = {v: [] for v in pg.graph.nodes}
    for k, c in enumerate(cands):
        for v in c.nodes:
            holders[v].append(k)
    return holders


def _milp(pg: PartitionGraph, cands: list[Candidate], deadline: float, ordered: bool):
    """Build, then solve with what remains before ``deadline`` (perf_counter seconds)."""
    n = pg.graph.number_of_nodes()
    nodes = list(pg.graph.nodes)
    holders = _holders(pg, cands)
    m = pyo.ConcreteModel(name="partition")
    m.x = pyo.Var(range(len(cands)), domain=pyo.Binary)
    m.t = pyo.Var(nodes, bounds=(0, n))
    m.cover = pyo.ConstraintList()
    for v in nodes:
        m.cover.add(sum(m.x[k] for k in holders[v]) == 1)
    m.order = pyo.ConstraintList()
    for u, v in pg.graph.edges if ordered else ():
        same = sum(m.x[k] for k in holders[u] if v in cands[k].nodes)
        m.order.add(m.t[v] >= m.t[u] + 1 - same)
        m.order.add(m.t[v] <= m.t[u] + n * (1 - same))
    m.objective = pyo.Objective(expr=sum(c.cost * m.x[k] for k, c in enumerate(cands)))

    def read(model):
        return [k for k in range(len(cands)) if (pyo.value(model.x[k]) or 0) > 0.5]

    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        return not_solved("time limit reached while building the model")
    return solve_highs(m, read, remaining)


def _cpsat(pg: PartitionGraph, cands: list[Candidate], deadline: float, workers: int, ordered: bool):
    """Build, then solve with what remains before ``deadline`` (perf_counter seconds)."""
    n = pg.graph.number_of_nodes()
    nodes = list(pg.graph.nodes)
    holders = _holders(pg, cands)
    model = cp_model.CpModel()
    x = [model.NewBoolVar(f"x{k}") for k in range(len(cands))]
    t = {v: model.NewIntVar(0, n, f"t_{i}") for i, v in enumerate(nodes)}
    for v in nodes:
        model.AddExactlyOne(x[k] for k in holders[v])
    for u, v in pg.graph.edges if ordered else ():
        # linear rather than reified: CP-SAT's LP then sees the order constraints
        same = sum(x[k] for k in holders[u] if v in cands[k].nodes)
        model.Add(t[v] >= t[u] + 1 - same)
        model.Add(t[v] <= t[u] + n * (1 - same))
    model.Minimize(sum(c.cost * x[k] for k, c in enumerate(cands)))

    def read(solver):
        return [k for k in range(len(cands)) if solver.BooleanValue(x[k])]

    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        return not_solved("time limit reached while building the model", backend="cpsat")
    return solve_cpsat(model, read, remaining, workers)


MAX_CANDIDATES = 200_000
"""Most candidate subgraphs the exact methods take on; beyond, the MILP and
CP-SAT fall back to the compact model and the DP reports an error."""

ENUMERATION_SHARE = 0.6
"""Share of the time limit the candidate enumeration may take."""

HEURISTIC_SHARE = 0.25
"""Share of the time left after the enumeration that the heuristics of the
compact fallback may take; the compact model gets the rest."""

COMPACT_MIN_SECONDS = 1.0
"""The compact model runs only with at least this long for it: a round of
its cut generation is not interrupted (1.3-1.9 s on GoogLeNet at 1 MiB).
With less, its bound is the compulsory EMA it starts from."""


ANNEALING_MOVES = 3000
"""Moves of the annealing heuristic when time allows (fewer when not)."""


def _best_heuristic(pg: PartitionGraph, capacity: int, objective: str, machine: Machine,
                    deadline: float | None = None):
    """(value, blocks) of the best partition greedy merging, depth-ordered
    DP and annealing find, or None.  With a ``deadline`` (perf_counter
    seconds): greedy merging stops there with the partition it has reached;
    the depth DP runs only with twice greedy's time left (both walk pairs of
    layers; on GoogLeNet at 1 MiB each takes seconds), and annealing gets
    as many moves as the time left allows (it starts from greedy merging
    again and evaluates one partition per move; on RandWire-32 its 3000
    moves take ten seconds)."""
    from ...solvers.partition_heuristics import depth_dp, greedy_merge, simulated_annealing
    from .cost import evaluate

    best = None

    def consider(blocks) -> None:
        nonlocal best
        metrics = evaluate(pg, blocks, capacity, objective, machine) if blocks is not None else None
        if metrics is not None and metrics.feasible and (best is None or metrics.value < best[0]):
            best = (metrics.value, blocks)

    clock = time.perf_counter()
    greedy = greedy_merge(pg, capacity, deadline)
    greedy_s = time.perf_counter() - clock
    consider(greedy)
    if greedy is None:
        return best
    if deadline is None or deadline - time.perf_counter() > 2 * greedy_s:
        consider(depth_dp(pg, capacity))
    moves = ANNEALING_MOVES
    if deadline is not None:
        clock = time.perf_counter()
        evaluate(pg, greedy, capacity)
        per_move = time.perf_counter() - clock
        moves = min(moves, int((deadline - time.perf_counter() - greedy_s) / max(per_move, 1e-6)))
    if moves >= 100:
        consider(simulated_annealing(pg, capacity, moves=moves))
    return best


def _compact_fallback(pg: PartitionGraph, capacity: int, method: str, start: float, time_limit: float,
                      why: str, objective: str, machine: Machine) -> PartitionResult:
    """When the candidates cannot be enumerated: the best partition of
    greedy merging, depth-ordered DP and annealing, and a lower bound from
    the compact model (``compact.py``), reported as ``feasible`` with its
    gap."""
    from .compact import compact_lower_bound

    lone = [v for v in pg.order if execution(pg, frozenset([v]), capacity) is None]
    if lone:
        return PartitionResult("infeasible", method, None, None, None, 0, time.perf_counter() - start,
                               lone_shortfall(pg, lone[0], capacity))
    # a quarter of what is left for the heuristics, the rest for the compact model (if enough for a round)
    remaining = time_limit - (time.perf_counter() - start)
    best = _best_heuristic(pg, capacity, objective, machine, time.perf_counter() + HEURISTIC_SHARE * remaining)
    remaining = time_limit - (time.perf_counter() - start)
    bound, converged = compact_lower_bound(pg, capacity, remaining if remaining >= COMPACT_MIN_SECONDS else 0.0)
    if objective == "latency":  # sum of max(compute, transfer) >= max(total compute, total transfer)
        bound = float(machine.latency(sum(pg.node(v).macs for v in pg.order), int(bound)))
    note = f"{why}; lower bound from the compact model ({'converged' if converged else 'stopped at the time limit'})"
    if best is None:
        return PartitionResult("error", method, None, None, bound, 0, time.perf_counter() - start,
                               note + f" {bound:,.0f}; no heuristic partition fits")
    value, blocks = best
    if bound > value:
        return PartitionResult("error", method, blocks, value, bound, 0, time.perf_counter() - start,
                               f"the compact model's bound {bound:,.0f} lies above a valid partition's EMA "
                               f"{value:,}: a bug, please report it")
    gap = (value - bound) / value if value else 0.0
    return PartitionResult("feasible", method, blocks, value, bound, 0, time.perf_counter() - start,
                           note + f"; the best heuristic partition lies {100 * gap:.1f}% above it",
                           {"compact_bound": bound, "compact_converged": converged})


def solve_partition(pg: PartitionGraph, capacity: int, method: str = "milp", time_limit: float = 60.0,
                    workers: int = 0, max_candidates: int = MAX_CANDIDATES, objective: str = "ema",
                    machine: Machine = DEFAULT_MACHINE, cutoff: float | None = None) -> PartitionResult:
    """Best partition of ``pg`` into subgraphs that fit ``capacity``: least
    EMA bytes, or least latency cycles on ``machine``.

    Parameters
    ----------
    pg : PartitionGraph
        The network.
    capacity : int or Capacity
        The on-chip buffer, in bytes (or separate activation and weight buffers).
    method : {"dp", "milp", "cpsat"}
        The exact method.
    time_limit : float
        Seconds for everything: the candidates, the model and the solve.
    workers : int
        CP-SAT's workers (0: its default).
    max_candidates : int
        Beyond this many candidate subgraphs, the MILP and CP-SAT fall back
        to the compact model and the DP reports an error.
    objective : {"ema", "latency"}
        What to minimise.
    machine : Machine
        The compute and transfer rates that latency is counted with.
    cutoff : float, optional
        Only a partition whose objective lies below this value is wanted.
        When the covering LP's rigorous bound (``relaxation.py``) already
        reaches it, the solve is skipped and the status is ``cutoff``, with
        that bound as ``best_bound``. Co-exploration uses it to rule out a
        buffer size that cannot beat the best design found.

    Returns
    -------
    PartitionResult
        ``optimal``, ``feasible`` (with the solver's bound), ``infeasible``,
        ``cutoff`` or ``error``, with the subgraphs when one was found.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    start = time.perf_counter()
    try:
        # the candidates may take part of the time; the rest is for solving, or for the compact model
        cands = candidates(pg, capacity, max_candidates, start + ENUMERATION_SHARE * time_limit, objective, machine)
    except (OverflowError, TimeoutError) as exc:
        why = (f"more than {max_candidates:,} candidate subgraphs fit {capacity:,} B" if isinstance(exc, OverflowError)
               else f"the candidate subgraphs were not all enumerated in {ENUMERATION_SHARE * time_limit:.3g} s")
        if method == "dp":
            return PartitionResult("error", method, None, None, None, 0, time.perf_counter() - start,
                                   why + "; the DP needs them all (milp or cpsat fall back to the compact model)")
        return _compact_fallback(pg, capacity, method, start, time_limit, why, objective, machine)
    covered = set().union(*(c.nodes for c in cands)) if cands else set()
    missing = [v for v in pg.order if v not in covered]
    if missing:
        return PartitionResult("infeasible", method, None, None, None, len(cands), time.perf_counter() - start,
                               lone_shortfall(pg, missing[0], capacity))
    if cutoff is not None:
        bound = covering_lp_bound(pg, cands, max(0.0, start + time_limit - time.perf_counter()))
        if bound - 1e-9 * (abs(bound) + 1) >= cutoff:  # a margin for the float sum of the dual bound
            return PartitionResult("cutoff", method, None, None, bound, len(cands), time.perf_counter() - start,
                                   f"the covering LP bounds the objective by {bound:,.0f}, at or above the "
                                   f"cutoff {cutoff:,.0f}")
    if method == "dp":
        try:
            value, blocks = _dp(pg, cands, start + time_limit)
        except TimeoutError:
            return PartitionResult("error", method, None, None, None, len(cands), time.perf_counter() - start,
                                   f"the DP over {len(cands):,} candidates did not finish in {time_limit:g} s; "
                                   "milp or cpsat report a gap instead")
        status = "optimal" if blocks is not None else "infeasible"
        return PartitionResult(status, method, blocks, value, value, len(cands), time.perf_counter() - start)
    # first without the order constraints, which rarely bind: a proved best
    # covering whose subgraphs can be ordered is optimal
    deadline = start + time_limit  # the candidates, both model builds and both solves are inside it

    def run(ordered: bool):
        if time.perf_counter() >= deadline:
            return not_solved("time limit reached before the solve", backend=method)
        return (_milp(pg, cands, deadline, ordered) if method == "milp"
                else _cpsat(pg, cands, deadline, workers, ordered))

    relaxed = run(ordered=False)
    orderable = relaxed.values is not None and quotient_is_acyclic(pg, [cands[k].nodes for k in relaxed.values])
    outcome = relaxed
    if not relaxed.infeasible and not (relaxed.proved and orderable):
        outcome = run(ordered=True)
        bound = max((b for b in (outcome.bound, relaxed.bound) if b is not None), default=None)
        if orderable and (outcome.values is None or relaxed.objective < outcome.objective - 0.5):
            # the relaxed covering is a valid partition, and better than what the full model found in time
            outcome = dataclasses.replace(relaxed, proved=False)
        outcome = dataclasses.replace(outcome, bound=bound)
    if outcome.infeasible:
        return PartitionResult("infeasible", method, None, None, None, len(cands), time.perf_counter() - start,
                               "no ordered partition into fitting subgraphs")
    if not outcome.has_solution:
        best = _best_heuristic(pg, capacity, objective, machine, deadline)
        if best is None:
            return PartitionResult("error", method, None, None, outcome.bound, len(cands),
                                   time.perf_counter() - start, "time limit reached before any partition was found")
        value, blocks = best
        bound = outcome.bound
        if bound is not None and bound > value + 0.5:
            return PartitionResult("error", method, blocks, value, bound, len(cands), time.perf_counter() - start,
                                   f"the solver's bound {bound:,.0f} lies above a valid partition's {value:,}: a bug")
        return PartitionResult("feasible", method, blocks, value, bound, len(cands), time.perf_counter() - start,
                               f"the {method} found no partition in time over {len(cands):,} candidates; the best "
                               "heuristic partition is reported" + ("" if bound is None else " with the solver's bound"))
    blocks = [cands[k].nodes for k in outcome.values]
    value = int(round(outcome.objective))
    note = f"{len(cands):,} candidate subgraphs" + ("" if outcome.proved else f"; {outcome.message}")
    return PartitionResult("optimal" if outcome.proved else "feasible", method, blocks, value,
                           float(value) if outcome.proved else outcome.bound, len(cands),
                           time.perf_counter() - start, note)
