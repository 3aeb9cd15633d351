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
