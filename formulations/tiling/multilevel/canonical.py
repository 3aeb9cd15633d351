"""One optimal mapping, the same on every run: the canonical optimum.

A layer has many optimal mappings (loop orders of trivial loops, keep
choices that move nothing, factor rows of equal cost). Which one a solver
returns depends on its threads' timing, so two runs of one instance could
return two loop nests with the same energy, and a result could not be
diffed, cached by content or reproduced. Once the optimum ``V`` is proved,
this module asks CP-SAT for the first mapping of objective at most ``V``
that its search finds with one worker, a fixed seed and no time-dependent
decision. That search is deterministic: the model is built from the
instance and ``V`` alone, so the answer is the same whichever exact method
proved ``V`` and however many workers it used.

A depth-first search in a fixed order of the choices (the factor rows of
N, G, M, C, P, Q, R, S, then the orders, then the keep choices, first value
first) gives an answer with a simpler description, the lexicographically
first optimum, but it backtracks through subtrees the objective bound only
prunes late. On ResNet-50 on ``eyeriss`` it took 89.5 s of canonical
search over the 24 distinct layers (36.2 s on layer2.1.conv2), against
53.4 s (11.7 s) for the default search; ``docs/tiling-multilevel.md``, "The
canonical optimum", has the table.
With secondary objectives, the search also holds each at its proved
value, so the answer is the canonical mapping among the lexicographic
optima.
"""

from __future__ import annotations

from dataclasses import replace

from ortools.sat.python import cp_model

from .cpsat import CPSAT_OBJECTIVES, build_multilevel_cpsat, decode, objective_scale
from .problem import MultiLevelMapping, MultiLevelProblem, Restriction


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
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # one worker: CP-SAT's search is then deterministic
    solver.parameters.stop_after_first_solution = True
    solver.parameters.random_seed = 0
    solver.parameters.max_time_in_seconds = max(0.1, float(time_limit))
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return decode(problem, rows, x, o, solver, builder.keep, builder.halo_dims)
