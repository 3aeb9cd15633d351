"""The LP-relaxation refutation the multi-level MILP runs before each piece."""

from __future__ import annotations

import pyomo.environ as pyo

from mapcert.solvers.highs import load_model, new_highs, relaxation_infeasible, solve_highs


def _knapsack():
    """max 5a + 4b + 3c s.t. 2a + 3b + c <= 4.5 (as a minimization): the LP optimum is fractional."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(3), domain=pyo.Binary)
    m.room = pyo.Constraint(expr=2 * m.x[0] + 3 * m.x[1] + m.x[2] <= 4.5)
    m.objective = pyo.Objective(expr=-(5 * m.x[0] + 4 * m.x[1] + 3 * m.x[2]), sense=pyo.minimize)
    return m


def test_an_infeasible_relaxation_refutes_and_a_feasible_one_does_not():
    m = _knapsack()
    solver = new_highs()
    load_model(solver, m)
    assert not relaxation_infeasible(m, 10, solver)  # the LP reaches -10
    m.cutoff = pyo.Constraint(expr=m.objective.expr <= -11)  # below the LP optimum: no point at all
    assert relaxation_infeasible(m, 10, solver)
    m.del_component("cutoff")
    m.cutoff = pyo.Constraint(expr=m.objective.expr <= -8.5)  # the LP reaches it, the integers do not (best -8)
    assert not relaxation_infeasible(m, 10, solver)
    outcome = solve_highs(m, lambda model: [pyo.value(model.x[i]) for i in range(3)], 10, solver=solver)
    assert outcome.infeasible  # a MIP solve again, not the relaxation the solver ran last


def test_the_solver_returns_to_integers_after_a_relaxation():
    m = _knapsack()
    solver = new_highs()
    load_model(solver, m)
    relaxation_infeasible(m, 10, solver)
    outcome = solve_highs(m, lambda model: [round(pyo.value(model.x[i]), 6) for i in range(3)], 10, solver=solver)
    assert outcome.proved and outcome.objective == -8 and outcome.values == [1.0, 0.0, 1.0]


def test_a_scaled_objective_is_proved_to_one_unit_and_reported_in_units():
    """Costs of 1e8 scaled by 2^-20: the gap must be one unit scaled alike, or HiGHS would stop a
    million units short; the proved optimum is the brute-force one, in units."""
    import itertools
    import random

    from mapcert.solvers.highs import objective_scale

    rng = random.Random(3)
    sizes = [rng.randint(10**8, 2 * 10**8) for _ in range(10)]
    target = sum(sizes) // 2 + 1
    best = min(s for pick in itertools.product((0, 1), repeat=len(sizes))
               if (s := sum(a * x for a, x in zip(sizes, pick))) >= target)
    scale = objective_scale(best)
    assert scale == 2.0 ** -(best.bit_length() - 1 - 10)
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(len(sizes)), domain=pyo.Binary)
    units = sum(a * m.x[i] for i, a in enumerate(sizes))
    m.room = pyo.Constraint(expr=units >= target)
    m.objective = pyo.Objective(expr=scale * units, sense=pyo.minimize)
    outcome = solve_highs(m, lambda model: None, 60, objective_scale=scale)
    assert outcome.proved and outcome.objective == best and outcome.bound <= best
    assert objective_scale(None) == objective_scale(2048) == 1.0
