"""Solve a multi-level tiling problem with one exact method and check it.

Whatever the method reports, the objective returned is ``evaluate``'s; the
status is ``optimal`` only when the method proved it and ``evaluate``
agrees with the method's own value. Secondary objectives are then
minimized one after the other by CP-SAT, each among the optima of the ones
before it (docs/tiling-multilevel.md, "The canonical optimum").
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from ....solvers.cpsat import default_workers, solve_cpsat
from ....solvers.outcome import relative_gap
from ...family import Secondary
from .problem import MultiLevelMapping, MultiLevelProblem, Restriction, mapping_problems
from .cost import MultiLevelMetrics, evaluate_multilevel
from .canonical import canonical_optimum, proves_canonically
from .cpsat import CPSAT_OBJECTIVES, CPSAT_PARAMETERS, add_hint, build_multilevel_cpsat, decode
from .enumeration import enumerate_multilevel
from .milp import solve_multilevel_milp
from .fitting import overflow_reason
from .parametric import edp_search, latency_search
from .space import emptied_by
from .constraints import NO_CONSTRAINTS, violations
from .ordered import SplitLevels, split_ordered

MULTILEVEL_METHODS = ("cpsat", "milp", "enumerate")
MILP_ANY_LATENCY = ("latency under a per-PE bandwidth limit is solved by the MILP over factors: divisors only (its "
                    "search fixes the busy PEs, which with partial tiles do not determine the cycles); use cpsat")


HALO_ANY = ("halo reuse in a hierarchy is modelled over divisor factors (a partial last tile breaks the equal "
            "steps of a sweep); use factors: divisors with halo, or drop halo")


def milp_refusal(problem: MultiLevelProblem) -> str | None:
    """Why the MILP does not take ``problem``'s space (None when it does)."""
    if problem.factors != "divisors" and problem.objective == "latency" and _per_pe_bandwidth(problem):
        return MILP_ANY_LATENCY
    return None


def _with_constraints(problem: MultiLevelProblem) -> str:
    return "" if problem.constraints.empty else \
        f" under the constraints ({problem.constraints.describe(problem.hierarchy)})"


def _no_fit(problem: MultiLevelProblem) -> str:
    """Why no mapping fits, as precisely as the capacity rule of
    ``fitting.py`` says: a level too small for even the smallest tiles is
    named whatever the constraints (they are not the cause then), else the
    constraints are named, with the level they overflow when known."""
    alone = overflow_reason(replace(problem, constraints=NO_CONSTRAINTS)) if not problem.constraints.empty else None
    if alone is not None:
        return f"no mapping fits the hierarchy, whatever the constraints: {alone}"
    reason = overflow_reason(problem)
    return "no mapping fits the hierarchy" + _with_constraints(problem) + (f": {reason}" if reason else "")


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
    secondary: tuple[Secondary, ...] = ()
    """Each secondary objective's value, proved least among the optima of the objectives before it or not."""
    canonical: bool = False
    """Whether the proof was the canonical run itself (``canonical.py``), so its mapping is the canonical one."""

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.best_bound)


CANONICAL_SECONDS = 5.0
"""Least time the canonical search, and each secondary objective's proof,
gets after a proof that used up the limit."""


