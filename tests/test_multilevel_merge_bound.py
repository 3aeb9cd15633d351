"""The merge term of the multi-level energy bound against wider spaces.

``latch_and_merge_energy`` charges the read-backs that merge drained
partial sums.  On small layers the energy bound must stay at or below the
proved optima of the widest declared space (any factors, halo reuse, keep
or bypass chosen) and below every randomly drawn mapping, on hierarchies
where the merge term is the larger of the two latch terms."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel
from mapcert.validation.multilevel_bounds import (
    energy_bound_terms,
    latch_and_merge_energy,
    latch_energy,
    multilevel_bounds,
    reduction_group,
)

from helpers import random_multilevel_mapping, with_random_keep


def simba_like(out_bytes: int, chosen: bool = False) -> Hierarchy:
    """DRAM, a partitioned PE buffer, a 2 x 2 fan-out of lanes that
    multicasts inputs and reduces outputs, one weight register per lane
    (dear enough that the two cheapest latches are inputs and outputs)."""
    levels = (MemoryLevel("DRAM", read_energy=12, write_energy=12),  # cheap: the on-chip terms dominate
              MemoryLevel("PEBuffer", partition_bits={"inputs": 8 * 32, "weights": 8 * 64, "outputs": 8 * out_bytes},
                          chosen=frozenset({"inputs"}) if chosen else frozenset(), read_energy=6, write_energy=6),
              MemoryLevel("WeightReg", capacity_bits=8, holds=frozenset({"weights"}), per_pe=True,
                          read_energy=4, write_energy=4))
    return Hierarchy("simba-like", levels, mac_energy=1, fanouts=(Fanout("lanes", 2, 2, 2),))


LAYERS = [
    ConvLayer("conv", 1, 4, 4, 3, 3, 3, 1),
    ConvLayer("matmul", 2, 4, 16, 2, 2),
    ConvLayer("deep", 1, 2, 8, 2, 1, 3, 3),
]


def test_the_merge_term_is_the_larger_one_here():
    """Else the tests below would not check it."""
    for layer in LAYERS:
        problem = MultiLevelProblem(layer, simba_like(12))
        assert latch_and_merge_energy(problem) > 1.02 * latch_energy(problem)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_no_optimum_of_the_widest_space_is_below_the_bound(layer):
    """The widest spaces: partial last tiles, and halo reuse (over divisors, as the models cost it)."""
    for hierarchy in (simba_like(12), simba_like(48, chosen=True)):
        for space in ({"factors": "any"}, {"halo": True}):
            problem = MultiLevelProblem(layer, hierarchy, **space)
            solved = solve_multilevel(problem, "cpsat", 60)
            assert solved.status == "optimal"
            assert multilevel_bounds(problem).objective <= solved.objective + 1e-9


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_no_random_mapping_is_below_the_bound(layer):
    rnd = random.Random(7)
    for hierarchy in (simba_like(12), simba_like(48, chosen=True)):
        problem = MultiLevelProblem(layer, hierarchy)
        bound = multilevel_bounds(problem).objective
        for _ in range(150):
            mapping = random_multilevel_mapping(problem, rnd, full_orders=True)
            if hierarchy.chooses_bypass:
                mapping = with_random_keep(problem, mapping, rnd)
            metrics = evaluate_multilevel(problem, mapping)
            if metrics.fits:
                assert metrics.energy >= bound - 1e-9


def test_without_a_reduction_network_the_level_adds_one_moments_copies():
    """No reduction network: each lane writes its own copy of a partial
    sum, and the level adds the copies drained at one moment without a
    read, as the cost model counts them. So the merge term is the same as
    with the network, and it stays below the proved optima, among them
    one that spreads the filter taps over lanes that do not reduce (a
    bound that made every copy read back was above that optimum). The
    copies' writes themselves are one per lane: the drains cost more."""
    hierarchy = simba_like(12)
    no_reduction = replace(hierarchy, fanouts=(Fanout("lanes", 2, 2, 2, reduction=False),))
    layer = LAYERS[0]
    assert reduction_group(MultiLevelProblem(layer, no_reduction)) == 4
    assert reduction_group(MultiLevelProblem(layer, hierarchy)) == 4
    assert (latch_and_merge_energy(MultiLevelProblem(layer, no_reduction))
            > latch_and_merge_energy(MultiLevelProblem(layer, hierarchy)))
    levels = (MemoryLevel("DRAM", read_energy=200, write_energy=200),
              MemoryLevel("G", capacity_bits=8 * 4096, read_energy=6, write_energy=6,
                          chosen=frozenset({"inputs", "outputs"}), holds=frozenset({"inputs", "outputs"})),
              MemoryLevel("R1", capacity_bits=8 * 256, holds=frozenset({"inputs", "outputs"}), per_pe=True,
                          read_energy=2, write_energy=2))
    taps_apart = Hierarchy("taps-apart", levels, mac_energy=1,
                           fanouts=(Fanout("pe", 2, 1, 1), Fanout("ln", 3, 4, 4, multicast=False, reduction=False)))
    grouped = ConvLayer("grouped", 2, 6, 6, 4, 3, 3, 3, groups=6)
    problem = MultiLevelProblem(grouped, taps_apart)
    solved = solve_multilevel(problem, "cpsat", 60)
    assert solved.status == "optimal"
    assert multilevel_bounds(problem).objective <= solved.objective + 1e-9


@pytest.mark.parametrize("chosen", [False, True])
def test_the_energy_bound_is_the_sum_of_its_terms_each_at_most_the_optimums_events(chosen):
    """``energy_bound_terms`` is what the benchmark sets against an
    optimum: the terms add up to the bound, the DRAM term is at most the
    optimum's DRAM energy and the on-chip terms at most its on-chip energy
    (each counts a subset of those events)."""
    layer = LAYERS[0]
    hierarchy = simba_like(48, chosen=chosen)
    problem = MultiLevelProblem(layer, hierarchy)
    terms = energy_bound_terms(problem)
    assert set(terms) == {"macs", "dram", "holders", "final_reads", "latches"}
    assert sum(terms.values()) == pytest.approx(multilevel_bounds(problem).objective, rel=1e-12)
    # weights pass through the PE buffer (written, read) and the register (written); an input buffer
    # that may be bypassed is no certain stop: its write is not counted
    weights_through = (6 + 6 + 4) * layer.weight_elements
    assert terms["holders"] == weights_through + (0 if chosen else 6 * layer.input_elements_used)
    solved = solve_multilevel(problem, "cpsat", 60)
    metrics = evaluate_multilevel(problem, solved.mapping)
    per_level = [sum(r.values()) * lv.read_energy + sum(w.values()) * lv.write_energy
                 for lv, r, w in zip(hierarchy.levels, metrics.reads, metrics.writes, strict=True)]
    assert terms["dram"] <= per_level[0] + 1e-9
    assert terms["holders"] + terms["final_reads"] + terms["latches"] <= sum(per_level[1:]) + 1e-9
