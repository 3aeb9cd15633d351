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
from mapcert.validation.bounds import tiling_bounds

from schedule_replay import all_macs, loop_nest_order, replay_bits

LAYERS = [
    ConvLayer("conv3x3", 1, 4, 3, 5, 5, 3, 3),
    ConvLayer("stride2", 1, 3, 2, 4, 4, 3, 3, stride=(2, 2)),
    ConvLayer("matmul", 2, 6, 8, 3, 3),
]
PRECISIONS = [Precision(), Precision(8, 8, 8, 8), Precision(16, 4, 8, 24)]


def schedules(layer: ConvLayer, rng: np.random.Generator, count: int):
    """Random loop nests, a random MAC order, and output-stationary and
    weight-stationary nests (the orders good schedules use)."""
    for _ in range(count):
        yield loop_nest_order(layer, rng)
    macs = all_macs(layer)
    yield macs[rng.permutation(len(macs))]
    yield macs  # N, M, C, P, Q, R, S: outputs revisited per input channel
    yield macs[np.lexsort((macs[:, 2], macs[:, 6], macs[:, 5]))]  # reduction innermost


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