def solve_multilevel(problem: MultiLevelProblem, method: str = "cpsat", time_limit: float | None = None,
                     workers: int = 0, canonical: bool = True) -> MultiLevelResult:
    """Best mapping by ``method`` within ``time_limit`` seconds from this call.

    Model builds and every piece of a search count; the enumeration checks
    the limit between loop-order combinations, and has a size limit too.
    On a time-out: ``feasible`` with the best mapping found and the bound
    the solves proved (None when they proved none), or ``error`` when no
    mapping was found.

    Once ``method`` proves the optimum of ``problem.objective``, each
    secondary objective (``problem.secondary``) is minimized in turn by
    CP-SAT among the optima of the ones before it, every earlier objective
    held at its proved value. A secondary objective that is not proved (a
    time-out) ends the sequence: the answer is an optimum of the ones
    proved, and the message names the rest.

    Parameters
    ----------
    problem
        The layer, hierarchy and objectives.
    method
        ``cpsat``, ``milp`` or ``enumerate``: the exact method of the
        primary objective (the secondary ones are always CP-SAT's).
    time_limit
        Seconds (default: the problem's); each secondary objective and the
        canonical search get at least :data:`CANONICAL_SECONDS` more.
    workers
        CP-SAT's search workers, or the processes that solve the MILP's
        pieces side by side (0: one per core).
    canonical
        Return the canonical optimal mapping (``canonical.py``): the same
        mapping whichever method proved the optimum and with any number of
        workers, unless its search does not finish (the message says so).

    Returns
    -------
    MultiLevelResult
        ``objective`` is the primary objective's value by ``evaluate``;
        ``secondary`` holds each secondary objective's value and whether it
        was proved.
    """
    limit = problem.solver.time_limit if time_limit is None else time_limit
    start = time.perf_counter()
    if problem.halo and problem.factors != "divisors":
        # the exact models cost halo sweeps over divisor rows only: with partial tiles they would overstate
        # a sweeping mapping, and neither their optimum nor their bound would hold
        return MultiLevelResult("error", method, None, None, None, None, 0.0, HALO_ANY)
    split = split_ordered(problem)
    if split is not None:  # loop-order constraints: the same loop nests on split levels (``ordered.py``)
        emptied = emptied_by(problem)
        if emptied is not None:
            return MultiLevelResult("infeasible", method, None, None, None, None, time.perf_counter() - start, emptied)
        return _folded(split, solve_multilevel(split.problem, method, limit, workers, canonical))
    result = _solve_multilevel(problem, method, limit, workers, start)
    if result.status != "optimal":
        return _with_secondary(problem, result, ())
    if not problem.secondary and (not canonical or problem.objective not in CPSAT_OBJECTIVES or result.canonical):
        return result

    def remaining() -> float:
        return max(CANONICAL_SECONDS, limit - (time.perf_counter() - start))

    found, held, notes = result, [], []
    for k, name in enumerate(problem.secondary):
        step = _solve_piece(replace(problem, objective=name, secondary=()), "cpsat",
                            Restriction(caps=((problem.objective, result.objective), *held)), remaining(), workers)
        if step.status != "optimal":
            rest = problem.secondary[k + 1:]
            notes.append(f"the secondary objective {name} was not proved ({step.message or step.status})"
                         + (f", so {', '.join(rest)} {'was' if len(rest) == 1 else 'were'} not minimized"
                            if rest else ""))
            break
        held.append((name, step.objective))
        found = step
    if canonical and (problem.objective in CPSAT_OBJECTIVES or held):
        budget = remaining()
        mapping = canonical_optimum(problem, result.objective, budget, tuple(held))
        metrics = None if mapping is None else evaluate_multilevel(problem, mapping)
        if metrics is None or not metrics.fits or not all(
                math.isclose(metrics.objective(name), value, rel_tol=1e-12, abs_tol=1e-9)
                for name, value in [(problem.objective, result.objective), *held]):
            notes.append(f"the canonical optimum was not found in {budget:.0f} s; this optimal mapping may differ "
                         "between runs")
        else:
            found = replace(found, mapping=mapping, metrics=metrics)
    out = replace(result, mapping=found.mapping, metrics=found.metrics,
                  objective=found.metrics.objective(problem.objective), wall_time_s=time.perf_counter() - start,
                  message="; ".join(m for m in (result.message, *notes) if m))
    return _with_secondary(problem, out, tuple(name for name, _ in held))


