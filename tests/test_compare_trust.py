"""`compare` certifies an optimum only on the terms `solve` does: the exact
methods agree, the functional model moves what evaluate counts, and the
optimum lies at or above every rigorous bound. A row whose functional run
disagrees says so rather than show a plain value."""

from __future__ import annotations

from pathlib import Path

import pytest

import mapcert
from mapcert.formulations.family import Bound, FunctionalRun, Status
from mapcert.formulations.registry import family_of
from mapcert.pipeline import compare

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "small_three_level.yaml"


@pytest.fixture
def problem():
    return mapcert.load(EXAMPLE)


def test_an_optimum_the_functional_model_contradicts_is_not_certified(problem, monkeypatch):
    family = type(family_of(problem))
    monkeypatch.setattr(family, "functional", lambda self, p, s, seed=0: FunctionalRun(True, False))
    comparison = compare(problem, ["cpsat", "paper-dataflow"], 30)
    assert comparison.optimum is None and comparison.status == Status.ERROR
    assert "no optimum is certified: the functional model disagrees with evaluate on cpsat's optimum" \
        in comparison.message
    assert all("its value is not trusted" in row.note for row in comparison.rows)


def test_an_optimum_below_a_rigorous_bound_is_not_certified(problem, monkeypatch):
    family = type(family_of(problem))
    monkeypatch.setattr(family, "bounds", lambda self, p: [Bound("planted", 10 ** 9, True, "above every mapping")])
    comparison = compare(problem, ["cpsat"], 30, functional=False)
    assert comparison.optimum is None and comparison.status == Status.ERROR
    assert "lies below the rigorous lower bound 1,000,000,000" in comparison.message


def test_an_honest_comparison_is_certified(problem):
    comparison = compare(problem, ["cpsat", "milp"], 30)
    assert comparison.status == Status.OPTIMAL and comparison.optimum == 30960
    assert not any("not trusted" in row.note for row in comparison.rows)


def test_an_honest_error_result_verifies_its_gap_as_none(problem, monkeypatch):
    """A result that solve itself marked ERROR (its functional run failed)
    stores no gap; verify, re-deriving the same failure, expects none either,
    so only the failure is reported, not the gap."""
    from mapcert.validation.verify import verify

    family = type(family_of(problem))
    monkeypatch.setattr(family, "functional", lambda self, p, s, seed=0: FunctionalRun(True, False))
    result = mapcert.solve(problem, heuristics=False)
    assert result.status == Status.ERROR and result.gap is None
    checks = verify(result.to_dict(), time_limit=30, methods=["cpsat"]).checks
    gap = next(c for c in checks if c.name.startswith("gap"))
    assert gap.passed, gap.detail
    status = next(c for c in checks if c.name == "status: re-derived")
    assert status.passed, status.detail
