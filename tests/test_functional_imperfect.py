"""Mappings with partial last tiles: the factors of a dimension multiply to
more than its extent, and the loops run over a nominal grid clipped to the
layer. Both functional models execute them: idle MAC units do nothing,
tiles hold only their words inside the layer, cycles in which every unit is
idle are skipped, and the fills follow the keys the active units need."""

from __future__ import annotations

import math
import random

import pytest

from mapcert.formulations.tiling.multilevel.problem import (DIMS, LevelLoops, MultiLevelMapping, MultiLevelProblem,
                                                            SpatialLoops, layer_extent)
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.functional import multilevel_vectorized as mv
from mapcert.hardware.functional import tiling as functional_tiling
from mapcert.hardware.functional.multilevel import run_multilevel
from mapcert.hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel

TENSORS = frozenset(("inputs", "weights", "outputs"))
ONE = dict.fromkeys(DIMS, 1)


def order(*outer: str) -> tuple[str, ...]:
    """A loop order with ``outer`` outermost, the other dimensions after them."""
    return tuple(outer) + tuple(d for d in DIMS if d not in outer)


def one_fanout() -> Hierarchy:
    """DRAM, a shared buffer, a 2 x 3 PE array, a per-PE register file."""
    return Hierarchy("one", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9),
                             MemoryLevel("RF", capacity_bits=10**9, per_pe=True)), rows=2, cols=3)


def two_fanouts(multicast: bool, reduction: bool) -> Hierarchy:
    """DRAM, a shared buffer that may keep or bypass each tensor, a 2 x 2 PE
    array, a PE buffer that may too, 1 x 3 lanes (with or without multicast
    and reduction), a register per lane."""
    return Hierarchy("two", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9, chosen=TENSORS),
                             MemoryLevel("PEBuf", capacity_bits=10**9, per_pe=True, chosen=TENSORS),
                             MemoryLevel("Reg", capacity_bits=10**9, per_pe=True)),
                     fanouts=(Fanout("PEs", 2, 2, 2), Fanout("lanes", 3, 1, 3, multicast, reduction)))


