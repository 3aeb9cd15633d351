"""Run an OR-Tools CP-SAT model and report the outcome uniformly."""

from __future__ import annotations

import math
import time
from typing import Callable, Mapping

from ortools.sat.python import cp_model

from .interrupt import interruptible
from .outcome import SolverOutcome
from .threads import solver_threads


CPSAT_SEED = 0
"""CP-SAT's random seed in every solve: with one worker the search is then
the same on every run, which the canonical optimum relies on
(``formulations/tiling/multilevel/canonical.py``)."""


def default_workers() -> int:
    """CP-SAT's search workers: one per allowed solver thread (``solvers/threads.py``)."""
    return solver_threads()


def solve_interruptibly(solver: cp_model.CpSolver, model: cp_model.CpModel, callback=None) -> int:
    """``solver.Solve(model, callback)``, with Ctrl-C stopping the search
    and raising KeyboardInterrupt (``solvers/interrupt.py``): CP-SAT's own
    SIGINT handling is off, which would end the search as a time-out and
    leave the process's SIGINT action at the default."""
    solver.parameters.catch_sigint_signal = False
    return interruptible(lambda: solver.Solve(model, callback), solver.StopSearch)


def solve_cpsat(
    model: cp_model.CpModel,
    read_values: Callable[[cp_model.CpSolver], object],
    time_limit: float,
    workers: int = 0,
    parameters: Mapping[str, object] | None = None,
) -> SolverOutcome:
    """Solve ``model`` (which must have an integer objective) to proven
    optimality or until ``time_limit`` seconds from this call; ``read_values``
    extracts the decision values while the solver still holds them.

    ``bound`` is None when CP-SAT proved none: with status UNKNOWN it
    reports 0 both for "no bound yet" and for a proved 0, so a 0 there is
    not taken as a bound.

    ``parameters``: further CP-SAT parameters (``SatParameters`` field
    names) that a model's own measurements chose."""
    start = time.perf_counter()
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, float(time_limit))
    solver.parameters.num_workers = workers or default_workers()
    solver.parameters.random_seed = CPSAT_SEED
    for name, value in (parameters or {}).items():
        setattr(solver.parameters, name, value)
    status = solve_interruptibly(solver, model)
    has_solution = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    bound = None
    if status != cp_model.INFEASIBLE and status != cp_model.MODEL_INVALID:
        bound = solver.BestObjectiveBound()
        if math.isinf(bound) or math.isnan(bound) or (status == cp_model.UNKNOWN and bound == 0):
            bound = None
    return SolverOutcome(
        backend="cpsat",
        proved=status == cp_model.OPTIMAL,
        infeasible=status == cp_model.INFEASIBLE,
        objective=solver.ObjectiveValue() if has_solution else None,
        bound=bound,
        wall_time_s=time.perf_counter() - start,
        values=read_values(solver) if has_solution else None,
        message=solver.StatusName(status),
    )
