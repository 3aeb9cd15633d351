"""Solve a tiling problem with one exact method and report what it proved.

The exact models work per stationary class (docs/tiling-space-reductions.md);
the optimum is the best class, the bound the least class bound.  The answer
here is still the solver's word: ``validation.certify`` re-checks it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ...solvers.cpsat import solve_cpsat
from ...solvers.highs import not_solved, solve_highs
from ...solvers.outcome import integral_bound, relative_gap
from .cost import Metrics, evaluate, footprint_bits
from .cpsat_model import add_hint, build_cpsat, canonical_choice
from .cpsat_model import read_choice as read_cpsat
from .enumeration import SpaceTooLarge, enumerate_space
from .milp_model import build_milp
from .milp_model import read_choice as read_milp
from .problem import LOOP_DIMS, TENSORS, Mapping, TilingProblem
from .space import CANONICAL_ORDER, dim_tables, order_classes
from .terms import class_terms

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
    """Best mapping by ``method`` within ``time_limit`` seconds from this
    call, everything included (tables, model builds, solves)."""
    method = method or problem.solver.method
    time_limit = problem.solver.time_limit if time_limit is None else time_limit
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    start = time.perf_counter()
    deadline = start + time_limit
    reason = infeasibility_reason(problem)
    if reason:
        return TilingResult(status="infeasible", method=method, proved=True, message=reason,
                            wall_time_s=time.perf_counter() - start)
    if method == "enumerate":
        result = _solve_enumerate(problem, deadline, time_limit)
    else:
        result = _solve_by_class(problem, method, time_limit, deadline)
    if result.status == "optimal" and result.mapping is not None:
        result = _canonical(problem, result, deadline)
    result.wall_time_s = time.perf_counter() - start
    return result


def _canonical(problem: TilingProblem, result: TilingResult, deadline: float) -> TilingResult:
    """The proved optimum replaced by the canonical optimal mapping: that of
    the first order class (in ``order_classes``' order) that reaches the
    optimum, with the least tiles in the order N, G, M, C, P, Q, R, S
    (``cpsat_model.canonical_choice``). Every method and every run then
    returns the same mapping. Left as it is when time runs out first."""
    unit = class_terms(problem.layer).unit
    bits = result.metrics.total_bits
    if bits % unit:
        return result
    tables = dim_tables(problem.layer, problem.space, reduced=True)
    for cls in order_classes(problem.halo):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return result
        handle = build_cpsat(problem, tables, cls)
        state, choice = canonical_choice(handle, bits // unit, remaining, problem.solver.workers)
        if state == "infeasible":
            continue  # this class does not reach the optimum
        if state != "found":
            return result
        mapping = Mapping(tiles={d: int(tables[d].tiles[k]) for d, k in choice.items()}, order=CANONICAL_ORDER[cls])
        canonical = _finish(problem, result.method, mapping, bits, proved=True)
        if canonical.status != "optimal":  # the same objective, or a bug to show rather than hide
            return canonical
        canonical.best_bound, canonical.classes, canonical.message = result.best_bound, result.classes, result.message
        return canonical
    return result


def _solve_enumerate(problem: TilingProblem, deadline: float, time_limit: float) -> TilingResult:
    try:
        outcome = enumerate_space(problem, deadline=deadline)
    except SpaceTooLarge as exc:
        return TilingResult(status="error", method="enumerate",
                            message=f"enumeration refused: {exc}; use --method cpsat or milp")
    space = "undominated tiles" if outcome.reduced else "every tile"
    if not outcome.complete:
        # no bound: the points not visited may hold anything
        seen = (f"visited {outcome.visited:,} of {outcome.points:,} points "
                f"({space} x {len(order_classes(problem.halo))} order classes)")
        if outcome.mapping is None:
            return TilingResult(status="error", method="enumerate",
                                message=f"time limit of {time_limit:g} s reached before any mapping that fits; {seen}")
        result = _finish(problem, "enumerate", outcome.mapping, outcome.objective_bits, proved=False)
        result.message = result.message or f"time limit of {time_limit:g} s reached: {seen}; optimality not proved"
        return result
    result = _finish(problem, "enumerate", outcome.mapping, outcome.objective_bits, proved=True)
    result.best_bound = result.objective
    result.message = f"visited {outcome.points:,} points ({space} x {len(order_classes(problem.halo))} order classes)"
    result.classes = {k: {"objective": None if v is None else v / 8} for k, v in outcome.per_class_bits.items()}
    return result


CLASS_RESERVE = 0.1
"""Share of the time limit kept back for each stationary class not yet
solved, so that a class that runs out of time still leaves the others time
for a bound of their own."""


def _solve_by_class(problem: TilingProblem, method: str, time_limit: float, deadline: float) -> TilingResult:
    """One model per stationary class; each is built and solved only while
    time remains, and gets what remains minus a reserve for the classes
    after it (time a class leaves unused passes on to the next)."""
    tables = dim_tables(problem.layer, problem.space, reduced=True)
    best_units, best_mapping, unit = None, None, class_terms(problem.layer).unit
    bounds: list[float | None] = []
    proved_all = True
    classes: dict[str, dict] = {}
    build_s = 0.0  # the last class's build: the next one takes about as long
    order_set = order_classes(problem.halo)
    for index, cls in enumerate(order_set):
        later = len(order_set) - index - 1
        remaining = deadline - time.perf_counter()
        if remaining <= (build_s if method == "cpsat" else (1 + HAND_OVER) * build_s):
            classes[cls] = {"objective": None, "bound": None, "proved": False,
                            "solver_status": "not started: time limit reached", "wall_time_s": 0.0}
            proved_all = False
            bounds.append(None)  # nothing known about this class
            continue
        built = time.perf_counter()
        if method == "cpsat":
            handle = build_cpsat(problem, tables, cls)
            if best_mapping is not None:
                add_hint(handle, best_mapping.tiles)
        else:
            handle = build_milp(problem, tables, cls)
        now = time.perf_counter()
        build_s = now - built
        remaining = deadline - now
        reserve = min(remaining / (later + 1), CLASS_RESERVE * time_limit) * later if later else 0.0
        budget = remaining - reserve if math.isfinite(remaining) else remaining
        if method == "cpsat":
            outcome = (solve_cpsat(handle.model, read_cpsat(handle), budget, problem.solver.workers)
                       if budget > 0 else not_solved("time limit reached while building", backend="cpsat"))
        else:
            # pyomo's translation to HiGHS takes about as long as the build: without
            # that much time left the solve could only overrun the limit
            outcome = (solve_highs(handle.model, read_milp(handle), budget) if budget > HAND_OVER * build_s
                       else not_solved("no time left to hand the model to HiGHS"))
        unit = handle.unit
        bound = integral_bound(outcome.bound)
        if outcome.proved and outcome.objective is not None:
            bound = max(bound if bound is not None else 0.0, round(outcome.objective))
        entry = {
            "objective": None if outcome.objective is None else round(outcome.objective) * unit / 8,
            "bound": None if bound is None else bound * unit / 8,
            "proved": outcome.proved,
            "solver_status": outcome.message,
            "wall_time_s": round(time.perf_counter() - built, 4),
        }
        classes[cls] = entry
        if outcome.infeasible:
            continue  # nothing of this class fits; contributes no bound
        proved_all = proved_all and outcome.proved
        bounds.append(bound)
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
    result.best_bound = _least(bounds, unit)
    result.classes = classes
    if not proved_all:
        result.message = result.message or "time limit reached: best mapping found, optimality not proved"
    return result


HAND_OVER = 1.0
"""A MILP goes to HiGHS only with at least this many times its build time
left (the translation alone takes about that long)."""


def _least(bounds: list[float | None], unit: int) -> float | None:
    """Bytes: the least class bound, None when some class has none (the
    optimum may lie in that class, below every bound known)."""
    if not bounds or any(b is None for b in bounds):
        return None
    return min(bounds) * unit / 8


def _fallback(problem: TilingProblem, method: str, bounds: list[float], unit: int, classes: dict) -> TilingResult:
    """The solver ran out of time without a mapping: return the paper
    dataflow's mapping (or the all-ones mapping) as a feasible answer with
    the solver's bound, never as optimal."""
    from ...solvers.tiling_heuristics import fallback_mapping

    mapping = fallback_mapping(problem)
    metrics = evaluate(problem, mapping)
    bound = _least(bounds, unit)
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
