"""A time-out's answer does not depend on whether the heuristics are scored:
``heuristics=False`` (``--no-heuristics``) only leaves them out of the
result, it still returns the better heuristic solution when the exact
method stopped with a worse one."""

from __future__ import annotations

import toy_family

import mapcert
from mapcert.formulations.family import Attempt, Status

BAG = ("family: knapsack\ncapacity: 10\nitems:\n  - {name: a, weight: 5, value: 10}\n"
       "  - {name: b, weight: 4, value: 40}\n  - {name: c, weight: 6, value: 30}\n  - {name: d, weight: 3, value: 50}\n")


def _stopped_early(problem, time_limit):
    """Stopped by its limit holding a poor solution: everything left out but d."""
    return Attempt(Status.FEASIBLE, frozenset({"a", "b", "c"}), 80.0, None, 0.1, "time limit reached", "cpsat")


def test_the_answer_is_the_same_with_or_without_scored_heuristics(monkeypatch):
    monkeypatch.setattr(toy_family, "_cpsat", _stopped_early)
    scored = mapcert.solve(mapcert.load_text(BAG))
    unscored = mapcert.solve(mapcert.load_text(BAG), heuristics=False)
    assert scored.objective == unscored.objective < 80  # greedy's packing beats the method's
    assert "heuristic greedy" in unscored.method and unscored.status == Status.FEASIBLE
    assert scored.heuristics and not unscored.heuristics
