"""Bounds, the paper's dataflow heuristic, and the functional model's power
to catch a wrong execution."""

from __future__ import annotations

import numpy as np
import pytest

from mapcert.formulations.tiling.cost import evaluate
from mapcert.formulations.tiling.problem import LOOP_DIMS, Mapping
from mapcert.formulations.tiling.solve import solve_tiling
from mapcert.hardware.functional import tiling as functional
from mapcert.solvers.tiling_heuristics import paper_dataflow
from mapcert.validation.bounds import hong_kung_words, tiling_bounds

from helpers import make_problem


def test_hong_kung_bound_grows_as_the_buffer_shrinks():
    macs = 10**9
    values = [hong_kung_words(macs, 9, s) for s in (4096, 16384, 65536)]
    assert values[0] > values[1] > values[2] > 0


def test_compulsory_dominates_when_everything_fits():
    p = make_problem(1 << 24, M=8, C=8, P=8, Q=8, R=3, S=3)
    bounds = tiling_bounds(p)
    assert bounds["rigorous"].bytes == bounds["compulsory"].bytes
    result = solve_tiling(p, "cpsat")
    assert result.objective == bounds["compulsory"].bytes  # one tile of everything


def test_paper_dataflow_is_output_stationary_and_never_beats_the_optimum():
    p = make_problem(8 * 1024, M=64, C=32, P=14, Q=14, R=3, S=3)
    mapping = paper_dataflow(p)
    assert mapping.tiles["C"] == 1 and mapping.order[-1] == "C"
    metrics = evaluate(p, mapping)
    assert metrics.fits and metrics.traffic_bits["psums_written"] == 0
    assert metrics.objective >= solve_tiling(p, "cpsat").objective


def test_functional_model_catches_a_missing_halo(monkeypatch):
    p = make_problem(4096, M=4, C=3, P=6, Q=5, R=3, S=3)
    mapping = Mapping({"N": 1, "G": 1, "M": 2, "C": 3, "P": 3, "Q": 5})
    assert functional.run_tiling(p, mapping).outputs_match
    real = functional._window

    def short_window(span, stride, dilation, taps):
        rows, pos = real(span, stride, dilation, taps)
        return rows, np.minimum(pos, max(0, len(rows) - 2))  # reads a neighbour instead of the halo

    monkeypatch.setattr(functional, "_window", short_window)
    assert not functional.run_tiling(p, mapping).outputs_match


def test_partial_sums_leave_and_return_intact():
    p = make_problem(4096, M=4, C=6, P=4, Q=4, R=1, S=1)
    # C outermost, M inside it with two trips: every output tile spills once
    mapping = Mapping({"N": 1, "G": 1, "M": 2, "C": 3, "P": 4, "Q": 4}, order=("C", "N", "G", "M", "P", "Q"))
    report = functional.run_tiling(p, mapping)
    assert report.outputs_match and report.counted_bits["psums_read"] > 0
    assert report.counted_bits == evaluate(p, mapping).traffic_bits


@pytest.mark.parametrize("layer", [
    dict(M=4, C=4, P=5, Q=5, R=3, S=3, dilation=(2, 2)),
    dict(M=6, C=6, P=4, Q=3, R=3, S=1, stride=(3, 2), groups=3),
    dict(N=3, M=5, C=7, P=1, Q=1),
])
def test_functional_counts_for_odd_shapes_in_any_space(layer):
    p = make_problem(600, space="any", **layer)
    rng = np.random.default_rng(1)
    for _ in range(5):
        tiles = {d: int(rng.integers(1, p.layer.extent(d) + 1)) for d in LOOP_DIMS}
        order = tuple(rng.permutation(LOOP_DIMS))
        mapping = Mapping(tiles, order)
        report = functional.run_tiling(p, mapping)
        assert report.outputs_match
        assert report.counted_bits == evaluate(p, mapping).traffic_bits