def random_imperfect_mapping(problem: MultiLevelProblem, rnd: random.Random, keep=None) -> MultiLevelMapping:
    """A mapping whose factors cover every dimension, most often with a
    partial last tile: per dimension the positions (temporal levels, fan-out
    rows and columns) are visited in random order, each takes a random
    factor up to what is still missing, and the last takes the ceiling of
    the rest. DRAM never splits R and S; the fan-outs' sizes are respected."""
    hier, layer = problem.hierarchy, problem.layer
    K = len(hier.levels)
    while True:
        temporal = [dict(ONE) for _ in range(K)]
        spatial = [({}, {}) for _ in hier.fanouts]
        for d in DIMS:
            slots = [("level", l) for l in range(K) if l > 0 or d not in "RS"]
            slots += [(axis, f) for f in range(len(hier.fanouts)) for axis in (0, 1)]
            rnd.shuffle(slots)
            covered = 1
            for i, (kind, where) in enumerate(slots):
                missing = -(-layer_extent(layer, d) // covered)
                factor = missing if i == len(slots) - 1 else rnd.choice([1, 1, rnd.randint(1, missing)])
                if kind == "level":
                    temporal[where][d] = factor
                elif factor > 1:
                    spatial[where][kind][d] = factor
                covered *= factor
        fanouts = tuple(SpatialLoops(rows, cols) for rows, cols in spatial)
        if all(math.prod(loops.rows.values()) <= fan.rows and math.prod(loops.cols.values()) <= fan.cols
               for loops, fan in zip(fanouts, hier.fanouts, strict=True)):
            break
    levels = tuple(LevelLoops(temporal[l], tuple(rnd.sample(DIMS, len(DIMS)))) for l in range(K))
    return MultiLevelMapping(levels=levels, fanouts=fanouts, keep=keep)


def partial(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> bool:
    """Whether some dimension's factors multiply to more than its extent."""
    return any(math.prod(mapping.factor(l, d) for l in range(len(mapping.levels))) * mapping.spatial(d)
               > layer_extent(problem.layer, d) for d in DIMS)


LAYERS = [ConvLayer(name="a", N=1, M=5, C=3, P=5, Q=7, R=3, S=3),
          ConvLayer(name="b", N=1, M=5, C=3, P=5, Q=7, R=3, S=3, stride=(2, 2)),
          ConvLayer(name="c", N=1, M=5, C=3, P=5, Q=7, R=3, S=3, stride=(2, 1), dilation=(2, 2)),
          ConvLayer(name="d", N=1, M=5, C=3, P=5, Q=3, R=3, S=1, dilation=(2, 1))]

KEEPS = {  # per level, the tensors it keeps (DRAM, GLB, PEBuf, Reg)
    "all": (TENSORS, TENSORS, TENSORS, TENSORS),
    "glb inputs+outputs, pebuf weights": (TENSORS, frozenset({"inputs", "outputs"}), frozenset({"weights"}), TENSORS),
    "glb weights, pebuf outputs": (TENSORS, frozenset({"weights"}), frozenset({"outputs"}), TENSORS),
}


def assert_models_agree(problem: MultiLevelProblem, mapping: MultiLevelMapping, seed: int = 0):
    cycle = run_multilevel(problem, mapping, seed=seed, max_steps=400_000)
    vectorized = run_multilevel_vectorized(problem, mapping, seed=seed)
    assert cycle.outputs_match and vectorized.outputs_match, (cycle.max_abs_error, vectorized.max_abs_error)
    assert cycle.reads == vectorized.reads
    assert cycle.writes == vectorized.writes
    assert cycle.cycles == vectorized.cycles
    return cycle


@pytest.mark.parametrize("layer", [pytest.param(layer, marks=pytest.mark.slow) if layer.name in "ac" else layer
                                   for layer in LAYERS], ids=lambda layer: layer.name)
def test_one_fanout_models_agree_on_partial_tiles(layer):
    """Random mappings with partial tiles on a shared buffer above a 2 x 3
    PE array: both models count the same reads, writes and cycles, and
    both compute the convolution."""
    problem = MultiLevelProblem(layer, one_fanout())
    rnd = random.Random(layer.name)
    clipped = 0
    for _ in range(3):
        mapping = random_imperfect_mapping(problem, rnd)
        clipped += partial(problem, mapping)
        assert_models_agree(problem, mapping, seed=rnd.randrange(7))
    assert clipped


TWO_FANOUT_CASES = [(multicast, reduction, keep, LAYERS[i % len(LAYERS)])
                    for i, ((multicast, reduction), keep) in enumerate(
                        (flags, keep) for flags in [(True, True), (False, False), (True, False)] for keep in KEEPS)]


@pytest.mark.parametrize("multicast,reduction,keep,layer", TWO_FANOUT_CASES,
                         ids=[f"multicast={m}-reduction={r}-{k}-{layer.name}" for m, r, k, layer in TWO_FANOUT_CASES])
def test_two_fanouts_models_agree_on_partial_tiles(multicast, reduction, keep, layer):
    """The same with two fan-outs, lanes with or without multicast and
    reduction, and fixed keep sets."""
    problem = MultiLevelProblem(layer, two_fanouts(multicast, reduction))
    rnd = random.Random(f"{multicast}{reduction}{keep}")
    mapping = random_imperfect_mapping(problem, rnd, keep=KEEPS[keep])
    assert partial(problem, mapping)
    assert_models_agree(problem, mapping, seed=rnd.randrange(7))


def test_partial_tiles_counted_by_hand():
    """P = 7 on a buffer tile of 4 rows (2 DRAM trips), a 3-tap filter, two
    input channels at DRAM (outermost). The buffer's tiles are P 0-3 and
    P 4-6: the second is cut to 3 rows.

    - Inputs: a tile of P 0-3 holds input rows p + r = 0..5 (6 rows), the
      cut tile P 4-6 rows 4..8 (5, not the nominal 6): 11 per channel, 22.
    - Weights: the buffer's weight tile (3 taps) changes with the channel: 6.
    - Outputs: drained 4 + 3 per channel (14); the second channel reads the
      partial sums back (7); the first visit starts from zero.
    - Cycles: 2 channels x 7 output rows x 3 taps = 42 of the nominal 48.
    """
    layer = ConvLayer(name="p7", N=1, M=1, C=2, P=7, Q=1, R=3, S=1)
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("Buf", capacity_bits=10**9)))
    mapping = MultiLevelMapping.on_array(levels=(LevelLoops(dict(ONE, C=2, P=2), order("C", "P")),
                                                 LevelLoops(dict(ONE, P=4, R=3), order("P", "R"))))
    run = assert_models_agree(MultiLevelProblem(layer, hier), mapping)
    assert run.reads[0] == {"inputs": 22, "weights": 6, "outputs": 7}
    assert run.writes[0] == {"inputs": 0, "weights": 0, "outputs": 14}
    assert run.cycles == 42


def test_a_resident_tile_is_not_refilled_when_the_loop_between_collapses():
    """P = 7 split 4 x 2: DRAM runs P (4 trips of 2 rows) and, inside it, M
    (3 trips, which does not index inputs); the buffer runs the last 2 rows.

    In the last DRAM trip only row 6 exists (row 7 lies past the layer), so
    the buffer's P loop collapses to one trip. A static count per loop
    would refill the MAC's input register on every M trip of that tile, 3
    times; but the register still holds row 6 when the next M trip starts
    (the iteration for row 7 is skipped, no unit needs anything there), so
    it is filled once. Register fills: 3 DRAM trips x 3 M x 2 rows = 18,
    then 1, so 19 words read from the buffer (the static count says 21).
    Weights (indexed by M) are refilled on every M trip: 4 x 3 = 12."""
    layer = ConvLayer(name="p7", N=1, M=3, C=1, P=7, Q=1, R=1, S=1)
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("Buf", capacity_bits=10**9)))
    mapping = MultiLevelMapping.on_array(levels=(LevelLoops(dict(ONE, P=4, M=3), order("P", "M")),
                                                 LevelLoops(dict(ONE, P=2), order("P"))))
    run = assert_models_agree(MultiLevelProblem(layer, hier), mapping)
    assert run.reads[1]["inputs"] == 19
    assert run.reads[1]["weights"] == 12
    assert run.reads[0]["inputs"] == 7  # buffer tiles of 2, 2, 2 and 1 rows; M does not move them
    assert run.cycles == 21


