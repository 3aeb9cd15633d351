"""ResNet-18 on the Eyeriss-like preset, energy objective: CP-SAT proves
every distinct conv layer, the optimum is above the rigorous bound, the
vectorized functional model computes the layer with exactly the counted
reads and writes, and every heuristic mapper lands at or above it; the
prime-exponent MILP proves the same optimum (slow: about 30 minutes, most
of it the MILP on conv1 and the layer1 and layer2 convolutions)."""

from __future__ import annotations

import pytest

from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.hardware.hierarchy import hierarchy_preset
from mapcert.formulations.tiling.multilevel.schema import _network_layers, MultiLevelSpec
from mapcert.formulations.registry import family_of
from mapcert.instances import Located
from mapcert.solvers.multilevel_heuristics import HEURISTICS
from mapcert.validation.multilevel_bounds import multilevel_bounds


def resnet18_on_eyeriss():
    spec = MultiLevelSpec(family="tiling", workload="resnet18", hardware="eyeriss", objective="energy")
    net = _network_layers("resnet18", hierarchy_preset("eyeriss"), spec, Located("resnet18"), "resnet18")
    return [item.problem for item in net.layers]


@pytest.mark.slow
@pytest.mark.parametrize("problem", resnet18_on_eyeriss(), ids=lambda p: p.layer.name)
def test_resnet18_eyeriss_layers_are_proved(problem):
    result = solve_multilevel(problem, "cpsat", time_limit=300)
    assert result.status == "optimal", result.message
    assert result.objective >= multilevel_bounds(problem).objective
    assert result.metrics.array_boundary_words >= multilevel_bounds(problem).array_boundary_words
    run = family_of(problem).functional(problem, result.mapping)
    assert run.ran and run.passed, run
    for name, heuristic in HEURISTICS.items():
        mapping = heuristic(problem)
        assert mapping is not None, name
        assert evaluate_multilevel(problem, mapping).energy >= result.objective, name


@pytest.mark.slow
@pytest.mark.parametrize("problem", resnet18_on_eyeriss(), ids=lambda p: p.layer.name)
def test_both_exact_methods_prove_the_same_resnet18_optimum(problem):
    """The prime-exponent MILP and CP-SAT prove one optimum on every distinct
    conv layer (the MILP needs up to about ten minutes on conv1; the same
    check with timings: benchmarks/multilevel_exact_agree.py)."""
    cp = solve_multilevel(problem, "cpsat", time_limit=300)
    milp = solve_multilevel(problem, "milp", time_limit=900)
    assert cp.status == milp.status == "optimal", (cp.message, milp.message)
    assert milp.objective == cp.objective
