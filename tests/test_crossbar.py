"""Crossbar allocation: exact methods against brute force, the bisection
third opinion, bounds below every optimum, heuristics above it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapcert import workload_library
from mapcert.formulations.crossbar import CrossbarLayer, CrossbarProblem, evaluate, layers_from_network, solve_crossbar
from mapcert.formulations.crossbar.cost import Allocation
from mapcert.formulations.crossbar.exact import copy_candidates, options
from mapcert.hardware.pim import pim_chip
from mapcert.solvers.crossbar_heuristics import CROSSBAR_HEURISTICS
from mapcert.validation.crossbar_bounds import period_bounds

SMALL_CHIP = pim_chip("neurosim-rram", rows=16, columns=16, crossbars_per_pe=2, pes_per_tile=2, tiles=12,
                      bandwidth_bits_per_cycle=64)


def test_copy_candidates_cover_every_stage_length():
    layer = CrossbarLayer("l", C=4, M=4, P=7, Q=5)
    candidates = copy_candidates(layer)
    lengths = {-(-35 // r) for r in range(1, 36)}
    assert {-(-35 // r) for r in candidates.tolist()} == lengths
    assert len(candidates) == len(lengths)


def test_crossbars_per_copy_follow_the_two_layouts():
    chip = pim_chip("neurosim-rram")  # 128 x 128, 8 one-bit slices
    layer = CrossbarLayer("conv", C=64, M=64, P=56, Q=56, R=3, S=3)
    p = CrossbarProblem((layer,), chip)
    assert p.crossbars_per_copy(layer, "conventional") == 5 * 4  # ceil(576/128) x ceil(512/128)
    assert p.crossbars_per_copy(layer, "split") == 9 * 1 * 4
    assert p.input_bits(layer, "conventional") == 56 * 56 * 576 * 8
    assert p.input_bits(layer, "split") == 64 * 58 * 58 * 8


def brute_force(problem: CrossbarProblem) -> int | None:
    best = None
    for combo in itertools.product(*options(problem)):
        allocation = Allocation([o.style for o in combo], [o.copies for o in combo])
        metrics = evaluate(problem, allocation)
        if metrics.feasible:
            value = metrics.objective(problem.objective)
            best = value if best is None else min(best, value)
    return best


@st.composite
def small_problems(draw):
    layers = tuple(
        CrossbarLayer(f"l{i}", C=draw(st.integers(1, 40)), M=draw(st.integers(1, 12)),
                      P=draw(st.integers(1, 5)), Q=draw(st.integers(1, 4)), R=draw(st.sampled_from([1, 3])),
                      S=draw(st.sampled_from([1, 3])))
        for i in range(draw(st.integers(1, 3)))
    )
    return CrossbarProblem(
        layers, SMALL_CHIP,
        objective=draw(st.sampled_from(["bottleneck", "latency", "energy"])),
        styles=draw(st.sampled_from([("conventional",), ("split",), ("conventional", "split")])),
        one_layer_per_tile=draw(st.booleans()),
        bandwidth=draw(st.booleans()),
        budget=draw(st.integers(4, 48)),
    )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(small_problems())
def test_exact_methods_agree_with_brute_force(problem):
    expected = brute_force(problem)
    milp = solve_crossbar(problem, "milp")
    cpsat = solve_crossbar(problem, "cpsat")
    if expected is None:
        assert milp.status == cpsat.status == "infeasible"
        return
    assert milp.status == cpsat.status == "optimal"
    assert milp.objective == pytest.approx(expected) and cpsat.objective == pytest.approx(expected)
    if problem.objective == "bottleneck":
        assert period_bounds(problem)["rigorous"] <= expected
        simple = not problem.one_layer_per_tile and not problem.bandwidth
        if simple:
            assert solve_crossbar(problem, "bisection").objective == expected
    for heuristic in CROSSBAR_HEURISTICS.values():
        metrics = evaluate(problem, heuristic(problem))
        if metrics.feasible:
            assert metrics.objective(problem.objective) >= expected - 1e-6


@pytest.mark.parametrize("budget", [12000, 16384, 32768])
def test_resnet34_allocations_are_proved_and_bounded(budget):
    layers = tuple(layers_from_network(workload_library.network("resnet34")))
    chip = pim_chip("neurosim-rram")
    for extra in ({}, {"one_layer_per_tile": True, "bandwidth": True}):
        problem = CrossbarProblem(layers, chip, budget=budget, **extra)
        milp, cpsat = solve_crossbar(problem, "milp"), solve_crossbar(problem, "cpsat")
        assert milp.status == cpsat.status == "optimal" and milp.objective == cpsat.objective
        assert period_bounds(problem)["rigorous"] <= milp.objective
        if not extra:
            assert solve_crossbar(problem, "bisection").objective == milp.objective
        greedy = evaluate(problem, CROSSBAR_HEURISTICS["greedy-bottleneck"](problem))
        assert greedy.period >= milp.objective


def test_too_small_a_budget_is_infeasible_with_a_reason():
    layers = tuple(layers_from_network(workload_library.network("resnet34")))
    result = solve_crossbar(CrossbarProblem(layers, pim_chip("neurosim-rram"), budget=4000))
    assert result.status == "infeasible" and "crossbars" in result.message
