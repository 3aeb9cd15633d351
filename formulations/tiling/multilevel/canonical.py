"""One optimal mapping, the same on every run: the canonical optimum.

A layer has many optimal mappings (loop orders of trivial loops, keep
choices that move nothing, factor rows of equal cost). Which one a solver
returns depends on its threads' timing, so two runs of one instance could
return two loop nests with the same energy, and a result could not be
diffed, cached by content or reproduced.

CP-SAT with one worker and a fixed seed makes no decision that depends on
time or threads: minimizing a model, it finds the same sequence of ever
better mappings on every run. The canonical optimum is the first mapping
of that sequence whose objective is the proved optimum ``V``, which is
also the mapping such a run ends with (after it, only strictly better
mappings are accepted, and there are none). The model is built from the
instance alone, so the answer does not depend on which exact method
proved ``V`` or on how many workers it used. When the proof itself was
that run (CP-SAT with one worker and no hint, as every layer of a network
solved side by side is), its mapping is the canonical one and nothing
runs again; otherwise the run is repeated up to the first mapping of
value ``V``, without the proof that follows it.

``docs/tiling-multilevel.md``, "The canonical optimum", has the argument
and the times of the searches this replaced. With secondary objectives
the run minimizes the primary objective with each secondary one held at
its proved value, so the answer is the canonical mapping among the
lexicographic optima.
"""

from __future__ import annotations

from dataclasses import replace

from ortools.sat.python import cp_model

from ....solvers.cpsat import CPSAT_SEED, solve_interruptibly

from .cpsat import CPSAT_OBJECTIVES, CPSAT_PARAMETERS, build_multilevel_cpsat, decode
from .problem import MultiLevelMapping, MultiLevelProblem, Restriction

CANONICAL_WORKERS = 1
CANONICAL_SEED = CPSAT_SEED
"""The search whose trajectory defines the canonical optimum: one worker,
the seed every proof uses, so that a one-worker proof is that run."""


def proves_canonically(problem: MultiLevelProblem, workers: int, restriction: Restriction, hinted: bool) -> bool:
    """Whether a CP-SAT proof with ``workers`` search workers under
    ``restriction`` is the canonical run itself: one worker, no hint, the
    plain model of a primary objective CP-SAT minimizes, no secondary
    objectives (their run holds caps, another model)."""
    return (workers == CANONICAL_WORKERS and not hinted and restriction == Restriction()
            and problem.objective in CPSAT_OBJECTIVES and not problem.secondary)


class _StopAtValue(cp_model.CpSolverSolutionCallback):
    """Ends the search at its first mapping of at most ``target`` model units."""

    def __init__(self, target: int):
        super().__init__()
        self.target = target
        self.reached = False

    def on_solution_callback(self) -> None:
        if self.ObjectiveValue() <= self.target + 0.5:
            self.reached = True
            self.StopSearch()


def canonical_optimum(problem: MultiLevelProblem, value: float, time_limit: float,
                      held: tuple[tuple[str, float], ...] = ()) -> MultiLevelMapping | None:
    """The canonical mapping of objective ``value`` (the proved optimum)
    with every secondary objective at most its proved value, or None when
    the run does not reach it within ``time_limit`` seconds or has no
    CP-SAT model (EDP alone; an EDP followed by secondary objectives is held
    by a cap and the first secondary objective is minimized).

    Parameters
    ----------
    problem
        The problem whose optimum ``value`` an exact method proved.
    value
        That optimum, in the objective's units (``evaluate``'s value).
    time_limit
        Seconds for the run (model build included).
    held
        ``(objective, value)`` of each secondary objective proved least among
        the optima of the objectives before it, in their units.
    """
    if problem.objective in CPSAT_OBJECTIVES:
        model_problem, target_value = problem, value
        restriction = Restriction(caps=tuple(held))
    elif held:  # EDP first: held at its optimum by a cap, the model built for the first secondary objective
        model_problem, target_value = replace(problem, objective=held[0][0]), held[0][1]
        restriction = Restriction(caps=((problem.objective, value), *held))
    else:
        return None
    try:
        builder, rows, x, o, scale, constant = build_multilevel_cpsat(model_problem, restriction)
    except ValueError:  # an EDP beyond the model's exact integers
        return None
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = CANONICAL_WORKERS
    solver.parameters.random_seed = CANONICAL_SEED
    for name, setting in CPSAT_PARAMETERS.items():  # the proof's own search
        setattr(solver.parameters, name, setting)
    solver.parameters.max_time_in_seconds = max(0.1, float(time_limit))
    stop = _StopAtValue(round(target_value * scale) - constant)
    status = solve_interruptibly(solver, builder.m, stop)
    if not stop.reached or status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return decode(problem, rows, x, o, solver, builder.keep, builder.halo_dims)