def _folded(split: SplitLevels, result: MultiLevelResult) -> MultiLevelResult:
    """A split problem's result on the original hierarchy, scored again by
    ``evaluate`` there: a value that differs, or a mapping that breaks the
    order, is an error, never an optimum."""
    problem = split.original
    if result.status == "infeasible":  # said of the original levels, not the split ones
        return replace(result, message=_no_fit(problem))
    if result.mapping is None or result.metrics is None:
        return result
    mapping = split.fold(result.mapping)
    metrics = evaluate_multilevel(problem, mapping)
    broken = violations(problem.constraints, problem.hierarchy, mapping)
    values = [(name, metrics.objective(name), result.metrics.objective(name)) for name in problem.objectives]
    differ = [f"{name} {own:,.6g} against {theirs:,.6g} on the split levels" for name, own, theirs in values
              if not math.isclose(own, theirs, rel_tol=1e-9, abs_tol=1e-9)]
    if broken or differ or metrics.fits != result.metrics.fits:
        why = "; ".join(broken + differ) or "the folded mapping does not fit"
        return replace(result, status="error", mapping=mapping, metrics=metrics,
                       objective=metrics.objective(problem.objective),
                       message=f"the mapping of the split levels does not score the same on the hierarchy ({why})")
    return replace(result, mapping=mapping, metrics=metrics, objective=metrics.objective(problem.objective))


def _with_secondary(problem: MultiLevelProblem, result: MultiLevelResult, proved: tuple[str, ...]) -> MultiLevelResult:
    """``result`` with the value of each secondary objective (``proved``: those proved least)."""
    if not problem.secondary or result.metrics is None:
        return result
    return replace(result, secondary=tuple(Secondary(name, result.metrics.objective(name), name in proved)
                                           for name in problem.secondary))


def _solve_multilevel(problem: MultiLevelProblem, method: str, limit: float, workers: int,
                      start: float) -> MultiLevelResult:
    emptied = emptied_by(problem)
    if emptied is not None:
        return MultiLevelResult("infeasible", method, None, None, None, None, time.perf_counter() - start, emptied)
    if method == "enumerate":
        try:
            found = enumerate_multilevel(problem, deadline=start + limit)
        except ValueError as exc:
            return MultiLevelResult("error", method, None, None, None, None, time.perf_counter() - start, str(exc))
        if found.mapping is None:
            if not found.complete:
                return MultiLevelResult("error", method, None, None, None, None, found.wall_time_s,
                                        "time limit reached before the enumeration found a mapping")
            return MultiLevelResult("infeasible", method, None, None, None, None, found.wall_time_s,
                                    _no_fit(problem))
        metrics = evaluate_multilevel(problem, found.mapping)
        value = metrics.objective(problem.objective)
        agrees = metrics.fits and math.isclose(value, found.objective, rel_tol=1e-9)
        if not found.complete:  # the best of the mappings scored so far: no proof, no bound
            return MultiLevelResult("feasible" if agrees else "error", method, found.mapping, metrics, value, None,
                                    found.wall_time_s, "time limit reached: enumeration stopped before every "
                                    "mapping and loop order was scored")
        status = "optimal" if agrees else "error"
        return MultiLevelResult(status, method, found.mapping, metrics, value, value if status == "optimal" else None,
                                found.wall_time_s, f"{found.points:,} factor combinations x group orders")
    if method not in MULTILEVEL_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(MULTILEVEL_METHODS)}")
    if method == "milp" and milp_refusal(problem):
        return MultiLevelResult("error", method, None, None, None, None, time.perf_counter() - start,
                                milp_refusal(problem))
    if problem.objective == "edp" and problem.factors != "divisors":
        return MultiLevelResult("error", method, None, None, None, None, time.perf_counter() - start,
                                "edp is solved over divisor factors only: its search fixes the busy PEs, which with "
                                "partial tiles do not determine the cycles")

    def piece(piece_problem: MultiLevelProblem, restriction: Restriction, seconds: float) -> MultiLevelResult:
        return _solve_piece(piece_problem, method, restriction, seconds, workers)

    if problem.objective == "edp":
        return _searched(problem, method, edp_search(problem, piece, start + limit), start,
                         "parametric search over busy PEs and cycle caps")
    if method == "milp" and problem.objective == "latency" and _per_pe_bandwidth(problem):
        return _searched(problem, method, latency_search(problem, piece, start + limit), start,
                         "one latency MILP per number of busy PEs")
    if problem.factors != "divisors":
        return _solve_with_divisor_start(problem, method, limit - (time.perf_counter() - start), workers)
    return _solve_piece(problem, method, Restriction(), limit - (time.perf_counter() - start), workers)


