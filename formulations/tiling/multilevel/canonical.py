"""One optimal mapping, the same on every run: the canonical optimum.

A layer has many optimal mappings (loop orders of trivial loops, keep
choices that move nothing, factor rows of equal cost). Which one a solver
returns depends on its threads' timing, so two runs of one instance could
return two loop nests with the same energy, and a result could not be
diffed, cached by content or reproduced. Once the optimum ``V`` is proved,
this module asks CP-SAT for the *first* mapping of objective at most ``V``
in a fixed order of the choices: a depth-first search with one worker that
decides the factor row of N, G, M, C, P, Q, R, S (each table in its fixed
order, ``space.dim_choices``), then each level's group order, then each
keep choice, always trying the first value first. The search is
deterministic, so the answer depends only on the instance and ``V``: the
same whichever exact method proved ``V`` and however many workers it used.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from .cpsat import CPSAT_OBJECTIVES, build_multilevel_cpsat, decode, objective_scale
from .problem import DIMS, MultiLevelMapping, MultiLevelProblem, Restriction


def canonical_optimum(problem: MultiLevelProblem, value: float, time_limit: float) -> MultiLevelMapping | None:
    """The canonical mapping of objective at most ``value`` (the proved
    optimum), or None when the objective has no CP-SAT model (EDP) or the
    search does not finish within ``time_limit`` seconds.

    Parameters
    ----------
    problem
        The problem whose optimum ``value`` an exact method proved.
    value
        That optimum, in the objective's units (``evaluate``'s value).
    time_limit
        Seconds for the search (model build included).
    """
    if problem.objective not in CPSAT_OBJECTIVES:
        return None
    scale = objective_scale(problem)
    # at most value: strictly below value + half a model unit (objectives are integers in model units)
    builder, rows, x, o, _, _ = build_multilevel_cpsat(problem, Restriction(below=value + 0.5 / scale))
    model = builder.m
    choices = [v for d in DIMS for v in x[d]] + [v for level in o for v in level]
    choices += [v for level in builder.keep for v in level.values() if not isinstance(v, bool)]
    model.AddDecisionStrategy(choices, cp_model.CHOOSE_FIRST, cp_model.SELECT_MAX_VALUE)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.search_branching = cp_model.FIXED_SEARCH
    solver.parameters.stop_after_first_solution = True
    solver.parameters.random_seed = 0
    solver.parameters.max_time_in_seconds = max(0.1, float(time_limit))
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return decode(problem, rows, x, o, solver, builder.keep)
