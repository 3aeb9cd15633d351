"""The multi-level cost model: two-level agreement, order reduction, sanity."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings, strategies as st

from mapcert.formulations.tiling.cost import evaluate
from mapcert.formulations.tiling.multilevel.problem import DIMS, LevelLoops, MultiLevelMapping, MultiLevelProblem
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.problem import LOOP_DIMS, Buffer, ConvLayer, Mapping, TilingProblem
from mapcert.hardware.hierarchy import Hierarchy, MemoryLevel, hierarchy_preset

from helpers import random_multilevel_mapping, term_counts


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def small_layers(draw):
    stride = draw(st.sampled_from([1, 2]))
    return ConvLayer(
        name="t", N=draw(st.sampled_from([1, 2])), M=draw(st.sampled_from([2, 4, 6])),
        C=draw(st.sampled_from([1, 2, 4])), P=draw(st.sampled_from([2, 3, 4])), Q=draw(st.sampled_from([1, 2, 4])),
        R=draw(st.sampled_from([1, 2, 3])), S=draw(st.sampled_from([1, 3])), stride=(stride, 1),
    )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(small_layers(), st.integers(0, 10**6))
def test_two_levels_reduce_to_the_two_level_model(layer, seed):
    rnd = random.Random(seed)
    tiles = {d: rnd.choice(divisors(layer.extent(d))) for d in LOOP_DIMS}
    order = tuple(rnd.sample(LOOP_DIMS, len(LOOP_DIMS)))
    two = TilingProblem(layer=layer, buffer=Buffer("GLB", 10**9))
    expected = evaluate(two, Mapping(tiles=tiles, order=order))

    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9)))
    trips = {d: layer.extent(d) // tiles[d] for d in LOOP_DIMS}
    inner = dict(tiles, R=layer.R, S=layer.S)
    inner_order = tuple(rnd.sample(DIMS, len(DIMS)))
    mapping = MultiLevelMapping(levels=(
        LevelLoops(dict(trips, R=1, S=1), order + ("R", "S")),
        LevelLoops(inner, inner_order),
    ))
    got = evaluate_multilevel(MultiLevelProblem(layer, hier), mapping)
    assert got.offchip_bits == expected.traffic_bits
    assert got.tile_bits[1] == expected.footprint_bits


def test_eyeriss_preset_loads_with_bypass():
    hier = hierarchy_preset("eyeriss")
    assert hier.pes == 168 and hier.pe_level == 2
    assert "weights" not in hier.levels[1].holds
    assert hier.holder_above(2, "weights") == 0


def test_macs_read_operands_and_update_outputs():
    layer = ConvLayer(name="t", N=1, M=4, C=2, P=2, Q=2, R=1, S=1)
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("RF", capacity_bits=10**6, per_pe=True)), rows=2, cols=1)
    ones = dict.fromkeys(DIMS, 1)
    # M split over two PEs; inside each PE loop C innermost: the output stays in the MAC
    mapping = MultiLevelMapping.on_array(
        levels=(LevelLoops(ones), LevelLoops(dict(ones, M=2, C=2, P=2, Q=2), ("N", "G", "R", "S", "M", "P", "Q", "C"))),
        rows={"M": 2},
    )
    m = evaluate_multilevel(MultiLevelProblem(layer, hier), mapping)
    # weights: every MAC reads one (C innermost changes it), 32 MACs
    assert m.reads[1]["weights"] == 32
    # outputs: one drain per output word from the MAC into the RF, never read back
    assert m.writes[1]["outputs"] == 16 and m.reads[1]["outputs"] == 16
    # inputs go from DRAM to both PEs once: multicast reads each word once
    assert m.reads[0]["inputs"] == 2 * 2 * 2
    assert m.writes[1]["inputs"] == 2 * 8
    assert m.compute_cycles == 16 and m.utilization == 1.0


THREE_LEVELS = Hierarchy("three", (
    MemoryLevel("DRAM", read_energy=200, write_energy=200),
    MemoryLevel("GLB", capacity_bits=10**9, holds=frozenset({"inputs", "outputs"}), read_energy=6, write_energy=6),
    MemoryLevel("RF", capacity_bits=10**9, per_pe=True, read_energy=1, write_energy=1),
), rows=2, cols=2, mac_energy=1)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(small_layers(), st.integers(0, 10**6))
def test_group_orders_lose_nothing(layer, seed):
    """For fixed factors, the best of the 6 group orders per level is as good
    as the best of many random full orders, for every access count."""
    from mapcert.formulations.tiling.multilevel.space import GROUP_ORDERS
    rnd = random.Random(seed)
    problem = MultiLevelProblem(layer, THREE_LEVELS)
    base = random_multilevel_mapping(problem, rnd, full_orders=True)

    def with_orders(orders):
        return MultiLevelMapping(
            levels=tuple(LevelLoops(lv.factors, o) for lv, o in zip(base.levels, orders)),
            fanouts=base.fanouts)

    grouped = [evaluate_multilevel(problem, with_orders(o)) for o in itertools.product(GROUP_ORDERS, repeat=3)]
    best_energy = min(m.energy for m in grouped)
    best_offchip = min(m.offchip_bytes for m in grouped)
    for _ in range(30):
        other = evaluate_multilevel(problem, with_orders([tuple(rnd.sample(DIMS, len(DIMS))) for _ in range(3)]))
        assert best_energy <= other.energy + 1e-9
        assert best_offchip <= other.offchip_bytes


@settings(max_examples=30, deadline=None, derandomize=True)
@given(small_layers(), st.integers(0, 10**6))
def test_canonical_ranking_keeps_every_access_count(layer, seed):
    """Moving the groups without a loop of more than one trip outermost
    (the one ranking per loop order the CP-SAT model allows) changes no
    access count, for every group order at every level."""
    from mapcert.formulations.tiling.multilevel.space import (GROUP_ORDERS, GROUP_RANKINGS, canonical_ranking,
                                                              group_order)
    from mapcert.formulations.tiling.multilevel.problem import REUSE_GROUPS
    rnd = random.Random(seed)
    problem = MultiLevelProblem(layer, THREE_LEVELS)
    base = random_multilevel_mapping(problem, rnd, full_orders=False)
    rankings = [rnd.choice(GROUP_RANKINGS) for _ in base.levels]
    canonical = [canonical_ranking(r, {X for X in REUSE_GROUPS if all(lv.factors.get(d, 1) == 1
                                                                      for d in REUSE_GROUPS[X])})
                 for r, lv in zip(rankings, base.levels)]

    def with_rankings(rs):
        return MultiLevelMapping(levels=tuple(LevelLoops(lv.factors, group_order(r)) for lv, r in zip(base.levels, rs)),
                                 fanouts=base.fanouts)

    before, after = (evaluate_multilevel(problem, with_rankings(rs)) for rs in (rankings, canonical))
    assert (before.reads, before.writes) == (after.reads, after.writes)
    assert all(group_order(r) in GROUP_ORDERS for r in canonical)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(small_layers(), st.integers(0, 10**6), st.sampled_from([(False, True), (True, True), (False, False)]),
       st.sampled_from([("inputs", "weights", "outputs"), ("inputs", "outputs"), ("weights",)]))
def test_term_structure_reproduces_every_access_count(layer, seed, private, holds):
    """reads and writes = sums of const * spatial * halo * (fills / distinct)."""
    hier = Hierarchy("h", (
        MemoryLevel("DRAM"),
        MemoryLevel("GLB", capacity_bits=10**9, holds=frozenset(holds), per_pe=private[0]),
        MemoryLevel("RF", capacity_bits=10**9, per_pe=private[1]),
    ), rows=2, cols=3)
    problem = MultiLevelProblem(layer, hier)
    mapping = random_multilevel_mapping(problem, random.Random(seed), full_orders=True)
    metrics = evaluate_multilevel(problem, mapping)
    reads, writes = term_counts(problem, mapping)
    assert reads == metrics.reads
    assert writes == metrics.writes