DIVISOR_START_SHARE = 1 / 3
"""Share of the time limit the divisor space gets before the ``any`` space."""


def _solve_with_divisor_start(problem: MultiLevelProblem, method: str, limit: float, workers: int) -> MultiLevelResult:
    """The ``any`` space, started from the divisor space's optimum: divisor
    rows are rows of the ``any`` space, so that mapping is one of this space
    too, and the answer is never worse than it, even when the time limit
    stops the larger search first. CP-SAT takes it as a hint; the MILP
    searches only below it (its value caps then shrink every table), and
    "nothing below" with a proved seed proves the seed optimal here."""
    start = time.perf_counter()
    divisors = replace(problem, factors="divisors")
    emptied = emptied_by(divisors)  # a fixed factor that divides no extent leaves the divisor space empty
    seed = _solve_piece(divisors, method, Restriction(), limit * DIVISOR_START_SHARE, workers) if emptied is None \
        else MultiLevelResult("infeasible", method, None, None, None, None, 0.0, emptied)
    fits = seed.metrics is not None and seed.metrics.fits
    remaining = limit - (time.perf_counter() - start)
    if method == "cpsat":
        result = _solve_piece(problem, method, Restriction(), remaining, workers, hint=seed.mapping if fits else None)
    else:
        below = Restriction(below=seed.objective) if fits and seed.objective is not None else Restriction()
        result = _solve_piece(problem, method, below, remaining, workers)
        if result.status == "infeasible" and below.below is not None:
            # proved: nothing in the larger space is strictly better than the seed, itself a fitting,
            # evaluated mapping of that space, so the seed is its optimum (proved in the divisor space or not)
            return replace(seed, status="optimal", wall_time_s=time.perf_counter() - start, best_bound=seed.objective,
                           message=f"no mapping of this space beats the divisor space's "
                                   f"{'optimum' if seed.status == 'optimal' else 'best mapping'}")
        if result.status == "infeasible" and seed.status == "infeasible":
            return replace(result, wall_time_s=time.perf_counter() - start)
        if below.below is not None and result.best_bound is not None:
            # the search covered the mappings below the seed; the others cost at least the seed
            result = replace(result, best_bound=min(result.best_bound, below.below))
    result = replace(result, wall_time_s=time.perf_counter() - start)
    if result.status == "optimal" or seed.objective is None or seed.status not in ("optimal", "feasible"):
        return result
    if result.objective is not None and result.objective <= seed.objective:
        return result
    note = (f"the partial-tile search ended without a better mapping; this is the divisor space's "
            f"{'optimum' if seed.status == 'optimal' else 'best mapping'}, a mapping of this space too")
    return replace(result, status="feasible", mapping=seed.mapping, metrics=seed.metrics, objective=seed.objective,
                   canonical=False, message="; ".join(m for m in (result.message, note) if m))


def _per_pe_bandwidth(problem: MultiLevelProblem) -> bool:
    hier = problem.hierarchy
    return any(level.bandwidth for level in hier.levels[hier.pe_level:])


