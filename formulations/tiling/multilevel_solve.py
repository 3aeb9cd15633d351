"""Solve a multi-level tiling problem with one exact method and check it.

Whatever the method reports, the objective returned is ``evaluate``'s; the
status is ``optimal`` only when the method proved it and ``evaluate``
agrees with the method's own value.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ...solvers.cpsat import solve_cpsat
from ...solvers.outcome import relative_gap
from .multilevel import MultiLevelMapping, MultiLevelProblem, mapping_problems
from .multilevel_cost import MultiLevelMetrics, evaluate_multilevel
from .multilevel_cpsat import build_multilevel_cpsat, decode
from .multilevel_enum import enumerate_multilevel
from .multilevel_milp import solve_multilevel_milp

MULTILEVEL_METHODS = ("cpsat", "milp", "enumerate")


@dataclass
class MultiLevelResult:
    status: str  # optimal | feasible | infeasible | error
    method: str
    mapping: MultiLevelMapping | None
    metrics: MultiLevelMetrics | None
    objective: float | None
    best_bound: float | None
    wall_time_s: float
    message: str = ""

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.best_bound)


def solve_multilevel(problem: MultiLevelProblem, method: str = "cpsat", time_limit: float | None = None,
                     workers: int = 0) -> MultiLevelResult:
    limit = problem.solver.time_limit if time_limit is None else time_limit
    start = time.perf_counter()
    if method == "enumerate":
        try:
            found = enumerate_multilevel(problem)
        except ValueError as exc:
            return MultiLevelResult("error", method, None, None, None, None, time.perf_counter() - start, str(exc))
        if found.mapping is None:
            return MultiLevelResult("infeasible", method, None, None, None, None, found.wall_time_s,
                                    "no mapping fits the hierarchy")
        metrics = evaluate_multilevel(problem, found.mapping)
        value = metrics.objective(problem.objective)
        status = "optimal" if metrics.fits and math.isclose(value, found.objective, rel_tol=1e-9) else "error"
        return MultiLevelResult(status, method, found.mapping, metrics, value, value if status == "optimal" else None,
                                found.wall_time_s, f"{found.points:,} factor combinations x group orders")
    if method == "cpsat" and problem.objective == "edp":
        return _edp_by_cpsat(problem, limit, workers, start)
    if method == "cpsat":
        builder, rows, x, o, scale, constant = build_multilevel_cpsat(problem)
        outcome = solve_cpsat(builder.m, lambda s: decode(problem, rows, x, o, s), limit, workers)
    elif method == "milp":
        try:
            outcome, scale, constant = solve_multilevel_milp(problem, limit)
        except ValueError as exc:
            return MultiLevelResult("error", method, None, None, None, None, time.perf_counter() - start, str(exc))
    else:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(MULTILEVEL_METHODS)}")
    wall = time.perf_counter() - start
    if outcome.infeasible:
        return MultiLevelResult("infeasible", method, None, None, None, None, wall, "no mapping fits the hierarchy")
    if not outcome.has_solution:
        return MultiLevelResult("error", method, None, None, None, None, wall,
                                f"{method} found no mapping within {limit:g} s ({outcome.message})")
    invalid = mapping_problems(problem.layer, problem.hierarchy, outcome.values)
    if invalid:
        return MultiLevelResult("error", method, None, None, None, None, wall,
                                f"{method} returned a mapping that is not one ({'; '.join(invalid)}): "
                                "numerical trouble in the solver; try cpsat")
    metrics = evaluate_multilevel(problem, outcome.values)
    value = metrics.objective(problem.objective)
    claimed = (outcome.objective + constant) / scale
    bound = None if outcome.bound is None else (math.ceil(outcome.bound - 1e-6) + constant) / scale
    # the MILP's value carries HiGHS' feasibility tolerance; both objectives are integers in model units
    agrees = metrics.fits and abs(value * scale - (claimed * scale)) < 0.5
    if outcome.proved and agrees:
        status = "optimal"
    elif metrics.fits:
        status = "feasible"
    else:
        status = "error"
    message = outcome.message if agrees else f"{method} claimed {claimed}, evaluate says {value}"
    return MultiLevelResult(status, method, outcome.values, metrics, value, bound, wall, message)


def achievable_pe_counts(problem: MultiLevelProblem) -> list[int]:
    """Every number of busy PEs some mapping can have (products of spatial factors)."""
    from .multilevel import DIMS
    from .multilevel_space import dim_choices

    K = len(problem.hierarchy.levels)
    counts = {1}
    for d in DIMS:
        factors = {int(r[K] * r[K + 1]) for r in dim_choices(problem, d)}
        counts = {c * f for c in counts for f in factors if c * f <= problem.hierarchy.pes}
    return sorted(counts, reverse=True)


def _edp_by_cpsat(problem: MultiLevelProblem, limit: float, workers: int, start: float) -> MultiLevelResult:
    """Energy-delay product by a parametric search over the compute latency.

    Without bandwidth limits the latency is MACs / U cycles for U busy PEs,
    so EDP = (MACs / U) * E(U), where E(U) is the least energy with exactly U
    busy PEs. The unconstrained least energy E* bounds every E(U) from below.
    Trying U from the largest down, the search stops once (MACs / U) * E*
    reaches the best EDP found. The result is optimal when every E(U) it
    needed was proved."""
    from dataclasses import replace

    hier = problem.hierarchy
    if any(level.bandwidth for level in hier.levels):
        return MultiLevelResult("error", "cpsat", None, None, None, None, time.perf_counter() - start,
                                "the exact EDP search assumes no bandwidth limits; use enumerate or drop them")
    energy_problem = replace(problem, objective="energy")
    macs = problem.layer.macs
    deadline = start + limit
    overall = solve_multilevel(energy_problem, "cpsat", max(0.01, deadline - time.perf_counter()), workers)
    if overall.mapping is None:
        return replace(overall, method="cpsat", objective=None, best_bound=None)
    floor = overall.best_bound if overall.best_bound is not None else 0.0
    best, proved_all, tried = None, overall.status == "optimal", 0
    for pes in achievable_pe_counts(problem):
        cycles = -(-macs // pes)
        if best is not None and cycles * floor >= best.objective:
            break
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            proved_all = False
            break
        builder, rows, x, o, scale, constant = build_multilevel_cpsat(energy_problem, pes_exactly=pes)
        outcome = solve_cpsat(builder.m, lambda s: decode(problem, rows, x, o, s), remaining, workers)
        tried += 1
        if outcome.infeasible:
            continue
        proved_all &= outcome.proved
        if outcome.values is None:
            continue
        metrics = evaluate_multilevel(problem, outcome.values)
        if metrics.fits and (best is None or metrics.edp < best.objective):
            best = MultiLevelResult("feasible", "cpsat", outcome.values, metrics, metrics.edp, None, 0.0)
    wall = time.perf_counter() - start
    if best is None:
        return MultiLevelResult("error", "cpsat", None, None, None, None, wall, "no mapping found within the limit")
    status = "optimal" if proved_all else "feasible"
    bound = best.objective if proved_all else floor * (-(-macs // hier.pes))
    return MultiLevelResult(status, "cpsat", best.mapping, best.metrics, best.objective, bound, wall,
                            f"parametric search over busy PEs: {tried} energy solves")
