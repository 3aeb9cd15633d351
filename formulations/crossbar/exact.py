"""Exact crossbar allocation: MILP (pyomo + HiGHS), CP-SAT, and bisection.

Only copy counts that change a stage's time matter: for each distinct value
v of ceil(n / r) the fewest copies reaching it, r = ceil(n / v).  Every layer
picks one (style, copies) option with a Boolean; crossbars, tiles, stage time
and buffer traffic of an option are constants, so both models are linear in
those Booleans (docs/crossbar.md).  Bisection over candidate periods is exact
for the pure min-max case (crossbar budget only, no tiles, no bandwidth) and
serves as a third opinion there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pyomo.environ as pyo
from ortools.sat.python import cp_model

from ...solvers.cpsat import solve_cpsat
from ...solvers.highs import not_solved, solve_highs
from ...solvers.outcome import integral_bound
from .cost import Allocation, CrossbarLayer, CrossbarProblem, evaluate

METHODS = ("milp", "cpsat", "bisection")


def copy_candidates(layer: CrossbarLayer) -> np.ndarray:
    """Fewest copies for each distinct stage length ceil(n / r), ascending.

    Walks the distinct lengths v = ceil(n / r) from the longest: the fewest
    copies reaching length v - 1 are ceil(n / (v - 1)).  At most 2 sqrt(n)
    values, without an array of all n copy counts."""
    n = layer.outputs
    out = [1]
    while True:
        length = -(-n // out[-1])
        if length == 1:
            return np.array(out, dtype=np.int64)
        out.append(-(-n // (length - 1)))


def bisection_refusal(problem: CrossbarProblem) -> str | None:
    """Why bisection over candidate periods is not exact for ``problem``
    (None when it is).  The one statement of the rule: bisection needs the
    bottleneck objective with the crossbar budget as the only resource."""
    if problem.objective != "bottleneck":
        return f"bisection minimizes the pipeline period; this instance minimizes {problem.objective}"
    if problem.one_layer_per_tile:
        return "bisection is exact only with the crossbar budget as the only resource; one_layer_per_tile adds tiles"
    if problem.bandwidth:
        return "bisection is exact only with the crossbar budget as the only resource; bandwidth couples the layers"
    return None


@dataclass(frozen=True)
class Option:
    layer: int
    style: str
    copies: int
    crossbars: int
    tiles: int
    cycles: int
    input_bits: int
    energy_fj: int  # integer femtojoules, so that CP-SAT sees an integer objective


def options(problem: CrossbarProblem) -> list[list[Option]]:
    """Every (style, copies) a layer may take within the budget."""
    out = []
    for li, layer in enumerate(problem.layers):
        opts = []
        for style in problem.styles:
            per_copy = problem.crossbars_per_copy(layer, style)
            for r in copy_candidates(layer).tolist():
                xb = r * per_copy
                if xb > problem.crossbar_budget:
                    break
                tiles = problem.tiles_for(xb)
                if problem.one_layer_per_tile and tiles > problem.chip.tiles:
                    break
                opts.append(Option(li, style, r, xb, tiles, problem.stage_time(layer, style, r),
                                   problem.input_bits(layer, style), round(problem.energy_pj(layer, style) * 1000)))
        out.append(opts)
    return out


@dataclass
class CrossbarResult:
    status: str
    method: str
    allocation: Allocation | None
    objective: int | None
    best_bound: float | None
    wall_time_s: float
    message: str = ""
    details: dict = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.best_bound is None or self.objective == 0:
            return None
        return max(0.0, (self.objective - self.best_bound) / self.objective)


def _allocation(problem: CrossbarProblem, chosen: list[Option]) -> Allocation:
    chosen = sorted(chosen, key=lambda o: o.layer)
    return Allocation([o.style for o in chosen], [o.copies for o in chosen])


def _milp(problem: CrossbarProblem, opts: list[list[Option]], deadline: float):
    """Build, then solve with what remains before ``deadline`` (perf_counter seconds)."""
    m = pyo.ConcreteModel(name="crossbar")
    index = [(l, k) for l, layer_opts in enumerate(opts) for k in range(len(layer_opts))]
    m.z = pyo.Var(index, domain=pyo.Binary)
    m.one = pyo.ConstraintList()
    for l, layer_opts in enumerate(opts):
        m.one.add(sum(m.z[l, k] for k in range(len(layer_opts))) == 1)
    total = lambda attr: sum(getattr(o, attr) * m.z[l, k] for l, k in index for o in [opts[l][k]])  # noqa: E731
    m.budget = pyo.Constraint(expr=total("crossbars") <= problem.crossbar_budget)
    if problem.one_layer_per_tile:
        m.tiles = pyo.Constraint(expr=total("tiles") <= problem.chip.tiles)
    if problem.objective == "bottleneck":
        m.T = pyo.Var(within=pyo.NonNegativeIntegers)  # periods are whole cycles
        m.stage = pyo.ConstraintList()
        for l, layer_opts in enumerate(opts):
            m.stage.add(m.T >= sum(o.cycles * m.z[l, k] for k, o in enumerate(layer_opts)))
        if problem.bandwidth:
            m.bandwidth = pyo.Constraint(expr=problem.chip.bandwidth_bits_per_cycle * m.T >= total("input_bits"))
        m.objective = pyo.Objective(expr=m.T)
    elif problem.objective == "energy":
        m.objective = pyo.Objective(expr=total("energy_fj"))
    else:
        m.objective = pyo.Objective(expr=total("cycles"))

    def read(model):
        return [opts[l][k] for l, k in index if (pyo.value(model.z[l, k]) or 0) > 0.5]

    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        return not_solved("time limit reached while building the model")
    return solve_highs(m, read, remaining)


def _cpsat(problem: CrossbarProblem, opts: list[list[Option]], deadline: float, workers: int):
    """Build, then solve with what remains before ``deadline`` (perf_counter seconds)."""
    model = cp_model.CpModel()
    z = [[model.NewBoolVar(f"z{l}_{k}") for k in range(len(o))] for l, o in enumerate(opts)]
    for row in z:
        model.AddExactlyOne(row)
    flat = [(o, z[l][k]) for l, layer_opts in enumerate(opts) for k, o in enumerate(layer_opts)]
    model.Add(sum(o.crossbars * b for o, b in flat) <= problem.crossbar_budget)
    if problem.one_layer_per_tile:
        model.Add(sum(o.tiles * b for o, b in flat) <= problem.chip.tiles)
    if problem.objective == "bottleneck":
        top = max(o.cycles for o, _ in flat)
        if problem.bandwidth:
            top = max(top, -(-sum(max(o.input_bits for o in layer_opts) for layer_opts in opts)
                              // problem.chip.bandwidth_bits_per_cycle))
        period = model.NewIntVar(0, top, "T")
        for l, layer_opts in enumerate(opts):
            model.Add(period >= sum(o.cycles * z[l][k] for k, o in enumerate(layer_opts)))
        if problem.bandwidth:
            model.Add(problem.chip.bandwidth_bits_per_cycle * period >= sum(o.input_bits * b for o, b in flat))
        model.Minimize(period)
    elif problem.objective == "energy":
        model.Minimize(sum(o.energy_fj * b for o, b in flat))
    else:
        model.Minimize(sum(o.cycles * b for o, b in flat))

    def read(solver):
        return [o for o, b in flat if solver.BooleanValue(b)]

    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        return not_solved("time limit reached while building the model", backend="cpsat")
    return solve_cpsat(model, read, remaining, workers)


def bisection(problem: CrossbarProblem) -> tuple[Allocation | None, int | None]:
    """Exact least period for the pure case: per candidate period T, each
    layer takes its cheapest option reaching T; the least feasible T wins."""
    opts = options(problem)
    periods = sorted({o.cycles for layer_opts in opts for o in layer_opts})

    def cheapest(target: int) -> list[Option] | None:
        picks = []
        for layer_opts in opts:
            fit = [o for o in layer_opts if o.cycles <= target]
            if not fit:
                return None
            picks.append(min(fit, key=lambda o: (o.crossbars, o.cycles)))
        return picks if sum(o.crossbars for o in picks) <= problem.crossbar_budget else None

    lo, hi, best = 0, len(periods) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        picks = cheapest(periods[mid])
        if picks is None:
            lo = mid + 1
        else:
            best, hi = picks, mid - 1
    if best is None:
        return None, None
    return _allocation(problem, best), max(o.cycles for o in best)


def _too_large(problem: CrossbarProblem, layers) -> str:
    """Every layer whose one copy does not fit, with what it needs, against the budget (and tiles)."""
    needs = []
    for layer in layers:
        crossbars = min(problem.crossbars_per_copy(layer, style) for style in problem.styles)
        needs.append(f"{layer.name} ({crossbars:,} crossbars"
                     + (f", {problem.tiles_for(crossbars):,} tiles" if problem.one_layer_per_tile else "") + ")")
    limit = f"the crossbar budget of {problem.crossbar_budget:,}"
    if problem.one_layer_per_tile:
        limit += f" or the {problem.chip.tiles:,} tiles one layer may take"
    return (f"{len(layers)} layer{'s' if len(layers) > 1 else ''} cannot fit even one copy: {', '.join(needs)}; "
            f"{limit}")


def solve_crossbar(problem: CrossbarProblem, method: str = "milp", time_limit: float = 60.0,
                   workers: int = 0) -> CrossbarResult:
    """Solve ``problem`` exactly with ``method`` (milp, cpsat or bisection).

    Returns
    -------
    CrossbarResult
        ``optimal`` with the allocation, ``feasible`` with a gap after a time
        out, ``infeasible`` with the reason, or ``error`` (a method that does
        not apply, or an answer the cost model contradicts).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    start = time.perf_counter()
    opts = options(problem)
    empty = [problem.layers[l] for l, o in enumerate(opts) if not o]
    if empty:
        return CrossbarResult("infeasible", method, None, None, None, time.perf_counter() - start,
                              _too_large(problem, empty))
    least = sum(min(o.crossbars for o in layer_opts) for layer_opts in opts)
    if least > problem.crossbar_budget:
        return CrossbarResult("infeasible", method, None, None, None, time.perf_counter() - start,
                              f"one copy of every layer needs {least:,} crossbars; the budget is "
                              f"{problem.crossbar_budget:,}")
    if problem.one_layer_per_tile:
        tiles = sum(min(problem.tiles_for(o.crossbars) for o in layer_opts) for layer_opts in opts)
        if tiles > problem.chip.tiles:
            return CrossbarResult("infeasible", method, None, None, None, time.perf_counter() - start,
                                  f"with one layer per tile, one copy of every layer needs {tiles:,} tiles; the chip "
                                  f"has {problem.chip.tiles:,} (raise hardware.tiles, or drop one_layer_per_tile)")
    if method == "bisection":
        refusal = bisection_refusal(problem)
        if refusal is not None:
            return CrossbarResult("error", method, None, None, None, time.perf_counter() - start, refusal)
        allocation, value = bisection(problem)
        if allocation is None:
            return CrossbarResult("infeasible", method, None, None, None, time.perf_counter() - start,
                                  "one copy of every layer already exceeds the crossbar budget")
        return _finish(problem, method, allocation, value, True, float(value), start, "")
    # the time limit counts from the call: the options and the model build are inside it
    if method == "milp":
        outcome = _milp(problem, opts, start + time_limit)
    else:
        outcome = _cpsat(problem, opts, start + time_limit, workers)
    if outcome.infeasible:
        return CrossbarResult("infeasible", method, None, None, None, time.perf_counter() - start,
                              "no allocation fits the crossbar and tile budgets")
    bound = integral_bound(outcome.bound)
    if problem.objective == "energy" and bound is not None:  # the models count femtojoules
        bound = bound / 1000
    if not outcome.has_solution:
        return CrossbarResult("error", method, None, None, bound, time.perf_counter() - start,
                              f"time limit of {time_limit:g} s reached before any allocation was found "
                              f"({outcome.message})")
    if problem.objective == "energy":
        claimed = round(outcome.objective) / 1000
    else:
        claimed = int(round(outcome.objective))
    return _finish(problem, method, _allocation(problem, outcome.values), claimed, outcome.proved,
                   bound, start, outcome.message)


