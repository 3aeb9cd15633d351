"""The multi-level functional model computes the layer and moves exactly
the words the cost model counts, at every level."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from mapcert.formulations.tiling.multilevel import MultiLevelProblem
from mapcert.formulations.tiling.multilevel_cost import evaluate_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.functional.multilevel import run_multilevel
from mapcert.hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from mapcert.hardware.hierarchy import Hierarchy, MemoryLevel

from helpers import random_multilevel_mapping


@st.composite
def cases(draw):
    layer = ConvLayer(
        name="t", N=draw(st.sampled_from([1, 2])), M=draw(st.sampled_from([2, 4])), C=draw(st.sampled_from([1, 2, 3])),
        P=draw(st.sampled_from([2, 3, 4])), Q=draw(st.sampled_from([1, 2])), R=draw(st.sampled_from([1, 2, 3])),
        S=draw(st.sampled_from([1, 2])), stride=(draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2]))),
        dilation=(draw(st.sampled_from([1, 2])), 1),
    )
    holds = draw(st.sampled_from([("inputs", "weights", "outputs"), ("inputs", "outputs"), ("weights",), ("outputs",)]))
    private = draw(st.sampled_from([(False, True), (True, True), (False, False)]))
    hier = Hierarchy("h", (
        MemoryLevel("DRAM"),
        MemoryLevel("GLB", capacity_bits=10**9, holds=frozenset(holds), per_pe=private[0]),
        MemoryLevel("RF", capacity_bits=10**9, per_pe=private[1],
                    holds=frozenset(draw(st.sampled_from([("inputs", "weights", "outputs"), ("outputs",), ("inputs", "weights")])))),
    ), rows=draw(st.sampled_from([1, 2])), cols=draw(st.sampled_from([1, 2, 3])))
    return MultiLevelProblem(layer, hier), draw(st.integers(0, 10**6)), draw(st.booleans())


@settings(max_examples=60, deadline=None, derandomize=True)
@given(cases())
def test_vectorized_model_moves_what_the_cycle_level_model_moves(case):
    problem, seed, full_orders = case
    mapping = random_multilevel_mapping(problem, random.Random(seed), full_orders)
    cycle_level = run_multilevel(problem, mapping, seed=seed % 7)
    vectorized = run_multilevel_vectorized(problem, mapping, seed=seed % 7)
    metrics = evaluate_multilevel(problem, mapping)
    assert vectorized.outputs_match, vectorized.max_abs_error
    assert vectorized.reads == cycle_level.reads == metrics.reads
    assert vectorized.writes == cycle_level.writes == metrics.writes
    assert vectorized.cycles == cycle_level.cycles == metrics.compute_cycles
