"""Exact least-distortion pairing: a perfect matching, proved optimal.

A complete graph on F filters has F(F-1)/2 edges (523,776 for 1024 filters),
too many to hand to a MILP or CP-SAT solver directly.  An exact reduction
(docs/pairing.md) keeps only edges that can be in an optimal matching:

1. Solve the LP relaxation of perfect matching (degree of every node = 1,
   0 <= y <= 1) by column generation: start from the cheapest edges of each
   node, add edges with negative reduced cost c_ij - u_i - u_j until none is
   left.  The duals u are then feasible for the LP over *all* edges, and
   LB = sum_i u_i is a lower bound on every perfect matching.
2. Any perfect matching M satisfies cost(M) = LB + sum_{e in M} r_e with all
   r_e >= 0, so an edge with r_e > UB - LB (UB: the cost of any matching we
   already have) is in no matching that costs at most UB.  Such edges are
   dropped; what remains contains every optimal matching.
3. Solve the remaining problem exactly with the MILP (pyomo + HiGHS) or with
   CP-SAT.

With an odd filter count, a dummy node joined to every filter at cost 0 takes
the filter that stays unpaired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import pyomo.environ as pyo
from ortools.sat.python import cp_model

from ...solvers.cpsat import solve_cpsat
from ...solvers.highs import not_solved, solve_highs
from ...solvers.outcome import integral_bound
from .cost import Pairing, PairingProblem, distortion_matrix

METHODS = ("milp", "cpsat")


@dataclass
class PairingResult:
    status: str
    method: str
    pairing: Pairing | None
    objective: int | None
    best_bound: float | None
    lp_bound: float
    edges_total: int
    edges_kept: int
    wall_time_s: float
    message: str = ""
    details: dict = field(default_factory=dict)


def with_dummy(cost: np.ndarray) -> tuple[np.ndarray, int | None]:
    """The cost matrix with a dummy node joined to every filter at cost 0
    when the count is odd (the filter matched to it stays unpaired), and the
    dummy's index (None for an even count)."""
    n = cost.shape[0]
    if n % 2 == 0:
        return cost, None
    padded = np.zeros((n + 1, n + 1), dtype=cost.dtype)
    padded[:n, :n] = cost
    return padded, n


def greedy_matching(cost: np.ndarray) -> list[tuple[int, int]]:
    """Cheapest remaining edge first: a perfect matching on an even node
    count, used as the initial upper bound (and as a heuristic)."""
    n = cost.shape[0]
    iu, ju = np.triu_indices(n, 1)
    order = np.argsort(cost[iu, ju], kind="stable")
    used = np.zeros(n, dtype=bool)
    pairs = []
    for e in order:
        i, j = int(iu[e]), int(ju[e])
        if not used[i] and not used[j]:
            used[i] = used[j] = True
            pairs.append((i, j))
            if len(pairs) * 2 == n:
                break
    return pairs


def _solve_lp(n: int, edges: np.ndarray, cost: np.ndarray) -> tuple[float, np.ndarray]:
    """LP relaxation of perfect matching on ``edges``; returns (value, duals)."""
    m = len(edges)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = m, n
    lp.col_cost_ = cost[edges[:, 0], edges[:, 1]].astype(np.float64)
    lp.col_lower_ = np.zeros(m)
    lp.col_upper_ = np.full(m, highspy.kHighsInf)  # y <= 1 is implied; an explicit bound would hide negative reduced costs
    lp.row_lower_ = np.ones(n)
    lp.row_upper_ = np.ones(n)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, 2 * m + 1, 2, dtype=np.int32)
    lp.a_matrix_.index_ = edges.astype(np.int32).ravel()
    lp.a_matrix_.value_ = np.ones(2 * m)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"matching LP not solved: {h.modelStatusToString(h.getModelStatus())}")
    duals = np.asarray(h.getSolution().row_dual, dtype=np.float64)
    return float(h.getInfo().objective_function_value), duals


