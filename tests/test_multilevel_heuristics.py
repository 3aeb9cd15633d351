"""Multi-level heuristic mappers return valid mappings, never below the optimum."""

from __future__ import annotations

import pytest

from mapcert.formulations.tiling.multilevel.problem import MultiLevelMapping, MultiLevelProblem
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.hierarchy import Hierarchy, MemoryLevel, hierarchy_preset
from mapcert.solvers.multilevel_heuristics import HEURISTICS

SMALL = Hierarchy("small", (
    MemoryLevel("DRAM", read_energy=200, write_energy=200),
    MemoryLevel("GLB", capacity_bits=8 * 96, holds=frozenset({"inputs", "outputs"}), read_energy=6, write_energy=6),
    MemoryLevel("RF", capacity_bits=8 * 16, per_pe=True, read_energy=1, write_energy=1),
), rows=2, cols=2, mac_energy=1)


@pytest.mark.parametrize("objective", ["energy", "offchip_traffic", "latency"])
def test_heuristics_are_valid_and_never_beat_the_optimum(objective):
    problem = MultiLevelProblem(ConvLayer(name="t", N=1, M=4, C=2, P=4, Q=2, R=3, S=1), SMALL, objective=objective)
    optimum = solve_multilevel(problem, "enumerate")
    assert optimum.status == "optimal"
    for name, heuristic in HEURISTICS.items():
        mapping = heuristic(problem)
        assert isinstance(mapping, MultiLevelMapping), name
        metrics = evaluate_multilevel(problem, mapping)
        assert metrics.fits, name
        assert metrics.objective(objective) >= optimum.objective - 1e-9, name


def test_random_sampling_is_seeded():
    problem = MultiLevelProblem(ConvLayer(name="t", N=1, M=64, C=64, P=14, Q=14, R=3, S=3), hierarchy_preset("eyeriss"))
    first = HEURISTICS["random"](problem, samples=4096, seed=3)
    again = HEURISTICS["random"](problem, samples=4096, seed=3)
    assert first == again


@pytest.mark.parametrize("preset", ["eyeriss-like", "simba-like", "tpu-like"])
def test_greedy_mappers_keep_the_presets_constraints(preset):
    """The presets fix spatial dimensions and register factors: the greedy
    mappers start from what is fixed, so their mappings are valid ones."""
    from mapcert.formulations.tiling.multilevel.constraints import violations
    from mapcert.instances import load_text

    problem = load_text("family: tiling\nworkload: {name: l, op: conv2d, dims: {N: 1, M: 16, C: 8, P: 7, Q: 7, "
                        f"R: 3, S: 3}}}}\nhardware: {preset}\nobjective: energy\n")
    for name in ("greedy-largest-tile", "zigzag-orders"):
        mapping = HEURISTICS[name](problem)
        assert isinstance(mapping, MultiLevelMapping), name
        assert not violations(problem.constraints, problem.hierarchy, mapping), name
        assert evaluate_multilevel(problem, mapping).fits, name


def _polish_keeps_a_valid_mapping_never_worse(pair) -> bool:
    """polish() from a sampled mapping: it fits, keeps the instance's
    constraints, is never worse than where it started, and never below the
    enumerated optimum. True when it improved the start."""
    from mapcert.formulations.tiling.multilevel.constraints import violations
    from mapcert.formulations.tiling.multilevel.problem import mapping_problems
    from mapcert.solvers.multilevel_heuristics import polish, random_sampling

    _, problem = pair
    if problem.objective == "edp":
        from dataclasses import replace

        problem = replace(problem, objective="energy")
    start = random_sampling(problem, samples=50, seed=1)
    if start is None:
        return False
    before = evaluate_multilevel(problem, start)
    polished = polish(problem, start)
    after = evaluate_multilevel(problem, polished)
    assert mapping_problems(problem.layer, problem.hierarchy, polished) == []
    assert after.fits
    assert violations(problem.constraints, problem.hierarchy, polished) == [] or \
        violations(problem.constraints, problem.hierarchy, start) != []
    if before.fits:
        assert after.objective(problem.objective) <= before.objective(problem.objective) + 1e-9
    optimum = solve_multilevel(problem, "enumerate")
    if optimum.status == "optimal":
        assert after.objective(problem.objective) >= optimum.objective - 1e-9
    return after.objective(problem.objective) < before.objective(problem.objective) - 1e-9


def test_polish_keeps_a_valid_mapping_and_never_makes_it_worse():
    """Coordinate descent on random constrained instances, with keep or
    bypass chosen on some of them; it must improve some starts (a polish
    that never moves would pass the other checks)."""
    from hypothesis import given, settings, strategies as st

    from test_multilevel_bypass import instances as bypass_instances
    from test_multilevel_constraints import constrained

    improved = []

    @settings(max_examples=25, deadline=None, derandomize=True, database=None)
    @given(st.one_of(constrained(), constrained(base=bypass_instances)))
    def check(pair):
        improved.append(_polish_keeps_a_valid_mapping_never_worse(pair))

    check()
    assert any(improved), "polish never improved a sampled start"
