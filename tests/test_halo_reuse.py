"""Halo reuse in two-level tiling: consecutive input tiles along the
innermost input loop keep the rows they share.  Five order classes still
give the least cost over all 720 orders, every exact method agrees with the
enumeration, the functional model moves what the cost model counts, the
rigorous bounds hold, and the larger space is never worse."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from mapcert.formulations.tiling.cost import evaluate
from mapcert.formulations.tiling.enumeration import enumerate_space
from mapcert.formulations.tiling.problem import LOOP_DIMS, Mapping
from mapcert.formulations.tiling.solve import solve_tiling
from mapcert.formulations.tiling.space import CANONICAL_ORDER, HALO_CLASSES
from mapcert.hardware.functional.tiling import run_tiling
from mapcert.validation.bounds import tiling_bounds

from helpers import make_problem

LAYERS = [
    dict(N=1, M=4, C=3, P=6, Q=5, R=3, S=3),
    dict(N=2, M=4, C=2, P=7, Q=4, R=5, S=2, stride=(2, 1)),
    dict(N=1, M=6, C=4, P=5, Q=6, R=3, S=3, dilation=(2, 1)),
]


def halo(capacity: int, space: str = "divisors", **layer):
    return replace(make_problem(capacity, space=space, **layer), halo=True)


def test_a_sweep_along_p_reads_each_input_row_once():
    """7 output rows, a 3-row window, stride 1, tiles of 2 rows: without halo
    reuse the four tiles read 4 + 4 + 4 + 3 = 15 rows, with it the 9 rows of
    the whole range."""
    problem = halo(10_000, space="any", M=1, C=1, P=7, Q=1, R=3, S=1)
    mapping = Mapping({"N": 1, "G": 1, "M": 1, "C": 1, "P": 2, "Q": 1}, ("N", "G", "M", "C", "Q", "P"))
    assert evaluate(replace(problem, halo=False), mapping).traffic_bits["inputs_read"] == 8 * 15
    assert evaluate(problem, mapping).traffic_bits["inputs_read"] == 8 * 9
    report = run_tiling(problem, mapping)
    assert report.outputs_match and report.counted_bits["inputs_read"] == 8 * 9
    # an M loop inside P re-sweeps nothing, outside P it re-sweeps the whole range
    outer = Mapping({**mapping.tiles, "M": 1}, ("M", "N", "G", "C", "Q", "P"))
    assert evaluate(problem, outer).traffic_bits["inputs_read"] == 8 * 9


def test_with_dilation_a_tile_shorter_than_the_dilation_shares_no_row():
    """Dilation 2, a 3-row window, tiles of one output row: each tile reads
    rows p, p+2, p+4, and the next one p+1, p+3, p+5. They share none (and
    row p+2 comes back after the buffer dropped it), so a sweep of 8 rows
    reads 24, not the 12 rows the whole range spans; tiles of 2 or more
    rows hold every row of their span and share 4 with the next tile."""
    problem = halo(10_000, space="any", M=1, C=1, P=8, Q=1, R=3, S=1, dilation=(2, 1))
    for tile, rows in ((1, 24), (2, 6 + 3 * 2), (3, 7 + 3 + 2), (8, 12)):
        mapping = Mapping({"N": 1, "G": 1, "M": 1, "C": 1, "P": tile, "Q": 1}, ("N", "G", "M", "C", "Q", "P"))
        assert evaluate(problem, mapping).traffic_bits["inputs_read"] == 8 * rows, tile
        report = run_tiling(problem, mapping)
        assert report.outputs_match and report.counted_bits["inputs_read"] == 8 * rows, tile


@pytest.mark.parametrize("layer", LAYERS)
def test_five_order_classes_equal_all_720_orders_with_halo(layer):
    rng = np.random.default_rng(1)
    problem = halo(1 << 30, space="any", **layer)
    for _ in range(5):
        tiles = {d: int(rng.integers(1, problem.layer.extent(d) + 1)) for d in LOOP_DIMS}
        best_all = min(evaluate(problem, Mapping(tiles, order)).total_bits
                       for order in itertools.permutations(LOOP_DIMS))
        best_class = min(evaluate(problem, Mapping(tiles, CANONICAL_ORDER[c])).total_bits for c in HALO_CLASSES)
        assert best_all == best_class


@pytest.mark.parametrize("layer", LAYERS)
def test_functional_model_counts_halo_reuse_in_every_order(layer):
    rng = np.random.default_rng(2)
    problem = halo(1 << 30, space="any", **layer)
    orders = list(itertools.permutations(LOOP_DIMS))
    for _ in range(40):
        tiles = {d: int(rng.integers(1, problem.layer.extent(d) + 1)) for d in LOOP_DIMS}
        mapping = Mapping(tiles, orders[int(rng.integers(len(orders)))])
        report = run_tiling(problem, mapping)
        assert report.outputs_match
        assert report.counted_bits == evaluate(problem, mapping).traffic_bits


@pytest.mark.parametrize("space", ["divisors", "any"])
@pytest.mark.parametrize("capacity", [150, 600])
@pytest.mark.parametrize("layer", LAYERS)
def test_exact_methods_agree_with_enumeration_with_halo(layer, space, capacity):
    problem = halo(capacity, space=space, **layer)
    reference = enumerate_space(problem, reduced=False)
    plain = enumerate_space(replace(problem, halo=False), reduced=False)
    assert reference.objective_bits <= plain.objective_bits  # the larger space is never worse
    for method in ("cpsat", "milp"):
        got = solve_tiling(problem, method, time_limit=60)
        assert got.status == "optimal", (method, got.message)
        assert got.objective == reference.objective_bits / 8, method
        assert got.objective >= tiling_bounds(problem)["rigorous"].bytes - 1e-9


def test_resnet50_conv1_at_64_kib_is_at_most_what_zigzag_reports():
    """ResNet-50 conv1 (7x7, stride 2, 3 input channels) with one 64 KiB
    buffer and 8-bit data: ZigZag's LOMA mapping moves 990,157 elements off
    chip; with halo reuse the proved optimum moves fewer."""
    from mapcert.formulations.tiling.problem import Precision

    problem = halo(64 * 1024, N=1, M=64, C=3, P=112, Q=112, R=7, S=7, stride=(2, 2),
                   precision=Precision(8, 8, 8, 8))
    result = solve_tiling(problem, "cpsat", time_limit=60)
    assert result.status == "optimal"
    assert result.objective <= 990_157
    plain = solve_tiling(replace(problem, halo=False), "cpsat", time_limit=60)
    assert result.objective < plain.objective
