"""A time-out's answer with and without scored heuristics:
``heuristics=False`` (``--no-heuristics``) leaves them out of the result,
and still returns the better heuristic solution when the exact method
stopped early with a worse one; after a method that used its whole limit
it keeps the method's, on time."""

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


def test_without_heuristics_a_method_that_used_its_whole_limit_is_not_followed_by_them(monkeypatch):
    """With the heuristics off, the fallback runs only within what is left of the limit:
    a method that stopped at its limit returns its own solution, on time."""
    import time

    def used_it_all(problem, time_limit):
        time.sleep(0.05)
        return _stopped_early(problem, time_limit)

    monkeypatch.setattr(toy_family, "_cpsat", used_it_all)
    unscored = mapcert.solve(mapcert.load_text(BAG), time_limit=0.01, heuristics=False)
    assert unscored.objective == 80 and unscored.method == "cpsat"
    scored = mapcert.solve(mapcert.load_text(BAG), time_limit=0.01)
    assert scored.objective < 80 and "heuristic greedy" in scored.method  # asked for: they run anyway