def _solve_piece(problem: MultiLevelProblem, method: str, restriction: Restriction, limit: float,
                 workers: int, hint=None) -> MultiLevelResult:
    """One exact solve under ``restriction``, checked by ``evaluate``;
    ``limit`` counts from this call, the model build included. ``hint``: a
    mapping CP-SAT starts from."""
    start = time.perf_counter()
    overflow = overflow_reason(problem)
    if overflow is not None:
        what = _no_fit(problem) if restriction == Restriction() else "no mapping in this piece"
        return MultiLevelResult("infeasible", method, None, None, None, None, time.perf_counter() - start, what)
    if method == "cpsat":
        try:
            builder, rows, x, o, scale, constant = build_multilevel_cpsat(problem, restriction)
        except ValueError as exc:
            return MultiLevelResult("error", method, None, None, None, None, time.perf_counter() - start, str(exc))
        remaining = limit - (time.perf_counter() - start)
        if remaining <= 0:
            return MultiLevelResult("error", method, None, None, None, None, time.perf_counter() - start,
                                    "time limit reached while building the CP-SAT model")
        if hint is not None:
            add_hint(problem, builder, rows, x, o, hint)
        outcome = solve_cpsat(builder.m, lambda s: decode(problem, rows, x, o, s, builder.keep, builder.halo_dims),
                              remaining, workers, CPSAT_PARAMETERS)
        canonical = proves_canonically(problem, workers or default_workers(), restriction, hint is not None)
    else:
        canonical = False
        try:
            outcome, scale, constant = solve_multilevel_milp(problem, limit, restriction, workers)
        except ValueError as exc:
            return MultiLevelResult("error", method, None, None, None, None, time.perf_counter() - start, str(exc))
    wall = time.perf_counter() - start
    if outcome.infeasible:
        what = _no_fit(problem) if restriction == Restriction() \
            else "no mapping in this piece"
        return MultiLevelResult("infeasible", method, None, None, None, None, wall, what)
    if not outcome.has_solution:
        if outcome.message == "MODEL_INVALID":  # CP-SAT refuses the model outright: no time-out
            return MultiLevelResult("error", method, None, None, None, None, wall,
                                    "CP-SAT refused the model as invalid: its objective, the access counts times "
                                    "the energies in integer units, does not fit in 64 bits; give the energies "
                                    "in a larger unit (fewer digits), or use method: milp")
        bound = None if outcome.bound is None else (math.ceil(outcome.bound - 1e-6) + constant) / scale
        return MultiLevelResult("error", method, None, None, None, bound, wall,
                                f"{method} found no mapping within the time limit ({outcome.message})")
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
    agrees = metrics.fits and restriction.admits(metrics) and abs(value * scale - (claimed * scale)) < 0.5
    if outcome.proved and agrees:
        status = "optimal"
    elif metrics.fits:
        status = "feasible"
    else:
        status = "error"
    if agrees:
        message = outcome.message
    elif not outcome.proved and status == "feasible" and claimed > value:
        # an incumbent the search has not finished with may not yet count every reuse its loops allow
        message = (f"{method}'s unproved incumbent counts {claimed:,.6g}; evaluate, which counts every reuse of its "
                   f"loops, gives {value:,.6g}, the value reported")
    else:
        message = f"{method} claimed {claimed}, evaluate says {value}"
    return MultiLevelResult(status, method, outcome.values, metrics, value, bound, wall, message,
                            canonical=canonical and status == "optimal")


def _searched(problem: MultiLevelProblem, method: str, found, start: float, how: str) -> MultiLevelResult:
    """The result of a parametric search (``multilevel_parametric.py``)."""
    wall = time.perf_counter() - start
    what = f"{how}: {found.pieces} {method} solve{'' if found.pieces == 1 else 's'}"
    if found.infeasible:
        return MultiLevelResult("infeasible", method, None, None, None, None, wall,
                                _no_fit(problem))
    if found.mapping is None:
        return MultiLevelResult("error", method, None, None, None, found.bound, wall,
                                found.message or f"no mapping found within the time limit ({what})")
    status = "optimal" if found.proved else "feasible"
    return MultiLevelResult(status, method, found.mapping, found.metrics, found.objective, found.bound, wall, what)
