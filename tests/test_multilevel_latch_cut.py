"""The latch cut of the exact models (docs/tiling-multilevel.md, "The latch cut").

The CP-SAT model and the MILP require the accesses that can change a MAC
unit's latches of each pair of tensors and of all three, each weighted by
the MAC units it can serve, to number at least ``latch_changes`` of those
tensors.  A cut that some mapping violated would remove
that mapping and could make a worse one "optimal", so the counts of every
drawn mapping, in ``evaluate``'s own terms, must meet it, on hierarchies
with multicast, reduction, bypass and several fan-outs; and the solvers
with the cut must still agree with the enumeration, which has none."""

from __future__ import annotations

import random

import pytest

from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel, hierarchy_preset
from mapcert.validation.multilevel_bounds import latch_changes, latch_cuts, latch_servers

from helpers import random_multilevel_mapping, with_random_keep

LAYERS = [
    ConvLayer("conv3x3", 1, 8, 4, 4, 4, 3, 3),
    ConvLayer("matmul", 2, 4, 16, 2, 2),
    ConvLayer("strided", 1, 4, 3, 3, 3, 3, 3, stride=(2, 2)),
]
WIDE = [  # enough MACs for arrays of a thousand units and more, or the cut asks for nothing
    ConvLayer("wide3x3", 1, 64, 32, 8, 8, 3, 3),
    ConvLayer("wide-matmul", 4, 256, 128, 1, 1),
    ConvLayer("wide-strided", 1, 32, 16, 14, 14, 3, 3, stride=(2, 2)),
]


def lanes() -> Hierarchy:
    """A shared buffer over 2 x 2 lanes that multicast inputs and reduce
    outputs, a weight register per lane: every latch is served from a
    different place, one of them shared."""
    levels = (MemoryLevel("DRAM", read_energy=100, write_energy=100),
              MemoryLevel("Buffer", capacity_bits=8 * 256, read_energy=6, write_energy=6),
              MemoryLevel("WeightReg", capacity_bits=8 * 2, holds=frozenset({"weights"}), per_pe=True,
                          read_energy=1, write_energy=1))
    return Hierarchy("lanes", levels, mac_energy=1, fanouts=(Fanout("lanes", 2, 2, 2),))


HIERARCHIES = {"eyeriss": lambda: hierarchy_preset("eyeriss"), "simba-like": lambda: hierarchy_preset("simba-like"),
               "tpu-like": lambda: hierarchy_preset("tpu-like"), "lanes": lanes}


def served(problem: MultiLevelProblem, metrics, tensors=("inputs", "weights", "outputs")) -> int:
    """A cut's left side in ``evaluate``'s counts."""
    return sum(shared * (metrics.writes if tensor == "outputs" else metrics.reads)[index][tensor]
               for tensor in tensors for index, shared in latch_servers(problem, tensor))


def test_the_cuts_are_the_three_pairs_and_the_triple():
    problem = MultiLevelProblem(LAYERS[0], lanes())
    steps = LAYERS[0].macs - 4
    assert sorted((len(group), changes) for group, changes in latch_cuts(problem)) == [
        (2, steps), (2, steps), (2, steps), (3, 2 * steps)]


@pytest.mark.parametrize("name", HIERARCHIES)
@pytest.mark.parametrize("which", range(3))
def test_no_drawn_mapping_violates_the_latch_cut(name, which):
    layer = (LAYERS if name in ("eyeriss", "lanes") else WIDE)[which]
    problem = MultiLevelProblem(layer, HIERARCHIES[name]())
    rnd = random.Random(11)
    for _ in range(120):
        mapping = random_multilevel_mapping(problem, rnd, full_orders=True)
        if problem.hierarchy.chooses_bypass:
            mapping = with_random_keep(problem, mapping, rnd)
        metrics = evaluate_multilevel(problem, mapping)
        for group, changes in latch_cuts(problem):
            assert served(problem, metrics, group) >= changes, (group, mapping)
    assert latch_changes(problem) > 0


@pytest.mark.parametrize("layer", [pytest.param(LAYERS[0], marks=pytest.mark.slow), *LAYERS[1:]],  # 3x3: 17 s
                         ids=lambda layer: layer.name)
def test_the_optimum_meets_the_cut_and_both_methods_keep_the_enumerated_optimum(layer):
    """The cut removes no optimum: CP-SAT and the MILP, which both carry
    it, prove the optimum the enumeration finds without it."""
    problem = MultiLevelProblem(layer, lanes())
    reference = solve_multilevel(problem, "enumerate")
    assert reference.status == "optimal"
    assert all(served(problem, reference.metrics, group) >= changes for group, changes in latch_cuts(problem))
    for method in ("cpsat", "milp"):
        got = solve_multilevel(problem, method, time_limit=60)
        assert got.status == "optimal", (method, got.message)
        assert got.objective == pytest.approx(reference.objective, rel=1e-9), method
