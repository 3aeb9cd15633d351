"""An unfinished method's solution is optimal when a lower bound meets it.

A time-out whose bound already equals the objective (the method's own
bound, or a rigorous analytical one) has proved optimality; the result
says ``optimal`` and names the bound. A bound a hair below stays
``feasible``: there is no tolerance on a proof.
"""

from __future__ import annotations

import toy_family  # noqa: F401  (registers the toy family)
from toy_family import Knapsack, KnapsackFamily, ItemSpec

from mapcert.formulations.family import Attempt, Bound, Status
from mapcert.validation.certificate import certify

FAMILY = KnapsackFamily()
# items that fill the bag exactly: the fractional bound is the optimum (value 10 left out)
BAG = Knapsack("bag", 9, (ItemSpec(name="a", weight=5, value=10), ItemSpec(name="b", weight=4, value=40),
                          ItemSpec(name="c", weight=5, value=30)))
BEST = frozenset({"a"})


def _certify(best_bound, bounds):
    attempt = Attempt(Status.FEASIBLE, BEST, 10.0, best_bound, 1.0, "time limit reached", "cpsat")
    return certify(FAMILY, BAG, attempt, bounds, functional=False)


def test_the_methods_bound_at_the_objective_proves_it():
    cert = _certify(10.0, [])
    assert cert.status == Status.OPTIMAL
    assert "time limit reached" in cert.message and "the method's bound" in cert.message
    assert any(c.name == "a lower bound meets the objective" and c.passed for c in cert.checks)


def test_a_rigorous_bound_at_the_objective_proves_it():
    bounds = FAMILY.bounds(BAG)
    assert bounds[0].value == 10.0  # the bag is filled exactly by b and c
    cert = _certify(3.0, bounds)
    assert cert.status == Status.OPTIMAL
    assert "rigorous bound 'fractional'" in cert.message


def test_a_bound_just_below_or_not_rigorous_leaves_it_feasible():
    assert _certify(10.0 - 1e-9, []).status == Status.FEASIBLE
    reference = [Bound("asymptotic", 10.0, False, "a reference, not a proof")]
    assert _certify(None, reference).status == Status.FEASIBLE


def test_a_bound_above_a_worse_solution_is_a_failed_check_not_a_proof():
    attempt = Attempt(Status.FEASIBLE, frozenset({"b"}), 40.0, 50.0, 1.0, "", "cpsat")
    cert = certify(FAMILY, BAG, attempt, [], functional=False)
    assert cert.status == Status.ERROR


TIGHT_BAG = ("family: knapsack\ncapacity: 9\nitems:\n  - {name: a, weight: 5, value: 10}\n"
             "  - {name: b, weight: 4, value: 40}\n  - {name: c, weight: 5, value: 30}\n")


def _timed_out(problem, time_limit):
    """A method stopped by its limit with the optimal solution and no bound of its own."""
    return Attempt(Status.FEASIBLE, frozenset({"a"}), 10.0, None, 0.1, "time limit reached", "cpsat")


def test_solve_and_verify_accept_the_proof_by_a_rigorous_bound(monkeypatch):
    import mapcert

    monkeypatch.setattr(toy_family, "_cpsat", _timed_out)
    result = mapcert.solve(mapcert.load_text(TIGHT_BAG), heuristics=False)
    assert result.status == Status.OPTIMAL and result.gap == 0
    assert "rigorous bound 'fractional'" in result.message
    verification = mapcert.verify(result, time_limit=5)
    assert verification.passed, [c for c in verification.checks if not c.passed]
    status = next(c for c in verification.checks if c.name == "status: optimum re-proved")
    assert "rigorous bound 'fractional'" in status.detail
    # the same time-out on a bag whose bound is below the optimum proves nothing
    loose = mapcert.solve(mapcert.load_text(TIGHT_BAG.replace("capacity: 9", "capacity: 10")), heuristics=False)
    assert loose.status == Status.FEASIBLE
