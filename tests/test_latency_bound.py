"""The latency floor of a multi-level mapping under declared bandwidths.

``latency_floor`` says that a level with a bandwidth needs the cycles to
move the words every mapping moves there. No drawn mapping, on
hierarchies with bandwidths on DRAM, a shared buffer and a per-PE level,
with and without latches, with chosen bypass, and no proved latency
optimum may be faster than it."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel
from mapcert.validation.latency_bound import latch_accesses, latency_floor, level_words
from mapcert.validation.multilevel_bounds import multilevel_bounds

from helpers import random_multilevel_mapping, with_random_keep


def hierarchy(dram_bw: float, glb_bw: float | None, rf_bw: float | None, *, latches: bool = True,
              chosen: bool = False, multicast: bool = True) -> Hierarchy:
    """DRAM, a shared buffer that keeps inputs and outputs (its keep chosen
    when ``chosen``), a 2 x 2 array of PEs, each with a register file that
    keeps all three tensors."""
    levels = (MemoryLevel("DRAM", read_energy=100, write_energy=100, bandwidth=dram_bw),
              MemoryLevel("GLB", capacity_bits=8 * 512, holds=frozenset({"inputs", "outputs"}),
                          chosen=frozenset({"inputs", "outputs"}) if chosen else frozenset(),
                          read_energy=6, write_energy=6, bandwidth=glb_bw),
              MemoryLevel("RF", capacity_bits=8 * 48, per_pe=True, read_energy=1, write_energy=1,
                          bandwidth=rf_bw))
    return Hierarchy("bw", levels, mac_energy=1, latches=latches,
                     fanouts=(Fanout("array", 2, 2, 2, multicast=multicast, reduction=multicast),))


LAYERS = [
    ConvLayer("conv", 1, 4, 4, 4, 4, 3, 3),
    ConvLayer("pointwise", 2, 8, 8, 4, 4),
    ConvLayer("matmul", 1, 16, 8, 4, 1),
]

HIERARCHIES = {
    "dram-bound": hierarchy(0.5, None, None),
    "glb-bound": hierarchy(8, 0.25, None),
    "rf-bound": hierarchy(8, None, 0.5),
    "rf-no-latches": hierarchy(8, None, 0.5, latches=False),
    "chosen-keep": hierarchy(1, 0.5, 1, chosen=True),
    "no-multicast": hierarchy(8, None, 0.75, multicast=False),
}


def test_each_hierarchy_binds_on_some_layer():
    """Else the tests below would only check the compute floor."""
    for name, hier in HIERARCHIES.items():
        floors = [latency_floor(MultiLevelProblem(layer, hier, objective="latency")) for layer in LAYERS]
        assert any(cycles > -(-layer.macs // hier.pes) for (cycles, _), layer in zip(floors, LAYERS, strict=True)), name


def test_the_floor_counts_what_it_says():
    """DRAM: every used input and weight read, every output written; the RF
    without latches: each MAC fetches its input and weight and drains its sum."""
    layer = LAYERS[1]
    problem = MultiLevelProblem(layer, HIERARCHIES["rf-no-latches"], objective="latency")
    words = [level_words(problem, level) for level in range(3)]
    assert words[0] >= layer.input_elements_used + layer.weight_elements + layer.output_elements
    # the RF is the only level that feeds weights (the GLB does not keep them) and the innermost keeper of all
    assert latch_accesses(problem, 2) == 3 * layer.macs
    assert words[2] == layer.input_elements_used + layer.weight_elements + layer.output_elements + 3 * layer.macs


@pytest.mark.parametrize("name", sorted(HIERARCHIES))
def test_no_drawn_mapping_is_faster(name):
    rnd = random.Random(11)
    hier = HIERARCHIES[name]
    checked = 0
    for layer in LAYERS:
        problem = MultiLevelProblem(layer, hier, objective="latency")
        floor, _ = latency_floor(problem)
        words = [level_words(problem, level) for level in range(len(hier.levels))]
        for _ in range(120):
            mapping = random_multilevel_mapping(problem, rnd, full_orders=True)
            if hier.chooses_bypass:
                mapping = with_random_keep(problem, mapping, rnd)
            metrics = evaluate_multilevel(problem, mapping)
            if not metrics.fits:
                continue
            checked += 1
            assert metrics.latency >= floor
            for level, bound in enumerate(words):
                moved = sum(metrics.reads[level].values()) + sum(metrics.writes[level].values())
                assert moved >= bound - 1e-9, (layer.name, level, moved, bound)
    assert checked > 100


@pytest.mark.parametrize("name", ["dram-bound", "rf-no-latches", "chosen-keep"])
def test_no_proved_optimum_is_faster(name):
    for layer in LAYERS[:2]:
        for space in ({}, {"factors": "any"}, {"halo": True}):
            problem = MultiLevelProblem(layer, HIERARCHIES[name], objective="latency", secondary=("energy",), **space)
            solved = solve_multilevel(problem, "cpsat", 60)
            assert solved.status == "optimal"
            bound = multilevel_bounds(problem).objective
            assert bound <= solved.metrics.latency, (layer.name, space)


def test_edp_bound_uses_the_bandwidth_floor():
    problem = MultiLevelProblem(LAYERS[0], HIERARCHIES["dram-bound"], objective="edp")
    floor, reason = latency_floor(problem)
    assert floor > -(-LAYERS[0].macs // 4) and reason.startswith("DRAM moves at least")
    compute_only = MultiLevelProblem(LAYERS[0], replace(HIERARCHIES["dram-bound"], levels=tuple(
        replace(level, bandwidth=None) for level in HIERARCHIES["dram-bound"].levels)), objective="edp")
    assert multilevel_bounds(problem).objective > multilevel_bounds(compute_only).objective


def test_dram_moves_at_least_what_its_rooms_force():
    """A small room for partial sums makes DRAM move more than every element
    once (the room segment bound). The fastest mapping is the one that
    moves the fewest DRAM words here: no proved latency optimum, in the
    widest spaces, moves fewer or is faster than that."""
    from test_multilevel_merge_bound import simba_like

    base = simba_like(12)
    hier = replace(base, levels=(replace(base.levels[0], bandwidth=0.5), *base.levels[1:]))
    layer = ConvLayer("pointwise", 1, 32, 32, 4, 4)
    compulsory = layer.input_elements_used + layer.weight_elements + layer.output_elements
    for space in ({}, {"factors": "any"}, {"halo": True}):
        problem = MultiLevelProblem(layer, hier, objective="latency", secondary=("energy",), **space)
        words = level_words(problem, 0)
        assert words > 1.5 * compulsory
        floor, reason = latency_floor(problem)
        assert floor == -(-words // 0.5) and reason.startswith("DRAM")
        solved = solve_multilevel(problem, "cpsat", 60)
        assert solved.status == "optimal"
        metrics = solved.metrics
        assert sum(metrics.reads[0].values()) + sum(metrics.writes[0].values()) >= words
        assert metrics.latency >= floor


SMALL_BANDWIDTH = """family: tiling
workload: {{name: fcish, op: conv2d, dims: {{N: 2, M: 24, C: 12, P: 10, Q: 10, R: 3, S: 3}}, stride: 2}}
hardware:
  name: slow-l2
  energy_unit: pJ
  mac_energy: 0.5
  array: {{rows: 6, cols: 4}}
  levels:
    - {{name: DRAM, read_energy: 100, write_energy: 120, bandwidth: 2}}
    - {{name: L2, capacity: 16 KiB, holds: [inputs, weights, outputs], read_energy: 5, bandwidth: {bandwidth}}}
    - {{name: L1, per_pe: true, holds: [weights, outputs], partition: {{weights: 64 B, outputs: 16 B}},
       read_energy: 0.7, bandwidth: 0.3}}
