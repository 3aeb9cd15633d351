"""Halo reuse in hierarchies (``space: {halo: true}``): an input tile that
the innermost input loop above its level moves one step keeps the rows it
shares with the previous tile. ``evaluate`` counts it with the sweep
formulas of ``halo.py``; both functional models count it by watching
word sets; CP-SAT and the enumeration search the loop order inside a reuse
group that decides which loop sweeps. These tests hold them to each other."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings, strategies as st

from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.enumeration import enumerate_multilevel
from mapcert.formulations.tiling.multilevel.halo import halo_orders, innermost_in_group, step_rows
from mapcert.formulations.tiling.multilevel.problem import DIMS, LevelLoops, MultiLevelMapping, MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.multilevel.space import GROUP_ORDERS
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.functional.multilevel import run_multilevel
from mapcert.hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel
from mapcert.instances import load_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import random_multilevel_mapping, with_random_keep  # noqa: E402

TENSORS = frozenset(("inputs", "weights", "outputs"))

LAYERS = [ConvLayer(name="plain", N=1, M=2, C=2, P=6, Q=4, R=3, S=3),
          ConvLayer(name="strided", N=1, M=2, C=2, P=6, Q=4, R=3, S=2, stride=(2, 1)),
          ConvLayer(name="dilated", N=1, M=2, C=1, P=4, Q=6, R=3, S=3, stride=(1, 2), dilation=(2, 1)),
          ConvLayer(name="wide-stride", N=2, M=2, C=1, P=4, Q=3, R=2, S=1, stride=(3, 1))]


def two_fanouts(multicast: bool) -> Hierarchy:
    """DRAM, a shared buffer that may keep or bypass each tensor, a 2 x 2 PE
    array, a PE buffer that may too, 1 x 3 lanes, a register per lane."""
    return Hierarchy("two", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=10**9, chosen=TENSORS),
                             MemoryLevel("PEBuf", capacity_bits=10**9, per_pe=True, chosen=TENSORS),
                             MemoryLevel("Reg", capacity_bits=10**9, per_pe=True)),
                     fanouts=(Fanout("PEs", 2, 2, 2), Fanout("lanes", 3, 1, 3, multicast, multicast)))


def random_halo_mapping(problem: MultiLevelProblem, rnd: random.Random) -> MultiLevelMapping:
    """A random divisor mapping, any loop order, most levels sweeping along a window dimension."""
    mapping = with_random_keep(problem, random_multilevel_mapping(problem, rnd, full_orders=True), rnd)
    levels = []
    for loops in mapping.levels:
        order = loops.order
        if rnd.random() < 0.7:  # a window dimension innermost among the loops of its level that have trips
            window = [d for d in ("P", "Q", "R", "S") if loops.factors.get(d, 1) > 1]
            if window:
                d = rnd.choice(window)
                order = tuple(e for e in order if e != d) + (d,)
        levels.append(LevelLoops(loops.factors, order))
    return dataclasses.replace(mapping, levels=tuple(levels))


def test_step_rows_by_hand():
    """Rows one step brings in, counted by hand."""
    # 2 outputs, 3 taps, stride 1: rows 0..3; one step of 2 outputs: rows 2..5, new 4, 5
    assert step_rows(1, 1, 2, 3, (), (), 2, 0) == 2
    # stride 2, 1 tap: rows 0, 2; a step of 2 outputs: rows 4, 6, nothing shared
    assert step_rows(2, 1, 2, 1, (), (), 2, 0) == 2
    # a step along the taps: 1 output, 2 taps of dilation 2 (rows 0, 2), step 2 taps: rows 4, 6
    assert step_rows(1, 2, 1, 2, (), (), 0, 2) == 2
    # two instances 2 outputs apart, each 2 outputs x 3 taps (rows 0..3 and 2..5); one step of 4
    # outputs brings rows 4..7 and 6..9: their union 4..9 less... each instance's own new rows are
    # 4..7 minus its 0..3 = 4..7 (4) and 6..9 minus 2..5 = 6..9 (4); the union is 4..9 (6)
    assert step_rows(1, 1, 2, 3, ((2, 2),), ((1, 1),), 4, 0) == 6


def test_halo_orders_put_each_window_dimension_innermost_in_its_group():
    orders = halo_orders(GROUP_ORDERS)
    assert len(orders) == len(set(orders)) and set(GROUP_ORDERS) <= set(orders)
    for order in orders:
        assert sorted(order) == sorted(DIMS) and order[0] == "G"
    order = innermost_in_group(GROUP_ORDERS[0], "P")
    assert [d for d in order if d in ("N", "P", "Q")][-1] == "P"


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
@pytest.mark.parametrize("multicast", [True, False])
def test_evaluate_equals_the_cycle_level_model(layer, multicast):
    """On random mappings with random keep sets, evaluate's reads and writes
    with halo reuse equal those the cycle-level model watches, which also
    computes the convolution; halo reuse never adds an access."""
    plain = MultiLevelProblem(layer, two_fanouts(multicast))
    halo = dataclasses.replace(plain, halo=True)
    rnd = random.Random(f"{layer.name}{multicast}")
    saved = 0
    for _ in range(6):
        mapping = random_halo_mapping(plain, rnd)
        with_halo, without = evaluate_multilevel(halo, mapping), evaluate_multilevel(plain, mapping)
        seed = rnd.randrange(5)
        run = run_multilevel(halo, mapping, seed=seed, max_steps=300_000)
        fast = run_multilevel_vectorized(halo, mapping, seed=seed)
        assert run.outputs_match and fast.outputs_match
        assert run.reads == with_halo.reads and run.writes == with_halo.writes
        assert fast.reads == with_halo.reads and fast.writes == with_halo.writes
        for l in range(len(halo.hierarchy.levels)):
            assert with_halo.reads[l]["inputs"] <= without.reads[l]["inputs"]
            assert with_halo.writes[l]["inputs"] <= without.writes[l]["inputs"]
        saved += with_halo.reads[0]["inputs"] < without.reads[0]["inputs"]
    if layer.name == "wide-stride":  # stride 3 over 2 taps: consecutive windows never share a row
        assert not saved
    else:
        assert saved  # the draw exercises a sweep that keeps rows


SMALL = """
family: tiling
workload: {{name: small, op: conv2d, dims: {{N: 1, M: 2, C: 2, P: 6, Q: 2, R: 3, S: 1}}, stride: [{stride}, 1]}}
hardware:
  name: tiny
  source: illustrative
  energy_unit: MAC
  mac_energy: 1
  array: {{rows: 2, cols: 1}}
  levels:
    - {{name: DRAM, read_energy: 200}}
    - {{name: GLB, capacity: {glb} B, read_energy: 6{glb_holds}}}
    - {{name: RF, capacity: 10 B, per_pe: true, read_energy: 1, holds: [inputs, weights, outputs]}}
