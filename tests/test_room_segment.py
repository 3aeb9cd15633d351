"""The room segment bound (docs/bounds.md) against schedules on split buffers.

``schedule_replay`` replays loop nests with every dimension split at a
non-dividing tile, the loops in random order, random permutations of the
MACs and the usual stationary orders, on a buffer split into one part per
tensor, each evicting by Belady's rule.  No replay may move less than the
bound, with the prices of bits and with the prices of accesses; and on a
hierarchy, no proved optimum may lie below the energy or traffic bounds
built on it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mapcert.formulations.registry import family_of
from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer, Precision
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel
from mapcert.validation.bounds import layer_capped_instance
from mapcert.validation.capped_segment import capped_segment_bits
from mapcert.validation.multilevel_bounds import (
    dram_room_energy,
    energy_bound_terms,
    multilevel_bounds,
    offchip_segment_bytes,
    tensor_rooms,
)
from mapcert.validation.room_segment import REPRICINGS, RoomInstance, room_segment_cost, segments_at_prices

from schedule_replay import replay_bits, schedules

LAYERS = [
    ConvLayer("conv3x3", 1, 4, 3, 5, 5, 3, 3),
    ConvLayer("stride2", 1, 3, 2, 4, 4, 3, 3, stride=(2, 2)),
    ConvLayer("matmul", 2, 6, 8, 3, 3),
    ConvLayer("short-reduction", 2, 8, 2, 4, 4),
    ConvLayer("wide-matmul", 1, 16, 16, 4, 4),  # where the bound binds (below)
]
PRECISIONS = [Precision(1, 1, 1, 1), Precision(), Precision(16, 4, 8, 24)]  # (1, 1, 1, 1): accesses, not bits
ROOMS = [(1, 1, 1), (4, 2, 1), (2, 12, 2), (30, 30, 3), (6, 6, 12)]  # elements of inputs, weights, partial sums


def room_instance(layer: ConvLayer, rooms: tuple[int, int, int]) -> RoomInstance:
    """The layer on a split buffer, priced in bits as the replay counts them:
    a partial sum read back costs its read and the write that spilled it."""
    p = layer.precision
    return RoomInstance.from_capped(layer_capped_instance(layer, 1), rooms,
                                    (p.inputs, p.weights, 2 * p.psums, p.outputs))


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
@pytest.mark.parametrize("precision", PRECISIONS, ids=lambda p: f"{p.inputs}-{p.weights}-{p.outputs}-{p.psums}")
def test_no_schedule_on_a_split_buffer_moves_less_than_the_room_bound(layer, precision):
    layer = replace(layer, precision=precision)
    rng = np.random.default_rng(23)
    for rooms in ROOMS:
        bound = room_segment_cost(room_instance(layer, rooms))
        split = {"i": rooms[0] * precision.inputs, "w": rooms[1] * precision.weights, "o": rooms[2] * precision.psums}
        for macs in schedules(layer, rng, 3):
            moved = replay_bits(layer, macs, rooms_bits=split)
            assert moved >= bound - 1e-9, (rooms, moved, bound)


@pytest.mark.parametrize("layer", LAYERS[:3], ids=lambda layer: layer.name)
def test_every_repricing_alone_stays_below_every_replay(layer):
    """Each repriced bound (cheaper reads and creations, the compulsory
    ones added back) is valid on its own, not only the best of them; and
    the repricing raises the bound well above the true prices' on a split
    with few partial sums (docs/bounds.md, "Repriced segments")."""
    layer = replace(layer, precision=Precision(16, 4, 8, 24))
    rng = np.random.default_rng(5)
    for rooms in ROOMS:
        inst = room_instance(layer, rooms)
        once = (inst.input_read * inst.inputs, inst.weight_read * inst.weights, inst.output_write * inst.outputs)
        repriced = [segments_at_prices(replace(inst, input_read=f[0] * inst.input_read,
                                               weight_read=f[1] * inst.weight_read,
                                               output_write=f[2] * inst.output_write))
                    + sum((1 - x) * e for x, e in zip(f, once, strict=True)) for f in REPRICINGS]
        split = {"i": rooms[0] * 16, "w": rooms[1] * 4, "o": rooms[2] * 24}
        least = min(replay_bits(layer, macs, rooms_bits=split) for macs in schedules(layer, rng, 3))
        assert max(repriced) <= least + 1e-9, (rooms, least, repriced)
    few_psums = room_instance(replace(LAYERS[1], precision=Precision(16, 4, 8, 24)), (30, 30, 3))
    assert room_segment_cost(few_psums) > 1.5 * segments_at_prices(few_psums)


def test_the_room_bound_binds_where_one_tensor_has_little_room():
    """The test above would be empty if the bound never rose above every
    element moved once; and one buffer of the same total size allows less
    traffic than the split one."""
    layer = replace(LAYERS[-1], precision=Precision(1, 1, 1, 1))
    inst = room_instance(layer, (30, 30, 1))
    once = layer.input_elements_used + layer.weight_elements + layer.output_elements
    assert room_segment_cost(inst) > 1.4 * once
    one_buffer = capped_segment_bits(layer_capped_instance(layer, 61))
    assert room_segment_cost(inst) > 1.1 * one_buffer


def partitioned(psum_bytes: int, weights_on_chip: bool = True) -> Hierarchy:
    """DRAM, a PE buffer split per tensor, a 2 x 2 fan-out that multicasts
    and reduces, one weight register per lane (or, without
    ``weights_on_chip``, weights straight from DRAM to the lanes)."""
    parts = {"inputs": 8 * 16, "outputs": 8 * psum_bytes}
    if weights_on_chip:
        parts["weights"] = 8 * 32
    levels = [MemoryLevel("DRAM", read_energy=200, write_energy=200),
              MemoryLevel("PEBuffer", partition_bits=parts, holds=frozenset(parts), read_energy=6, write_energy=6)]
    if weights_on_chip:
        levels.append(MemoryLevel("WeightReg", capacity_bits=8, holds=frozenset({"weights"}), per_pe=True,
                                  read_energy=1, write_energy=1))
    return Hierarchy("partitioned", tuple(levels), mac_energy=1, fanouts=(Fanout("lanes", 2, 2, 2),))


CASES = [  # (layer, weights kept on chip): each where the room term exceeds the compulsory accesses
    (ConvLayer("matmul", 1, 16, 16, 4, 4), True),
    (ConvLayer("matmul", 1, 16, 16, 4, 4), False),
    (ConvLayer("matmul-2x4", 1, 16, 16, 2, 4), False),
    (ConvLayer("conv", 1, 8, 8, 4, 4, 3, 3), False),
]


@pytest.mark.parametrize("layer, weights_on_chip", CASES, ids=lambda case: getattr(case, "name", str(case)))
def test_no_proved_optimum_on_a_partitioned_hierarchy_is_below_the_bounds(layer, weights_on_chip):
    """Energy and off-chip traffic, in the widest spaces (partial tiles;
    halo reuse): the room segment terms stay below every optimum, and they
    are what the bounds use here (else the test would not check them).
    Without weights on chip, DRAM feeds the weight latches and the latch
    terms leave its accesses to the room term."""
    hierarchy = partitioned(3, weights_on_chip)
    compulsory_dram = 200 * (layer.input_elements_used + layer.weight_elements + layer.output_elements)
    for space in ({"factors": "any"}, {"halo": True}):
        energy = MultiLevelProblem(layer, hierarchy, objective="energy", **space)
        assert energy_bound_terms(energy)["dram"] == dram_room_energy(energy) > compulsory_dram
        solved = solve_multilevel(energy, "cpsat", 60, canonical=False)
        assert solved.status == "optimal"
        assert multilevel_bounds(energy).objective <= solved.objective + 1e-9
        traffic = replace(energy, objective="offchip_traffic")
        solved = solve_multilevel(traffic, "cpsat", 60, canonical=False)
        assert solved.status == "optimal"
        bounds = {b.name: b.value for b in family_of(traffic).bounds(traffic)}
        assert bounds["room_segment"] == offchip_segment_bytes(traffic)["room_segment"] > bounds["compulsory"]
        assert max(bounds.values()) <= solved.objective + 1e-9


def test_rooms_add_up_every_place_that_may_hold_a_tensor():
    problem = MultiLevelProblem(CASES[0][0], partitioned(3))
    # 16 B of inputs, 32 B of weights and 4 lanes' registers, 3 B of 24-bit partial sums; a latch per lane each
    assert tensor_rooms(problem) == {"inputs": 16 + 4, "weights": 32 + 4 + 4, "outputs": 1 + 4}


def test_a_hierarchy_refuses_halo_reuse_with_partial_tiles():
    """The exact models cost halo sweeps over divisor rows only; with partial
    tiles their optimum and bound would not hold, so the solver refuses the
    space (the instance schema does too)."""
    problem = MultiLevelProblem(CASES[3][0], partitioned(3, False), factors="any", halo=True)
    for method in ("cpsat", "milp", "enumerate"):
        result = solve_multilevel(problem, method, 30)
        assert result.status == "error" and "divisor factors" in result.message


def test_a_two_level_partitioned_buffer_reports_the_room_bound():
    """DRAM and one buffer split per tensor: the room segment bound is
    listed, binds above the one-buffer bounds on a small output part, and
    stays below the proved optimum."""
    from mapcert.formulations.tiling.solve import solve_tiling
    from mapcert.instances import load_text
    from mapcert.validation.bounds import tiling_bounds

    problem = load_text("""family: tiling
workload: {name: pw, op: conv2d, dims: {N: 1, M: 256, C: 512, P: 14, Q: 14}}
hardware:
  levels:
    - {name: DRAM}
    - {name: GLB, partition: {inputs: 8 KiB, weights: 32 KiB, outputs: 192 B}}
objective: offchip_traffic
""")
    bounds = tiling_bounds(problem)
    assert bounds["rigorous"].bytes == bounds["room_segment"].bytes > bounds["capped_segment"].bytes
    result = solve_tiling(problem, "cpsat", 60)
    assert result.status == "optimal" and result.objective >= bounds["room_segment"].bytes
    shared = tiling_bounds(replace(problem, buffer=replace(problem.buffer, partition_bits=None)))
    assert "room_segment" not in shared