def column_generation(cost: np.ndarray, start_per_node: int = 8,
                      deadline: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Solve the matching LP over all edges by generating columns.

    Returns the generated edges, the node duals, the reduced costs of every
    edge (all >= 0 at the end, up to tolerance), the LP bound and the number
    of rounds. Past ``deadline`` (perf_counter seconds) it stops after the
    current round; the bound and the edge fixing stay valid (see below),
    only weaker."""
    n = cost.shape[0]
    masked = cost.astype(np.float64) + np.diag(np.full(n, np.inf))
    near = np.argsort(masked, axis=1)[:, :min(start_per_node, n - 1)]
    edges = {(min(i, j), max(i, j)) for i in range(n) for j in near[i].tolist()}
    edges |= {tuple(sorted(p)) for p in greedy_matching(cost)}  # keeps the LP feasible
    rounds = 0
    while True:
        rounds += 1
        arr = np.array(sorted(edges), dtype=np.int64)
        _, duals = _solve_lp(n, arr, cost)
        reduced = masked - duals[:, None] - duals[None, :]
        worst = reduced.min(axis=1)
        if worst.min() >= -1e-7 or rounds > 200 or (deadline is not None and time.perf_counter() > deadline):
            break
        for i in np.flatnonzero(worst < -1e-7):
            for j in np.argsort(reduced[i])[:start_per_node]:
                if reduced[i, j] < -1e-7:
                    edges.add((min(i, int(j)), max(i, int(j))))
    # a bound that stays valid even if the last LP left tiny negative reduced
    # costs: every matching has cost >= sum(u) + sum over its edges of min(r, 0)
    shortfall = float(np.minimum(worst, 0).sum())
    lower = float(duals.sum()) + shortfall
    return arr, duals, np.maximum(reduced, 0.0), lower, rounds


def kept_edges(reduced: np.ndarray, upper: float, lower: float) -> np.ndarray:
    """Edges whose reduced cost leaves room under ``upper``: every matching
    of cost <= upper uses only these (cost = LP bound + its reduced costs)."""
    n = reduced.shape[0]
    slack = upper - lower + 1e-6 * max(1.0, abs(upper))
    iu, ju = np.triu_indices(n, 1)
    keep = reduced[iu, ju] <= slack
    return np.stack([iu[keep], ju[keep]], axis=1)


def _milp(n: int, edges: np.ndarray, cost: np.ndarray, deadline: float):
    """Build, then solve with what remains before ``deadline`` (perf_counter seconds)."""
    m = pyo.ConcreteModel(name="pairing")
    m.y = pyo.Var(range(len(edges)), domain=pyo.Binary)
    incident: list[list[int]] = [[] for _ in range(n)]
    for e, (i, j) in enumerate(edges.tolist()):
        incident[i].append(e)
        incident[j].append(e)
    m.degree = pyo.ConstraintList()
    for v in range(n):
        m.degree.add(sum(m.y[e] for e in incident[v]) == 1)
    m.objective = pyo.Objective(expr=sum(float(cost[i, j]) * m.y[e] for e, (i, j) in enumerate(edges.tolist())))

    def read(model):
        return [e for e in range(len(edges)) if (pyo.value(model.y[e]) or 0) > 0.5]

    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        return not_solved("time limit reached while building the model")
    return solve_highs(m, read, remaining)


def _cpsat(n: int, edges: np.ndarray, cost: np.ndarray, deadline: float, hint: set, duals: np.ndarray):
    """CP-SAT on the reduced-cost form of the objective: for any integers
    a_i, every perfect matching costs sum_i a_i + sum_e (c_ij - a_i - a_j).
    With a_i = floor(LP dual) the edge costs stay >= 0 and CP-SAT starts from
    the LP bound instead of rediscovering it."""
    shift = np.floor(duals + 1e-9).astype(np.int64)
    model = cp_model.CpModel()
    y = [model.NewBoolVar(f"y{e}") for e in range(len(edges))]
    incident: list[list] = [[] for _ in range(n)]
    for e, (i, j) in enumerate(edges.tolist()):
        incident[i].append(y[e])
        incident[j].append(y[e])
        model.AddHint(y[e], (i, j) in hint)
    for v in range(n):
        model.AddExactlyOne(incident[v])
    model.Minimize(int(shift.sum()) + sum(int(cost[i, j] - shift[i] - shift[j]) * y[e]
                                          for e, (i, j) in enumerate(edges.tolist())))

    def read(solver):
        return [e for e in range(len(edges)) if solver.BooleanValue(y[e])]

    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        return not_solved("time limit reached while building the model", backend="cpsat")
    return solve_cpsat(model, read, remaining)


def _cost(cost: np.ndarray, pairs) -> int:
    return int(sum(int(cost[i, j]) for i, j in pairs))


def solve_pairing(problem: PairingProblem, method: str = "milp", time_limit: float = 60.0) -> PairingResult:
    """The least-distortion pairing of ``problem``'s filters by ``method``
    (milp or cpsat) after LP reduced-cost fixing (module docstring).

    Returns
    -------
    PairingResult
        ``optimal`` with the pairing, or ``feasible`` with the best pairing
        found and a bound when the time limit ends the search.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    start = time.perf_counter()
    f = problem.filters
    if f < 2:
        return PairingResult("optimal", method, Pairing([], list(range(f))), 0, 0.0, 0.0, 0, 0,
                             time.perf_counter() - start, "fewer than two filters: nothing to pair")
    cost, dummy = with_dummy(distortion_matrix(problem))
    n = cost.shape[0]
    total = n * (n - 1) // 2
    greedy = [tuple(sorted(p)) for p in greedy_matching(cost)]
    # the time limit counts from the call: the LP, the model builds and both solves are inside it
    deadline = start + time_limit
    generated, duals, reduced, lower, rounds = column_generation(cost, deadline=deadline)

    def run(edges: np.ndarray, hint: list[tuple[int, int]]):
        if time.perf_counter() >= deadline:
            return not_solved("time limit reached before the solve", backend=method)
        if method == "milp":
            return _milp(n, edges, cost, deadline)
        return _cpsat(n, edges, cost, deadline, set(hint), duals)

    # 1. exact optimum over the LP's own edges: a strong upper bound
    # on the LP's tight edges (reduced cost ~0) plus the greedy matching,
    # which keeps a perfect matching available
    tight = kept_edges(reduced, lower, lower)
    support = np.array(sorted({tuple(e) for e in tight.tolist()} | set(greedy)), dtype=np.int64)
    first = run(support, greedy)
    incumbent = greedy
    if first.has_solution:
        found = [tuple(int(v) for v in support[e]) for e in first.values]
        if _cost(cost, found) <= _cost(cost, incumbent):
            incumbent = found
    upper = _cost(cost, incumbent)
    # 2. only edges with room under that bound can be in an optimal matching
    edges = kept_edges(reduced, upper, lower)
    inside = {tuple(e) for e in support.tolist()}
    if all(tuple(e) in inside for e in edges.tolist()) and first.proved:
        outcome, chosen = first, incumbent  # the restricted optimum is the optimum
    else:
        outcome = run(edges, incumbent)
        chosen = [tuple(int(v) for v in edges[e]) for e in outcome.values] if outcome.has_solution else None
        if chosen is None or _cost(cost, chosen) > upper:
            chosen = incumbent
    status = "optimal" if outcome.proved else "feasible"
    pairs, unpaired = [], []
    for i, j in chosen:
        if dummy is not None and dummy in (i, j):
            unpaired.append(i if j == dummy else j)
        else:
            pairs.append((i, j))
    objective = _cost(cost, chosen)
    bound = integral_bound(outcome.bound) if outcome.bound is not None else None
    bound = max(bound if bound is not None else -np.inf, np.ceil(lower - 1e-6))
    if status == "optimal":
        bound = float(objective)
    return PairingResult(
        status=status, method=method, pairing=Pairing(pairs, unpaired), objective=objective,
        best_bound=float(bound), lp_bound=lower, edges_total=total, edges_kept=len(edges),
        wall_time_s=time.perf_counter() - start,
        message=f"{len(edges):,} of {total:,} edges kept after LP reduced-cost fixing ({rounds} LP round{'s' if rounds != 1 else ''})"
                + ("" if status == "optimal" else f"; time limit of {time_limit:g} s reached, optimality not proved"),
        details={"solver_status": outcome.message, "greedy_cost": _cost(cost, greedy), "lp_bound": lower},
    )
