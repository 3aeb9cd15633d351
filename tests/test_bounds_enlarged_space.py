"""The rigorous two-level bounds against schedules wider than any mapping space.

``schedule_replay`` executes loop nests with every dimension (R and S too)
split at a non-dividing tile, the fourteen loops in a random order, and
random permutations of the MACs, on an element-granular buffer (halo reuse
and any other reuse happen whenever the data is still there).  No rigorous
bound may exceed the traffic any of them needs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mapcert.formulations.tiling.problem import Buffer, ConvLayer, Precision, TilingProblem
from mapcert.formulations.tiling.solve import solve_tiling
from mapcert.validation.bounds import capped_instance, tiling_bounds
from mapcert.validation.capped_segment import _least_cost

from schedule_replay import replay_bits, schedules

LAYERS = [
    ConvLayer("conv3x3", 1, 4, 3, 5, 5, 3, 3),
    ConvLayer("stride2", 1, 3, 2, 4, 4, 3, 3, stride=(2, 2)),
    ConvLayer("matmul", 2, 6, 8, 3, 3),
    ConvLayer("short-reduction", 2, 8, 2, 4, 4),  # two MACs per output: the capped bound's caps bind
]
PRECISIONS = [Precision(), Precision(8, 8, 8, 8), Precision(16, 4, 8, 24)]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
@pytest.mark.parametrize("precision", PRECISIONS, ids=lambda p: f"{p.inputs}-{p.weights}-{p.outputs}-{p.psums}")
def test_no_schedule_moves_less_than_a_rigorous_bound(layer, precision):
    layer = replace(layer, precision=precision)
    rng = np.random.default_rng(17)
    smallest = precision.inputs + precision.weights + precision.psums
    for capacity in (smallest, 3 * smallest, 10 * smallest):
        problem = TilingProblem(layer, Buffer("glb", capacity))
        bounds = {name: b.bytes for name, b in tiling_bounds(problem).items() if b.rigorous}
        for macs in schedules(layer, rng, 3):
            moved = replay_bits(layer, macs, capacity) / 8
            for name, value in bounds.items():
                assert moved >= value - 1e-9, (name, capacity, moved, value)


def test_the_read_segment_bound_is_the_binding_one_on_small_buffers():
    """The test above would be empty if the new bound never bit."""
    layer = replace(LAYERS[0], precision=Precision())
    bounds = tiling_bounds(TilingProblem(layer, Buffer("glb", 120)))
    assert bounds["read_segment"].bytes > max(bounds["compulsory"].bytes, bounds["hong_kung"].bytes)


def test_the_capped_segment_bound_binds_where_a_reduction_is_short():
    """The capped bound must be what the enlarged-space test checks on these
    instances, or that test proves nothing about it."""
    layer = replace(LAYERS[3], precision=Precision())
    bounds = tiling_bounds(TilingProblem(layer, Buffer("glb", 40)))
    others = max(b.bytes for name, b in bounds.items() if b.rigorous and name not in ("capped_segment", "rigorous"))
    assert bounds["capped_segment"].bytes > 1.05 * others


def test_the_least_cost_of_a_segment_is_exact_and_never_above_a_grid_search():
    """The KKT enumeration must return the least bits that allow v MACs: a
    value above a point that allows them would overstate the bound."""
    layer = replace(LAYERS[0], precision=Precision(16, 4, 8, 24))
    inst = capped_instance(TilingProblem(layer, Buffer("glb", 400)))
    grid = np.geomspace(1e-3, 1.0, 140)
    a, b, c = np.meshgrid(grid * inst.inputs, grid * inst.weights, grid * inst.outputs, indexing="ij")
    macs = np.minimum.reduce([np.sqrt(inst.reuse_max * a * b * c), inst.input_cap * a,
                              inst.weight_cap * b, inst.output_cap * c])
    cost = inst.input_bits * a + inst.weight_bits * b + inst.psum_bits * c
    for v in (5.0, 40.0, 150.0, 400.0):
        for floor in (0.0, 10.0):
            allowed = (macs >= v) & (c >= floor)
            searched = cost[allowed].min()
            exact = float(_least_cost(np.array([v]), inst, np.array([floor]))[0])
            assert exact <= searched + 1e-6, (v, floor, exact, searched)
            assert exact >= 0.9 * searched  # the grid's steps are 5% apart, (v, floor, exact, searched)


@pytest.mark.parametrize("capacity", [40, 120])
def test_no_proved_optimum_is_below_the_capped_segment_bound(capacity):
    """The solvers' proved optima on small layers are schedules too."""
    for layer in LAYERS:
        problem = TilingProblem(replace(layer, precision=Precision()), Buffer("glb", capacity))
        result = solve_tiling(problem, "cpsat", 60)
        if result.status == "optimal":
            assert result.objective >= tiling_bounds(problem)["capped_segment"].bytes - 1e-9
