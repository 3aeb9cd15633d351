"""The linear model written straight into HiGHS, and its solves
(``solvers/linear_model.py``, ``solvers/highs.run_highs``): what the
multi-level MILP's pieces rely on."""

from __future__ import annotations

import itertools
import math
import pickle
import random

import pytest

from mapcert.solvers.highs import objective_scale, run_highs
from mapcert.solvers.linear_model import INFINITY, Linear, LinearModel, Row


def _knapsack():
    """max 5a + 4b + 3c s.t. 2a + 3b + c <= 4.5 (as a minimization): the LP optimum is fractional."""
    m = LinearModel()
    x = [m.binary() for _ in range(3)]
    m.add(2 * x[0] + 3 * x[1] + x[2] <= 4.5)
    objective = -(5 * x[0] + 4 * x[1] + 3 * x[2])
    cutoff = m.add(Row(objective.linear()[0], -INFINITY, INFINITY))
    m.minimize(objective)
    return m, m.highs(), cutoff


def _values(v):
    return [round(float(a), 6) for a in v]


def test_expressions_stay_unchanged_when_sums_share_their_parts():
    m = LinearModel()
    x, y, z, w = (m.column(0, 10) for _ in range(4))
    a = x + y
    b = a + z  # appends to the list a shares
    c = a + w  # must not see z
    d = sum([x, y, z], 3) - 2 * w
    assert a.linear() == ({x.index: 1.0, y.index: 1.0}, 0.0)
    assert b.linear() == ({x.index: 1.0, y.index: 1.0, z.index: 1.0}, 0.0)
    assert c.linear() == ({x.index: 1.0, y.index: 1.0, w.index: 1.0}, 0.0)
    assert d.linear() == ({x.index: 1.0, y.index: 1.0, z.index: 1.0, w.index: -2.0}, 3.0)
    assert (1 - x).linear() == ({x.index: -1.0}, 1.0)
    assert (-(x - 2 * y)).linear() == ({x.index: -1.0, y.index: 2.0}, 0.0)
    assert 0 * x == 0  # a zero coefficient is no term
    total = 0
    for var in (x, y, x):
        total += 2 * var
    assert total.linear() == ({x.index: 4.0, y.index: 2.0}, 0.0)
    assert Linear({x.index: 3.0}, 1.0).linear() == ({x.index: 3.0}, 1.0)


def test_rows_move_constants_across_and_numbers_alone_are_checked():
    m = LinearModel()
    x, y = m.binary(), m.binary()
    row = x + 2 <= y + 3
    assert (row.terms, row.lower, row.upper) == ({x.index: 1.0, y.index: -1.0}, -INFINITY, 1.0)
    row = 2 >= x  # reflected: x <= 2
    assert (row.terms, row.lower, row.upper) == ({x.index: 1.0}, -INFINITY, 2.0)
    assert m.add(0 * x <= 1) == -1  # true of every point: no row
    m.add(0 * x >= 1)  # true of no point: the model is infeasible
    outcome = run_highs(m.highs(), _values, 10)
    assert outcome.infeasible and not outcome.proved and outcome.values is None
    with pytest.raises(TypeError):
        bool(x <= y)  # ``if x <= y`` is a mistake, not a test
    with pytest.raises(TypeError):
        x * y  # not linear
    with pytest.raises(ValueError):
        m.column(0, math.inf)  # every column bounded
    with pytest.raises(ValueError):
        m.add(x + math.inf <= math.inf)  # a NaN bound


def test_a_relaxation_and_a_cutoff_change_in_place_and_the_solver_returns_to_integers():
    m, highs, cutoff = _knapsack()
    relaxed = run_highs(highs, _values, 10, integral_objective=False, relaxation=True)
    assert relaxed.proved and relaxed.objective == pytest.approx(-10.0)  # a = c = 1, b = 1/2
    highs.changeRowBounds(cutoff, -INFINITY, -11)  # below the LP optimum: no point at all
    assert run_highs(highs, _values, 10, integral_objective=False, relaxation=True).infeasible
    highs.changeRowBounds(cutoff, -INFINITY, -8.5)  # the LP reaches it, the integers do not (best -8)
    assert not run_highs(highs, _values, 10, integral_objective=False, relaxation=True).infeasible
    assert run_highs(highs, _values, 10).infeasible  # a MIP solve again, not the relaxation run last
    highs.changeRowBounds(cutoff, -INFINITY, INFINITY)
    outcome = run_highs(highs, _values, 10)
    assert outcome.proved and outcome.objective == -8 and outcome.bound == -8 and outcome.values == [1, 0, 1]
    highs.changeColBounds(0, 0, 0)  # fix a = 0 in place: b + c, -7
    outcome = run_highs(highs, _values, 10)
    assert outcome.proved and outcome.objective == -7 and outcome.values == [0, 1, 1]


def test_a_scaled_objective_is_proved_to_one_unit_and_reported_in_units():
    """Costs of 1e8 scaled by 2^-20: the gap must be one unit scaled alike, or HiGHS would stop a
    million units short; the proved optimum is the brute-force one, in units."""
    rng = random.Random(3)
    sizes = [rng.randint(10**8, 2 * 10**8) for _ in range(10)]
    target = sum(sizes) // 2 + 1
    best = min(s for pick in itertools.product((0, 1), repeat=len(sizes))
               if (s := sum(a * x for a, x in zip(sizes, pick))) >= target)
    scale = objective_scale(best)
    assert scale == 2.0 ** -(best.bit_length() - 1 - 10)
    m = LinearModel()
    x = [m.binary() for _ in sizes]
    units = sum(a * x[i] for i, a in enumerate(sizes))
    m.add(units >= target)
    m.minimize(units, scale)
    outcome = run_highs(m.highs(), _values, 60, objective_scale=scale)
    assert outcome.proved and outcome.objective == best and outcome.bound <= best
    assert objective_scale(None) == objective_scale(2048) == 1.0


def test_a_model_sent_to_another_process_is_the_same_model():
    """A pool process loads the arrays, not the expressions: the same optimum."""
    m, highs, _ = _knapsack()
    copy = pickle.loads(pickle.dumps(m))
    assert run_highs(copy.highs(), _values, 10).objective == run_highs(highs, _values, 10).objective == -8


def test_a_time_out_is_not_a_proof():
    """A subset-sum HiGHS cannot settle in a millisecond (nor in seconds): neither proved nor infeasible."""
    rng = random.Random(5)
    n = 60
    weights = [rng.randint(10**5, 10**6) for _ in range(n)]
    m = LinearModel()
    x = [m.binary() for _ in range(n)]
    m.add(sum(w * v for w, v in zip(weights, x)) == sum(weights) // 2 + 1)  # an equality no subset may meet
    m.minimize(sum(x))
    outcome = run_highs(m.highs(), _values, 0.001)
    assert not outcome.proved and not outcome.infeasible and outcome.message == "Time limit reached"


def test_a_coefficient_beyond_highs_range_is_named():
    """HiGHS refuses a matrix value above 1e15 (an LLM-sized layer's counts
    times a word constant); the message says which and what to use."""
    model = LinearModel()
    x = model.column(0, 10)
    model.add(x * 4.5e15 <= 1e17)
    with pytest.raises(ValueError, match=r"a coefficient of 4.5e\+15 is beyond its limit of 1e\+15 "
                                         r"\(a layer this large needs method cpsat\)"):
        model.highs()
