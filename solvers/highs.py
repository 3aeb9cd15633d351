"""Solve a MILP with HiGHS and report the outcome uniformly.

Two routes: a pyomo model (:func:`solve_highs`: the crossbar, pairing,
partition and two-level tiling models), and a model already in HiGHS
(:func:`run_highs`: the multi-level MILP, written straight into HiGHS by
``linear_model.py`` and solved many times with bounds changed in place).

The time limit of a solve counts from the call: pyomo's translation of the
model into HiGHS (about as long as building the model, over a second for
the larger ones) is spent inside it, and HiGHS gets only what is left when
it starts.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from .interrupt import interruptible
from .outcome import SolverOutcome
from .threads import solver_threads, threads_fixed

MIN_SECONDS = 0.005
"""What HiGHS is given when the translation used up the time: it stops at
once with whatever it knows (usually nothing)."""


class _DeadlineHighs(Highs):
    """pyomo's HiGHS interface, with the time limit set when HiGHS starts
    (after the translation or update of the model) to what remains before
    ``deadline``."""

    deadline: float | None = None

    def _solve(self):
        if self.deadline is not None:
            self._active_config.time_limit = max(MIN_SECONDS, self.deadline - time.perf_counter())
        native = getattr(self, "_solver_model", None)
        if native is not None and hasattr(native, "HandleUserInterrupt"):
            native.HandleUserInterrupt = True  # so that cancel() stops it (``solvers/interrupt.py``)
        return super()._solve()

    def cancel(self) -> None:
        """Ask the running HiGHS to stop (from another thread)."""
        native = getattr(self, "_solver_model", None)
        if native is not None and hasattr(native, "cancelSolve"):
            native.cancelSolve()


def highs_available() -> bool:
    try:
        return bool(SolverFactory("highs").available())
    except Exception:  # pragma: no cover - depends on the installation
        return False


def objective_scale(magnitude: float | None) -> float:
    """The power of two that brings an integer-valued objective of about
    ``magnitude`` units to about a thousand (1 when unknown or already small).

    The multi-level MILP's units of energy reach 1e9 on real layers, where
    HiGHS warns of excessive costs; scaled, ResNet-18's conv1 on
    ``eyeriss`` took 279 s of pieces instead of 292 s (a small gain,
    ``docs/tiling-multilevel.md``, "Exact methods"). A power of two is
    exact in floating point, and ``solve_highs`` scales the gap and the
    values back, so a proof means what it meant before: no solution one
    unit better."""
    if magnitude is None or magnitude <= 2 ** 11:
        return 1.0
    return 2.0 ** -(math.floor(math.log2(magnitude)) - 10)


def solve_highs(
    model: pyo.ConcreteModel,
    read_values: Callable[[pyo.ConcreteModel], object],
    time_limit: float,
    integral_objective: bool = True,
    threads: int = 0,
    extra_options: dict | None = None,
    objective_scale: float = 1.0,
) -> SolverOutcome:
    """Solve to a zero gap within ``time_limit`` seconds from this call,
    translation included.  With an integer-valued objective an absolute gap
    just under one unit already proves optimality, which spares HiGHS from
    chasing the last floating-point digits.  ``bound`` is None when HiGHS
    proved none (stopped before its first dual bound).

    ``objective_scale``: the model's objective is its integer-valued units
    times this power of two (to keep HiGHS' costs of order one); the gap is
    one unit scaled the same way, and the objective and bound are returned
    in units."""
    start = time.perf_counter()
    options = {"mip_rel_gap": 0.0, "mip_abs_gap": 0.999 * objective_scale if integral_objective else 0.0}
    if threads or threads_fixed():
        options["threads"] = threads or solver_threads()
    options.update(extra_options or {})
    solver = _DeadlineHighs()
    solver.deadline = start + max(0.0, float(time_limit))
    results = interruptible(lambda: solver.solve(
        model,
        tee=False,
        time_limit=max(MIN_SECONDS, float(time_limit)),
        solver_options=options,
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
    ), solver.cancel)
    term = results.termination_condition
    has_solution = results.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
    values = None
    if has_solution:
        results.solution_loader.load_vars()
        values = read_values(model)
    infeasible = term in (
        TerminationCondition.provenInfeasible,
        TerminationCondition.locallyInfeasible,
    )
    bound = results.objective_bound
    if bound is not None and (math.isinf(bound) or math.isnan(bound)):
        bound = None
    objective = results.incumbent_objective if has_solution else None
    if objective_scale != 1.0:
        objective = None if objective is None else objective / objective_scale
        bound = None if bound is None else bound / objective_scale
    return SolverOutcome(
        backend="milp",
        proved=term == TerminationCondition.convergenceCriteriaSatisfied and has_solution,
        infeasible=infeasible,
        objective=objective,
        bound=bound,
        wall_time_s=time.perf_counter() - start,
        values=values,
        message=str(term.name),
    )


def run_highs(
    highs,
    read_values: Callable[[np.ndarray], object],
    time_limit: float,
    integral_objective: bool = True,
    relaxation: bool = False,
    extra_options: dict | None = None,
    objective_scale: float = 1.0,
) -> SolverOutcome:
    """Solve a model already in ``highs`` (a ``highspy.Highs`` built by
    ``LinearModel.highs``), as :func:`solve_highs` does a pyomo model:
    to a zero gap (one unit with an integer-valued objective) within
    ``time_limit`` seconds, or its LP relaxation with ``relaxation``.
    ``read_values`` gets the column values. The model has integer columns
    (the bound is HiGHS' MIP dual bound, or the LP optimum of a
    relaxation), and every column is bounded, so HiGHS' "unbounded or
    infeasible" means infeasible. A solve that HiGHS itself reports as an
    error (its presolve can postsolve a point that breaks a row) runs once
    more without presolve."""
    import highspy

    start = time.perf_counter()
    options = {"mip_rel_gap": 0.0, "mip_abs_gap": 0.999 * objective_scale if integral_objective else 0.0,
               "solve_relaxation": relaxation, "presolve_rule_off": 0, "mip_heuristic_effort": 0.05,
               "time_limit": max(MIN_SECONDS, float(time_limit))}
    if threads_fixed():
        options["threads"] = solver_threads()
    options.update(extra_options or {})
    for name, value in options.items():
        highs.setOptionValue(name, value)
    highs.HandleUserInterrupt = True  # so that cancelSolve() stops it (``solvers/interrupt.py``)
    interruptible(highs.run, highs.cancelSolve)
    status = highs.getModelStatus()
    if status == highspy.HighsModelStatus.kSolveError and options.get("presolve", "choose") != "off":
        # HiGHS' presolve can reduce a model with fixed columns to nothing and postsolve a point that
        # breaks a row (HiGHS then reports the error itself); once more without presolve
        highs.setOptionValue("presolve", "off")
        highs.setOptionValue("time_limit", max(MIN_SECONDS, float(time_limit) - (time.perf_counter() - start)))
        interruptible(highs.run, highs.cancelSolve)
        highs.setOptionValue("presolve", "choose")
        status = highs.getModelStatus()
    info = highs.getInfo()
    has_solution = info.primal_solution_status == 2  # feasible
    values = read_values(np.asarray(highs.getSolution().col_value)) if has_solution else None
    infeasible = status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible)
    proved = status == highspy.HighsModelStatus.kOptimal and has_solution
    objective = info.objective_function_value if has_solution else None
    bound = (objective if proved else None) if relaxation else info.mip_dual_bound
    if bound is not None and (math.isinf(bound) or math.isnan(bound)):
        bound = None
    if objective_scale != 1.0:
        objective = None if objective is None else objective / objective_scale
        bound = None if bound is None else bound / objective_scale
    return SolverOutcome(backend="milp", proved=proved, infeasible=infeasible, objective=objective, bound=bound,
                         wall_time_s=time.perf_counter() - start, values=values,
                         message=highs.modelStatusToString(status))


def not_solved(message: str, wall: float = 0.0, backend: str = "milp") -> SolverOutcome:
    """The outcome of a model the time limit left no time to solve: no
    mapping, no bound."""
    return SolverOutcome(backend=backend, proved=False, infeasible=False, objective=None, bound=None,
                         wall_time_s=wall, values=None, message=message)
