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


def test_pes_whose_windows_overlap_below_the_pe_level():
    """Filter rows and output rows both unrolled across PEs, stride 4 and an
    11-row window, with 5 output rows per PE: the PEs' input rows start 20
    rows apart and their union has gaps, not one contiguous window."""
    from mapcert.formulations.tiling.multilevel import DIMS, LevelLoops, MultiLevelMapping

    layer = ConvLayer(name="t", N=1, M=1, C=1, P=55, Q=1, R=11, S=1, stride=(4, 4))
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9),
                           MemoryLevel("RF", capacity_bits=10**9, per_pe=True, holds=frozenset(["weights", "outputs"]))),
                     rows=11, cols=11)
    problem = MultiLevelProblem(layer, hier)
    one = dict.fromkeys(DIMS, 1)
    mapping = MultiLevelMapping(levels=(LevelLoops(dict(one), DIMS), LevelLoops(dict(one), DIMS),
                                        LevelLoops(dict(one, P=5), DIMS)),
                                spatial_rows={"R": 11}, spatial_cols={"P": 11})
    metrics = evaluate_multilevel(problem, mapping)
    cycle_level = run_multilevel(problem, mapping)
    vectorized = run_multilevel_vectorized(problem, mapping)
    assert metrics.reads[1]["inputs"] == cycle_level.reads[1]["inputs"] == vectorized.reads[1]["inputs"] == 605
    assert vectorized.reads == cycle_level.reads == metrics.reads
