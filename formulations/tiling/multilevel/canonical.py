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
With secondary objectives, the search also holds each at its proved
value, so the answer is the canonical mapping among the lexicographic
optima.
"""

from __future__ import annotations

from dataclasses import replace

from ortools.sat.python import cp_model

from .cpsat import CPSAT_OBJECTIVES, build_multilevel_cpsat, decode, objective_scale
from .problem import DIMS, MultiLevelMapping, MultiLevelProblem, Restriction


def canonical_optimum(problem: MultiLevelProblem, value: float, time_limit: float,
                      held: tuple[tuple[str, float], ...] = ()) -> MultiLevelMapping | None:
    """The canonical mapping of objective at most ``value`` (the proved
    optimum) and every secondary objective at most its proved value, or
    None when the search does not finish within ``time_limit`` seconds or
    has no CP-SAT model (EDP alone; an EDP followed by secondary objectives
    is held by a cap).

    Parameters
    ----------
    problem
        The problem whose optimum ``value`` an exact method proved.
    value
        That optimum, in the objective's units (``evaluate``'s value).
    time_limit
        Seconds for the search (model build included).
    held
        ``(objective, value)`` of each secondary objective proved least among
        the optima of the objectives before it, in their units.
    """
    if problem.objective in CPSAT_OBJECTIVES:
        # at most value: strictly below value + half a model unit (objectives are integers in model units)
        model_problem = problem
        restriction = Restriction(below=value + 0.5 / objective_scale(problem), caps=tuple(held))
    elif held:  # EDP first: held at its optimum by a cap, the model built for a secondary objective
        model_problem = replace(problem, objective=held[0][0])
        restriction = Restriction(caps=((problem.objective, value), *held))
    else:
        return None
    try:
        builder, rows, x, o, _, _ = build_multilevel_cpsat(model_problem, restriction)
    except ValueError:  # an EDP beyond the model's exact integers
        return None
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
    return decode(problem, rows, x, o, solver, builder.keep, builder.halo_dims)
