"""The multi-level functional model computes the layer and moves exactly
the words the cost model counts, at every level."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
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
    from mapcert.formulations.tiling.multilevel.problem import DIMS, LevelLoops, MultiLevelMapping

    layer = ConvLayer(name="t", N=1, M=1, C=1, P=55, Q=1, R=11, S=1, stride=(4, 4))
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9),
                           MemoryLevel("RF", capacity_bits=10**9, per_pe=True, holds=frozenset(["weights", "outputs"]))),
                     rows=11, cols=11)
    problem = MultiLevelProblem(layer, hier)
    one = dict.fromkeys(DIMS, 1)
    mapping = MultiLevelMapping.on_array(levels=(LevelLoops(dict(one), DIMS), LevelLoops(dict(one), DIMS),
                                                 LevelLoops(dict(one, P=5), DIMS)),
                                         rows={"R": 11}, cols={"P": 11})
    metrics = evaluate_multilevel(problem, mapping)
    cycle_level = run_multilevel(problem, mapping)
    vectorized = run_multilevel_vectorized(problem, mapping)
    assert metrics.reads[1]["inputs"] == cycle_level.reads[1]["inputs"] == vectorized.reads[1]["inputs"] == 605
    assert vectorized.reads == cycle_level.reads == metrics.reads


def many_tiles_problem():
    """A small layer whose DRAM loops run 102,400 one-word-deep tiles (M, C,
    P, Q all split at DRAM down to one index; R and S stay whole): above
    the 100,000 tiles the numeric execution used to refuse, yet about a
    million cycles."""
    from mapcert.formulations.tiling.multilevel.problem import DIMS, LevelLoops, MultiLevelMapping

    layer = ConvLayer(name="t", N=1, M=16, C=8, P=40, Q=40, R=3, S=3, stride=(2, 2))
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9),
                           MemoryLevel("RF", capacity_bits=10**9, per_pe=True)), rows=1, cols=2)
    one = dict.fromkeys(DIMS, 1)
    dram_order = ("N", "G", "P", "C", "M", "Q", "R", "S")
    mapping = MultiLevelMapping.on_array(levels=(LevelLoops(dict(one, M=8, C=8, P=40, Q=40), dram_order),
                                                 LevelLoops(dict(one), DIMS),
                                                 LevelLoops(dict(one, R=3, S=3), DIMS)),
                                         cols={"M": 2})
    return MultiLevelProblem(layer, hier), mapping


def test_more_than_100000_dram_tiles_run_and_match():
    from mapcert.hardware.functional.multilevel_vectorized import _Machine

    problem, mapping = many_tiles_problem()
    assert _Machine(problem, mapping).dram_tiles() == 102_400
    run = run_multilevel_vectorized(problem, mapping)
    metrics = evaluate_multilevel(problem, mapping)
    assert run.outputs_match, run.max_abs_error
    assert run.reads == metrics.reads
    assert run.writes == metrics.writes
    assert run.cycles == metrics.compute_cycles


def _corrupt(kind: str):
    """A wrong execution: ``_dram_origins`` returning a doubled, a missing or
    a shifted DRAM tile, or a tile one row short."""
    import numpy as np

    from mapcert.hardware.functional import multilevel_vectorized as mv

    real = mv._dram_origins

    def corrupted(machine):
        origins = real(machine)
        if kind == "doubled tile":
            origins["C"] = np.concatenate([origins["C"], origins["C"][:1]])
        elif kind == "missing tile":
            origins["P"] = origins["P"][:-1]
        elif kind == "shifted tile":
            origins["Q"] = origins["Q"] + np.eye(1, len(origins["Q"]), dtype=np.int64)[0]
        elif kind == "short tile":
            machine.block["P"] -= 1
        return origins

    return corrupted


@pytest.mark.parametrize("kind", ["doubled tile", "missing tile", "shifted tile", "short tile"])
def test_a_corrupted_execution_is_detected(kind, monkeypatch):
    """The aggregated execution still sees every tile: a doubled, missing or
    shifted DRAM tile, or a tile extent one short, changes the outputs."""
    from mapcert.formulations.tiling.multilevel.problem import DIMS, LevelLoops, MultiLevelMapping
    from mapcert.hardware.functional import multilevel_vectorized as mv

    layer = ConvLayer(name="t", N=1, M=4, C=4, P=6, Q=6, R=3, S=3)
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9),
                           MemoryLevel("RF", capacity_bits=10**9, per_pe=True)), rows=2, cols=2)
    one = dict.fromkeys(DIMS, 1)
    mapping = MultiLevelMapping.on_array(levels=(LevelLoops(dict(one, M=2, C=2, P=3, Q=3), DIMS),
                                                 LevelLoops(dict(one, P=2, Q=2), DIMS),
                                                 LevelLoops(dict(one, R=3, S=3, C=2), DIMS)),
                                         rows={"M": 2})
    problem = MultiLevelProblem(layer, hier)
    assert run_multilevel_vectorized(problem, mapping).outputs_match
    monkeypatch.setattr(mv, "_dram_origins", _corrupt(kind))
    run = run_multilevel_vectorized(problem, mapping)
    assert not run.outputs_match
    metrics = evaluate_multilevel(problem, mapping)  # the counts do not depend on the numbers
    assert run.reads == metrics.reads and run.writes == metrics.writes


def test_chunk_sizes_do_not_change_the_run(monkeypatch):
    """Key sequences split into many blocks and the numeric execution into
    many chunks count and compute exactly what one block and one chunk do."""
    from mapcert.hardware.functional import multilevel_vectorized as mv

    problem, mapping = many_tiles_problem()
    whole = run_multilevel_vectorized(problem, mapping)
    monkeypatch.setattr(mv, "CHUNK", 50)
    monkeypatch.setattr(mv, "NUMERIC_CHUNK_WORDS", 5_000)
    split = run_multilevel_vectorized(problem, mapping)
    assert split.outputs_match
    assert (split.reads, split.writes, split.cycles) == (whole.reads, whole.writes, whole.cycles)


@pytest.mark.parametrize("stride, dilation", [((1, 1), (1, 1)), ((2, 1), (1, 2))])
def test_the_shifted_tile_ids_are_the_ids_of_each_tile(stride, dilation):
    """Many tile origins at once (an array's instances) take the origin
    tile's ids plus each origin's shift; that must be, word for word and in
    order, what reading each tile on its own gives."""
    import numpy as np

    from mapcert.formulations.tiling.multilevel.problem import DIMS
    from mapcert.hardware.functional.multilevel_vectorized import _Machine

    layer = ConvLayer("l", 2, 6, 4, 5, 4, 3, 2, stride=stride, dilation=dilation, groups=1)
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9),
                           MemoryLevel("RF", capacity_bits=10**9, per_pe=True)), rows=4, cols=4)
    problem = MultiLevelProblem(layer, hier)
    rnd = random.Random(5)
    for _ in range(10):
        machine = _Machine(problem, random_multilevel_mapping(problem, rnd, full_orders=False))
        for level in (1, 2):
            tile = machine.T[level]
            # origins on the tile grid, every tile inside the layer
            grids = [range(0, machine.size[d] - tile[d] + 1, tile[d]) for d in DIMS]
            origins = np.array([[rnd.choice(list(g)) for g in grids] for _ in range(6)], dtype=np.int64)
            for tensor in ("inputs", "weights", "outputs"):
                each = np.concatenate([machine.word_ids(tensor, level, row[None, :]) for row in origins])
                assert np.array_equal(machine.word_ids(tensor, level, origins), each)