objective: [latency, energy]
solver: {{method: cpsat, time_limit: 60}}
"""


@pytest.mark.parametrize("bandwidth, cycles", [("0.0003", 197_200_000), ("0.0005", 118_320_000),
                                               ("0.0014", 42_257_143)])
def test_a_small_decimal_bandwidth_is_read_as_written(bandwidth, cycles):
    """L2 moves its 59,160 words at the bandwidth as written (3e-4 is
    3/10000): CP-SAT proves the same whole cycles the evaluation counts,
    where a bandwidth rounded to a denominator of 1,000 made it claim
    "no mapping fits" (3e-4 became 0) or half the cycles (5e-4 became 1/1000)."""
    from mapcert.instances import load_text
    from mapcert.pipeline import solve

    result = solve(load_text(SMALL_BANDWIDTH.format(bandwidth=bandwidth)))
    assert result.status.value == "optimal", result.notes
    assert result.objective == cycles


def test_the_milp_latency_search_stops_at_the_floor():
    """A per-PE bandwidth makes the MILP solve one piece per number of busy
    PEs; once a piece reaches the floor no other can be faster, so the
    search stops there, proved, instead of solving the rest."""
    hier = hierarchy(0.5, None, 64.0)  # DRAM binds; the RF's bandwidth only calls for the search by pieces
    problem = MultiLevelProblem(LAYERS[1], hier, objective="latency")
    floor, _ = latency_floor(problem)
    solved = solve_multilevel(problem, "milp", 120)
    assert solved.status == "optimal" and solved.objective == floor
    assert solved.message.endswith(": 1 milp solve"), solved.message


def test_the_milp_edp_search_bounds_each_piece_by_the_floor():
    """The EDP search walks pieces of busy PEs and cycle caps; with every
    piece's cycles at least the floor, an energy optimum that reaches it
    ends the search, proved (otherwise it walks further pieces)."""
    problem = MultiLevelProblem(LAYERS[1], hierarchy(0.5, None, None), objective="edp")
    solved = solve_multilevel(problem, "milp", 120)
    assert solved.status == "optimal", solved.message
    assert solved.message.endswith(": 1 milp solve"), solved.message
    energy = solve_multilevel(replace(problem, objective="energy"), "cpsat", 60)
    assert solved.objective <= energy.metrics.edp
