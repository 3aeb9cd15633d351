"""The cost model against hand counts, all 720 loop orders, and the
dominance reduction of tile sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mapcert.formulations.tiling.cost import evaluate
from mapcert.formulations.tiling.enumeration import enumerate_space
from mapcert.formulations.tiling.problem import LOOP_DIMS, Mapping
from mapcert.formulations.tiling.space import CANONICAL_ORDER, STATIONARY_CLASSES, all_tiles, undominated_tiles

from helpers import make_problem


def test_hand_counted_matmul_spills():
    # out[N, M] = sum_C in[N, C] * w[M, C], N = 4, M = 6, C = 8, all 8 bits, psums 16 bits
    from mapcert.formulations.tiling.problem import Precision

    p = make_problem(10_000, N=4, M=6, C=8, P=1, Q=1, precision=Precision(8, 8, 8, 16))
    # tiles N2 M3 C4, loops C > N > M (G, P, Q have one trip): every output
    # tile is visited twice (once per C tile)
    m = Mapping({"N": 2, "G": 1, "M": 3, "C": 4, "P": 1, "Q": 1}, order=("C", "N", "M", "G", "P", "Q"))
    t = evaluate(p, m).traffic_bits
    assert t["inputs_read"] == 8 * 4 * 8  # M is the innermost real loop: input tile stays, read once
    assert t["weights_read"] == 8 * 6 * 8 * 2  # N sits outside M: whole weights once per N tile
    assert t["outputs_written"] == 8 * 24
    assert t["psums_written"] == 16 * 24 and t["psums_read"] == 16 * 24
    # C innermost: no spills, each output written once
    m2 = Mapping(m.tiles, order=("N", "M", "G", "P", "Q", "C"))
    t2 = evaluate(p, m2).traffic_bits
    assert t2["psums_written"] == 0 and t2["outputs_written"] == 8 * 24


def test_input_halo_and_stride_gaps():
    # 1-D conv: P = 6 outputs, R = 3 taps, stride 2 -> input height 13
    p = make_problem(10_000, M=1, C=1, P=6, Q=1, R=3, S=1, stride=(2, 1))
    m = Mapping({"N": 1, "G": 1, "M": 1, "C": 1, "P": 2, "Q": 1})
    # each P tile of 2 outputs reads rows {0..4} shifted: 5 rows, 3 tiles -> 15 (overlap re-read)
    assert evaluate(p, m).traffic_bits["inputs_read"] == 8 * 15
    # stride 4 > window 3: tile of 2 outputs reads rows {0,1,2,4,5,6}: 6 rows, gaps skipped
    p4 = make_problem(10_000, M=1, C=1, P=6, Q=1, R=3, S=1, stride=(4, 1))
    assert evaluate(p4, m).traffic_bits["inputs_read"] == 8 * 18
    # dilation 2: one output reads rows {0, 2, 4}: 3 rows, not 5
    pd = make_problem(10_000, M=1, C=1, P=1, Q=1, R=3, S=1, dilation=(2, 1))
    one = Mapping({d: 1 for d in LOOP_DIMS})
    assert evaluate(pd, one).traffic_bits["inputs_read"] == 8 * 3
    assert evaluate(pd, one).footprint_bits["inputs"] == 8 * 3


def test_partial_edge_tiles_in_any_space():
    p = make_problem(10_000, space="any", M=10, C=1, P=7, Q=1, R=3, S=1)
    m = Mapping({"N": 1, "G": 1, "M": 4, "C": 1, "P": 3, "Q": 1}, order=("N", "G", "C", "P", "Q", "M"))
    metrics = evaluate(p, m)
    assert metrics.trips["M"] == 3 and metrics.trips["P"] == 3
    # P tiles 3, 3, 1 read 5 + 5 + 3 input rows; M innermost -> inputs read once
    assert metrics.traffic_bits["inputs_read"] == 8 * 13
    # M outside P: the input sweep repeats once per M tile
    outer_m = Mapping(m.tiles, order=("M", "N", "G", "C", "P", "Q"))
    assert evaluate(p, outer_m).traffic_bits["inputs_read"] == 8 * 13 * 3
    with pytest.raises(ValueError):
        evaluate(make_problem(10_000, M=10, C=1, P=7, Q=1), m)  # 4 does not divide 10


SMALL_LAYERS = [
    dict(N=2, M=4, C=6, P=4, Q=3, R=3, S=1),
    dict(N=1, M=6, C=4, P=5, Q=5, R=3, S=3, stride=(2, 1)),
    dict(N=2, M=4, C=4, P=3, Q=4, R=1, S=2, groups=2),
]


@pytest.mark.parametrize("layer", SMALL_LAYERS)
def test_three_order_classes_equal_all_720_orders(layer):
    """For random tiles, the best of all permutations equals the best class."""
    rng = np.random.default_rng(0)
    p = make_problem(1 << 30, space="any", **layer)
    for _ in range(12):
        tiles = {d: int(rng.integers(1, p.layer.extent(d) + 1)) for d in LOOP_DIMS}
        best_all = min(evaluate(p, Mapping(tiles, order)).total_bits
                       for order in itertools.permutations(LOOP_DIMS))
        best_class = min(evaluate(p, Mapping(tiles, CANONICAL_ORDER[c])).total_bits for c in STATIONARY_CLASSES)
        assert best_all == best_class


@pytest.mark.parametrize("space", ["divisors", "any"])
@pytest.mark.parametrize("capacity", [120, 400, 2000])
def test_dominance_reduction_keeps_the_optimum(space, capacity):
    p = make_problem(capacity, space=space, N=2, M=12, C=8, P=9, Q=6, R=3, S=2, stride=(2, 1))
    full = enumerate_space(p, reduced=False)
    reduced = enumerate_space(p, reduced=True)
    assert full.objective_bits == reduced.objective_bits
    assert reduced.points < full.points or space == "divisors"
    for d in LOOP_DIMS:
        assert set(undominated_tiles(p.layer, d, space)) <= set(all_tiles(p.layer, d, space))