def style_optima(problem: CrossbarProblem, method: str, time_limit: float) -> dict[str, float | None]:
    """The optimum of ``problem`` with each allowed style alone (None: none
    proved), to show what choosing the layout per layer gains.  The styles
    share ``time_limit``: each gets what the ones before it left."""
    out = {}
    deadline = time.perf_counter() + time_limit
    for style in problem.styles:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            out[style] = None
            continue
        single = replace(problem, styles=(style,))
        chosen = method if method != "bisection" or bisection_refusal(single) is None else "milp"
        result = solve_crossbar(single, chosen, remaining, problem.solver.workers)
        out[style] = result.objective if result.status == "optimal" else None
    return out


def _finish(problem, method, allocation, claimed, proved, bound, start, solver_status) -> CrossbarResult:
    metrics = evaluate(problem, allocation)
    value = metrics.objective(problem.objective)
    status = "optimal" if proved else "feasible"
    message = ""
    if not metrics.feasible:
        status, message = "error", "decoded allocation violates: " + "; ".join(metrics.violations)
    elif abs(value - claimed) > (5e-4 * len(problem.layers) if problem.objective == "energy" else 0):
        status, message = "error", f"solver objective {claimed} disagrees with evaluate {value}"
    if status == "optimal":
        bound = float(value)
    return CrossbarResult(status, method, allocation, value, bound, time.perf_counter() - start, message,
                          {"solver_status": solver_status, "metrics": metrics.to_dict()})
