"""Solve a tiling problem with one exact method and report what it proved.

The exact models work per stationary class (docs/tiling-space-reductions.md);
the optimum is the best class, the bound the least class bound.  The answer
here is still the solver's word: ``validation.certify`` re-checks it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...solvers.cpsat import solve_cpsat
from ...solvers.highs import solve_highs
from ...solvers.outcome import integral_bound, relative_gap
from .cost import Metrics, evaluate, footprint_bits
from .cpsat_model import add_hint, build_cpsat
from .cpsat_model import read_choice as read_cpsat
from .enumeration import SpaceTooLarge, enumerate_space
from .milp_model import build_milp
from .milp_model import read_choice as read_milp
from .problem import LOOP_DIMS, TENSORS, Mapping, TilingProblem
from .space import CANONICAL_ORDER, STATIONARY_CLASSES, dim_tables

METHODS = ("cpsat", "milp", "enumerate")


@dataclass
class TilingResult:
    """A mapping, what it costs according to ``evaluate``, and what the
    method proved about it.  Objective and bound are off-chip bytes."""

    status: str
    method: str
    mapping: Mapping | None = None
    metrics: Metrics | None = None
    objective: float | None = None
    best_bound: float | None = None
    solver_objective: float | None = None
    proved: bool = False
    wall_time_s: float = 0.0
    message: str = ""
    classes: dict[str, dict] = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.best_bound)


def minimal_footprint_bits(problem: TilingProblem) -> dict[str, int]:
    """Footprint of the smallest mapping (every tile 1): if this does not fit,
    nothing in the space does."""
    ones = {d: 1 for d in LOOP_DIMS}
    return {k: int(v) for k, v in footprint_bits(problem.layer, ones).items()}


def infeasibility_reason(problem: TilingProblem) -> str | None:
    """A sentence a person can act on, or None when some mapping fits."""
    smallest = minimal_footprint_bits(problem)
    buffer = problem.buffer
    if buffer.partition_bits is None:
        need = sum(smallest.values())
        if need > buffer.capacity_bits:
            return (
                f"the smallest footprint ({need / 8:g} B: one output, one input window of "
                f"{problem.layer.R}x{problem.layer.S}, one filter window) does not fit in "
                f"{buffer.name} ({buffer.capacity_bits / 8:g} B)"
            )
        return None
    for tensor in TENSORS:
        if smallest[tensor] > buffer.partition_bits[tensor]:
            return (
                f"the smallest {tensor} tile ({smallest[tensor] / 8:g} B) does not fit in its "
                f"{buffer.name} partition ({buffer.partition_bits[tensor] / 8:g} B)"
            )
    return None


def solve_tiling(problem: TilingProblem, method: str | None = None, time_limit: float | None = None) -> TilingResult:
    method = method or problem.solver.method
    time_limit = problem.solver.time_limit if time_limit is None else time_limit
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    start = time.perf_counter()
    reason = infeasibility_reason(problem)
    if reason:
        return TilingResult(status="infeasible", method=method, proved=True, message=reason,
                            wall_time_s=time.perf_counter() - start)
    if method == "enumerate":
        result = _solve_enumerate(problem)
    else:
        result = _solve_by_class(problem, method, time_limit)
    result.wall_time_s = time.perf_counter() - start
    return result


def _solve_enumerate(problem: TilingProblem) -> TilingResult:
    try:
        outcome = enumerate_space(problem)
    except SpaceTooLarge as exc:
        return TilingResult(status="error", method="enumerate",
                            message=f"enumeration refused: {exc}; use --method cpsat or milp")
    result = _finish(problem, "enumerate", outcome.mapping, outcome.objective_bits, proved=True)
    result.best_bound = result.objective
    space = "undominated tiles" if outcome.reduced else "every tile"
    result.message = f"visited {outcome.points:,} points ({space} x 3 order classes)"
    result.classes = {k: {"objective": None if v is None else v / 8} for k, v in outcome.per_class_bits.items()}
    return result


def _solve_by_class(problem: TilingProblem, method: str, time_limit: float) -> TilingResult:
    tables = dim_tables(problem.layer, problem.space, reduced=True)
    deadline = time.perf_counter() + time_limit
    best_units, best_mapping, unit = None, None, 1
    bounds: list[float] = []
    proved_all = True
    classes: dict[str, dict] = {}
    for cls in STATIONARY_CLASSES:
        remaining = max(0.05, deadline - time.perf_counter())
        if method == "cpsat":
            handle = build_cpsat(problem, tables, cls)
            if best_mapping is not None:
                add_hint(handle, best_mapping.tiles)
            outcome = solve_cpsat(handle.model, read_cpsat(handle), remaining, problem.solver.workers)
        else:
            handle = build_milp(problem, tables, cls)
            outcome = solve_highs(handle.model, read_milp(handle), remaining)
        unit = handle.unit
        bound = integral_bound(outcome.bound)
        if outcome.proved and outcome.objective is not None:
            bound = max(bound if bound is not None else 0.0, round(outcome.objective))
        entry = {
            "objective": None if outcome.objective is None else round(outcome.objective) * unit / 8,
            "bound": None if bound is None else bound * unit / 8,
            "proved": outcome.proved,
            "solver_status": outcome.message,
            "wall_time_s": round(outcome.wall_time_s, 4),
        }
        classes[cls] = entry
        if outcome.infeasible:
            continue  # nothing of this class fits; contributes no bound
        proved_all = proved_all and outcome.proved
        bounds.append(bound if bound is not None else 0.0)
        if outcome.has_solution:
            value = round(outcome.objective)
            if best_units is None or value < best_units:
                tiles = {d: int(tables[d].tiles[k]) for d, k in outcome.values.items()}
                best_units, best_mapping = value, Mapping(tiles=tiles, order=CANONICAL_ORDER[cls])
    if best_mapping is None:
        if proved_all:
            return TilingResult(status="infeasible", method=method, proved=True, classes=classes,
                                message="no mapping of the declared space fits the buffer")
        return _fallback(problem, method, bounds, unit, classes)
    result = _finish(problem, method, best_mapping, best_units * unit, proved=proved_all)
    result.best_bound = min(bounds) * unit / 8 if bounds else None
    result.classes = classes
    if not proved_all:
        result.message = "time limit reached: best mapping found, optimality not proved"
    return result


def _fallback(problem: TilingProblem, method: str, bounds: list[float], unit: int, classes: dict) -> TilingResult:
    """The solver ran out of time without a mapping: return the paper
    dataflow's mapping (or the all-ones mapping) as a feasible answer with
    the solver's bound, never as optimal."""
    from ...solvers.tiling_heuristics import fallback_mapping

    mapping = fallback_mapping(problem)
    metrics = evaluate(problem, mapping)
    bound = min(bounds) * unit / 8 if bounds else None
    return TilingResult(
        status="feasible", method=method, mapping=mapping, metrics=metrics, objective=metrics.objective,
        best_bound=bound, proved=False, classes=classes,
        message="time limit reached before the solver found a mapping; the paper-dataflow heuristic's "
                "mapping is shown, optimality not proved",
    )


def _finish(problem: TilingProblem, method: str, mapping: Mapping, solver_bits: int, proved: bool) -> TilingResult:
    metrics = evaluate(problem, mapping)
    objective = metrics.objective
    status = "optimal" if proved else "feasible"
    message = ""
    # evaluate may undercut a class formula only when a loop has one trip and
    # the search was not finished; above it, or below a proved optimum, is a bug
    if metrics.total_bits > solver_bits or (proved and metrics.total_bits != solver_bits):
        status = "error"
        message = (f"solver objective {solver_bits / 8:g} B disagrees with evaluate "
                   f"{objective:g} B; not certified")
    if not metrics.fits:
        status = "error"
        message = "decoded mapping does not fit the buffer; not certified"
    return TilingResult(status=status, method=method, mapping=mapping, metrics=metrics, objective=objective,
                        solver_objective=solver_bits / 8, proved=proved, message=message)