objective: {objective}
space: {{halo: true}}
solver: {{method: cpsat, time_limit: 60, workers: 1}}
"""


FIXED = ", holds: [inputs, weights, outputs]"
EXACT_CASES = [pytest.param("energy", 1, 24, FIXED, marks=pytest.mark.slow),
               pytest.param("offchip_traffic", 2, 40, "", marks=pytest.mark.slow),  # 30 s: chosen keeps, stride 2
               pytest.param("energy", 2, 40, "", marks=pytest.mark.slow),
               ("offchip_traffic", 1, 24, FIXED),
               pytest.param("latency", 1, 24, FIXED, marks=pytest.mark.slow)]


@pytest.mark.parametrize("objective,stride,glb,holds", EXACT_CASES)
def test_exact_methods_equal_the_enumeration_with_halo_reuse(objective, stride, glb, holds):
    """CP-SAT's and the MILP's optima with halo reuse equal the
    enumeration's over every factor row, group order and sweeping window
    dimension (with the GLB's keep sets fixed, or chosen), evaluate
    confirms them, and they are never above the optimum without halo reuse."""
    problem = load_text(SMALL.format(stride=stride, glb=glb, objective=objective, glb_holds=holds))
    assert problem.halo
    exact = enumerate_multilevel(problem)
    plain = enumerate_multilevel(dataclasses.replace(problem, halo=False))
    assert exact.objective <= plain.objective
    for method in ("cpsat", "milp"):
        solved = solve_multilevel(problem, method=method)
        assert solved.status == "optimal", (method, solved.message)
        assert solved.objective == pytest.approx(exact.objective), method
        assert evaluate_multilevel(problem, solved.mapping).objective(objective) == pytest.approx(exact.objective)


@st.composite
def halo_instances(draw):
    """Small layers (strided or dilated windows on either axis) on DRAM, a
    GLB that keeps or bypasses as chosen, a PE array with or without
    multicast, and a per-PE buffer."""
    stride, dilation = draw(st.sampled_from([((1, 1), (1, 1)), ((2, 1), (1, 1)), ((1, 2), (1, 1)),
                                              ((1, 1), (2, 1))]))
    layer = ConvLayer(name="h", N=1, M=draw(st.sampled_from([1, 2])), C=draw(st.sampled_from([1, 2])),
                      P=draw(st.sampled_from([2, 4, 6])), Q=draw(st.sampled_from([1, 2, 3])),
                      R=draw(st.sampled_from([1, 2, 3])), S=draw(st.sampled_from([1, 2])), stride=stride,
                      dilation=dilation)
    sharing = draw(st.booleans())
    glb = MemoryLevel("GLB", capacity_bits=8 * draw(st.sampled_from([24, 48, 96])), read_energy=6, write_energy=6,
                      chosen=TENSORS if draw(st.booleans()) else frozenset())
    hier = Hierarchy("halo", (MemoryLevel("DRAM", read_energy=200, write_energy=200), glb,
                              MemoryLevel("RF", capacity_bits=8 * 16, per_pe=True, read_energy=1, write_energy=1)),
                     mac_energy=1, fanouts=(Fanout("PEs", 2, draw(st.sampled_from([1, 2])), 2, sharing, sharing),))
    objective = draw(st.sampled_from(["energy", "offchip_traffic", "latency"]))
    return MultiLevelProblem(layer, hier, objective=objective, halo=True)


def exact_methods_agree_with_enumeration(problem) -> None:
    reference = solve_multilevel(problem, "enumerate", time_limit=600)
    assert reference.status in ("optimal", "infeasible"), reference.message
    for method in ("cpsat", "milp"):
        got = solve_multilevel(problem, method, time_limit=60)
        assert got.status == reference.status, (method, got.message)
        if reference.status == "optimal":
            assert got.objective == pytest.approx(reference.objective), method


@settings(max_examples=2, deadline=None, derandomize=True)
@given(halo_instances())
def test_exact_methods_agree_with_the_enumeration_on_random_halo_instances(problem):
    exact_methods_agree_with_enumeration(problem)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(halo_instances())
def test_exact_methods_agree_with_the_enumeration_on_many_halo_instances(problem):
    exact_methods_agree_with_enumeration(problem)


def test_halo_reuse_is_declared_kept_and_solved_by_every_method():
    """The instance's ``space: {halo: true}`` survives a dump and reload
    (what ``verify`` re-solves), the space description names it, and
    every exact method takes it."""
    from mapcert.formulations.registry import family_of
    problem = load_text(SMALL.format(stride=1, glb=24, objective="energy", glb_holds=FIXED))
    dumped = family_of(problem).dump(problem)
    assert dumped["space"] == {"halo": True}
    assert "halo reuse" in problem.space_description
    assert all(method.why_not(problem) is None for method in family_of(problem).methods(problem))