def test_an_idle_units_partial_sums_leave_with_their_parents_tile():
    """Two PEs split P = 3 (PE 1 idle in the last DRAM trip along P); DRAM
    runs P outside M, the buffer holds one (P, M) output tile of both PEs.
    When the buffer moves from (P 0-1, M 1) to (P 2, M 0), PE 1 is idle but
    still holds its partial sums of (P 1, M 1): they belong to the buffer's
    tile and are drained with it. So every output word is written to DRAM
    once (6 words), not once more at the end."""
    layer = ConvLayer(name="p3", N=1, M=2, C=1, P=3, Q=1, R=1, S=1)
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9, holds=frozenset({"outputs"})),
                           MemoryLevel("RF", capacity_bits=10**9, per_pe=True, holds=frozenset({"outputs"}))),
                     rows=1, cols=2)
    mapping = MultiLevelMapping.on_array(levels=(LevelLoops(dict(ONE, P=2, M=2), order("P", "M")),
                                                 LevelLoops(dict(ONE)), LevelLoops(dict(ONE))), cols={"P": 2})
    run = assert_models_agree(MultiLevelProblem(layer, hier), mapping)
    assert run.writes[0]["outputs"] == 6
    assert run.reads[1]["outputs"] == 6
    assert run.writes[1]["outputs"] == 6  # each PE's tile drained once into the buffer: 2 + 2 + 1 + 1


def test_the_clipped_path_counts_divisor_mappings_as_the_direct_one(monkeypatch):
    """Forced through the clipped path, divisor mappings count exactly what
    the translation-invariant path counts."""
    from helpers import random_multilevel_mapping, with_random_keep

    layer = ConvLayer(name="t", N=1, M=6, C=4, P=4, Q=3, R=3, S=2, stride=(2, 1))
    rnd = random.Random(3)
    cases = []
    for hier in (one_fanout(), two_fanouts(True, True), two_fanouts(False, False)):
        problem = MultiLevelProblem(layer, hier)
        for _ in range(3):
            mapping = with_random_keep(problem, random_multilevel_mapping(problem, rnd, full_orders=True), rnd)
            cases.append((problem, mapping, run_multilevel_vectorized(problem, mapping)))

    class Clipped(mv._Machine):
        def __init__(self, problem, mapping):
            super().__init__(problem, mapping)
            self.clipped = True

    monkeypatch.setattr(mv, "_Machine", Clipped)
    for problem, mapping, direct in cases:
        clipped = run_multilevel_vectorized(problem, mapping)
        assert clipped.outputs_match
        assert (clipped.reads, clipped.writes, clipped.cycles) == (direct.reads, direct.writes, direct.cycles)


def test_the_vectorized_model_refuses_too_long_clipped_sequences(monkeypatch):
    layer = ConvLayer(name="p7", N=1, M=3, C=1, P=7, Q=1, R=1, S=1)
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("Buf", capacity_bits=10**9)))
    mapping = MultiLevelMapping.on_array(levels=(LevelLoops(dict(ONE, P=4, M=3), order("P", "M")),
                                                 LevelLoops(dict(ONE, P=2), order("P"))))
    monkeypatch.setattr(mv, "CLIPPED_MAX_ITERATIONS", 10)
    with pytest.raises(ValueError, match="partial tiles: the loops outside the MACs run 24 iterations"):
        run_multilevel_vectorized(MultiLevelProblem(layer, hier), mapping)


def test_a_layer_beyond_the_models_macs_is_not_run(monkeypatch):
    """An LLM-sized matrix product would take the functional model hours:
    beyond ``MAX_MACS`` it says so instead of running (the certificate then
    reports it not run, with the reason)."""
    layer = ConvLayer(name="p7", N=1, M=3, C=1, P=7, Q=1, R=1, S=1)
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("Buf", capacity_bits=10**9)))
    mapping = MultiLevelMapping.on_array(levels=(LevelLoops(dict(ONE, P=7, M=3), order("P", "M")),
                                                 LevelLoops(dict(ONE), order("P"))))
    monkeypatch.setattr(functional_tiling, "MAX_MACS", 20)
    with pytest.raises(ValueError, match="the layer's 2.10e[+]01 MACs are beyond the 2.00e[+]01 the model executes"):
        run_multilevel_vectorized(MultiLevelProblem(layer, hier), mapping)
