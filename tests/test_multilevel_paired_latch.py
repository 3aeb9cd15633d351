"""The paired latch term of the multi-level energy bound
(``validation/latch_pairing.py``, docs/tiling-multilevel.md, "Paired latch
changes").

It must hold for every schedule of the latch machine, not only for our
mapping space: the replays below stagger units with random idling, deal
the MACs to units at random, and keep weights stationary, the schedules
that make the most gaps change only an input and an output latch."""

from __future__ import annotations

import random
from dataclasses import replace

import highspy
import numpy as np
import pytest

from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel, hierarchy_preset
from mapcert.validation import latch_pairing
from mapcert.validation.latch_pairing import pair_capacity, window_capacity
from mapcert.validation.multilevel_bounds import (
    latch_and_merge_energy,
    latch_refill,
    multilevel_bounds,
    paired_latch_term,
)

from latch_replay import SCHEDULES, check_once, layer_macs, replay


def shared_buffer(rows: int, cols: int) -> Hierarchy:
    """DRAM, one buffer that holds everything, and a fan-out of
    ``rows x cols`` MAC units that multicasts and reduces across all of
    them: every latch is fed by the buffer, one access serving any units."""
    levels = (MemoryLevel("DRAM", read_energy=200, write_energy=200),
              MemoryLevel("Buffer", capacity_bits=8 * 4096, read_energy=6, write_energy=6))
    return Hierarchy("shared-buffer", levels, mac_energy=1, fanouts=(Fanout("lanes", 2, rows, cols),))


def bypassable_buffer() -> Hierarchy:
    """`shared_buffer(4, 4)` whose buffer may bypass inputs: DRAM may then
    feed the input latches, its first read of each input free in this term
    (the compulsory term's) and the others priced."""
    base = shared_buffer(4, 4)
    levels = (base.levels[0], replace(base.levels[1], chosen=frozenset({"inputs"})))
    return replace(base, levels=levels)


LAYERS = [
    ConvLayer("pointwise", 1, 8, 8, 3, 3),
    ConvLayer("conv3", 1, 4, 4, 4, 1, 3, 1),
    ConvLayer("conv3x3", 1, 2, 3, 3, 3, 3, 3),
]


def test_pair_capacity():
    """The greedy fill of the capacity LP: its known values, never above
    the ``units / 2`` the shares alone allow, growing with both."""
    assert pair_capacity(1, 64) == pytest.approx(9 + 10 / 11)
    assert pair_capacity(9, 64) == pytest.approx(22.75)
    assert pair_capacity(64, 64) == pytest.approx(32)
    assert pair_capacity(1, 1) == pytest.approx(0.5)
    assert pair_capacity(0, 64) == 0.0
    values = [[pair_capacity(k, u) for u in (4, 16, 64, 256)] for k in (1, 3, 9)]
    for k, row in zip((1, 3, 9), values):
        assert all(a < b for a, b in zip(row, row[1:]))
        assert all(v <= u / 2 + 1e-12 for v, u in zip(row, (4, 16, 64, 256)))
    assert all(a <= b for a, b in zip(values[0], values[1]))
    # windows: about sqrt(K U) for two kinds, with windows of some 16 events at K = 1, U = 64
    per_event, constant = window_capacity(1, 64, 2)
    assert per_event == pytest.approx(8.0) and 0 < constant < 64
    assert window_capacity(1, 65536, 2)[0] == pytest.approx(256.0)
    assert window_capacity(1, 10**8, 2)[0] == pytest.approx(1e4)  # a 10^4 x 10^4 array: a short search still
    assert window_capacity(1, 64, 3)[0] > window_capacity(1, 64, 2)[0]  # more kinds, more pairs in a window


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
@pytest.mark.parametrize("units", [4, 8, 16])
def test_replayed_gaps_never_exceed_the_pair_capacity(layer, units):
    """The lemma itself, on schedules outside our space: gaps that change
    an input and an output latch (and keep the weight) number at most
    ``pair_capacity(R*S, units)`` per input read or output drain; gaps that
    change the input and the weight latch at most ``pair_capacity(1, units)``
    per input or weight read."""
    macs = layer_macs(layer)
    rnd = random.Random(units * 31 + len(macs))
    taps = min(layer.R * layer.S, units)
    tightest = grid = 0.0
    for schedule in SCHEDULES:
        for idle in (0.0, 0.3, 0.7):
            steps = schedule(macs, units, rnd, idle)
            check_once(steps, macs)
            got = replay(steps)
            io_events = got.reads["I"] + got.drains
            assert got.gaps["IO"] <= pair_capacity(taps, units) * io_events
            assert got.gaps["IW"] + got.gaps["IWO"] <= pair_capacity(1, units) * (got.reads["I"] + got.reads["W"])
            assert got.gaps["WO"] <= pair_capacity(taps, units) * (got.reads["W"] + got.drains)
            for fresh, events, gaps in (("IO", io_events, got.gaps["IO"] + got.gaps["IWO"]),
                                        ("WO", got.reads["W"] + got.drains, got.gaps["WO"] + got.gaps["IWO"])):
                per_event, constant = window_capacity(1, 2 * units, 2)
                assert gaps <= got.fresh[fresh] <= min(pair_capacity(1, 2 * units) * events,
                                                       per_event * events + constant)
            all_events = io_events + got.reads["W"]
            per_event, constant = window_capacity(1, 2 * units, 3)
            assert got.gaps["IO"] + got.gaps["WO"] + got.gaps["IWO"] <= got.fresh["any"]
            assert got.fresh["any"] <= min(pair_capacity(1, 2 * units) * all_events, per_event * all_events + constant)
            for side in (got.reads["I"], got.drains):  # step 4: one kind's events shared by many gaps
                assert got.gaps["IO"] <= 2 * (taps * units * side * io_events) ** 0.5
                assert got.fresh["IO"] <= 2 * (2 * units * side * io_events) ** 0.5
            for kinds, k, events, gaps in ((2, taps, io_events, got.gaps["IO"]),
                                           (3, taps, all_events, sum(got.gaps.values()))):
                per_event, constant = window_capacity(k, units, kinds)
                assert gaps <= per_event * events + constant
            tightest = max(tightest, got.gaps["IO"] / (pair_capacity(taps, units) * io_events))
            # step 6: the gaps that keep the weight pair their reads and drains as a grid does, up to
            # the weight changes around them
            changes = got.gaps["IW"] + got.gaps["WO"] + got.gaps["IWO"]
            for one, other in ((got.drains, got.reads["I"]), (got.reads["I"], got.drains)):
                assert got.gaps["IO"] ** 2 <= taps ** 2 * units * one * (other + changes) + 1e-9
                grid = max(grid, got.gaps["IO"] ** 2 / (taps ** 2 * units * one * (other + changes)))
    assert tightest > (0.35 if taps == 1 else 0.1)  # the lockstep grid comes within a few times of it
    if taps == 1:
        assert grid > 0.5  # ... and within a factor of two of step 6's count


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
@pytest.mark.parametrize("rows, cols", [(2, 2), (2, 4), (4, 4)])
def test_no_replayed_schedule_spends_less_than_the_term(layer, rows, cols):
    """The energy of the latch-feeding reads and drains and of the merge
    read-backs of every replayed schedule is at least the paired term."""
    problem = MultiLevelProblem(layer, shared_buffer(rows, cols))
    bound = paired_latch_term(problem)
    macs = layer_macs(layer)
    rnd = random.Random(rows * 100 + cols)
    least = float("inf")
    for schedule in SCHEDULES:
        for idle in (0.0, 0.2, 0.6):
            for _ in range(3):
                steps = schedule(macs, rows * cols, rnd, idle)
                spent = replay(steps).energy(access=6, merge=6)
                assert spent >= bound - 1e-9
                least = min(least, spent)
    assert bound > 0 and least < 12 * bound  # the term is of the order of what schedules spend


def weight_register_buffer(rows: int, cols: int) -> Hierarchy:
    """``shared_buffer`` with a one-weight register per unit between the
    buffer and the weight latch: every weight latch change needs the
    register refilled (step 7)."""
    base = shared_buffer(rows, cols)
    register = MemoryLevel("WeightReg", capacity_bits=8, holds=frozenset({"weights"}), per_pe=True,
                           read_energy=1, write_energy=1)
    return replace(base, levels=base.levels + (register,), fanouts=(Fanout("lanes", 2, rows, cols),))


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
@pytest.mark.parametrize("rows, cols", [(2, 2), (4, 4)])
def test_no_replayed_schedule_with_weight_registers_spends_less_than_the_term(layer, rows, cols, monkeypatch):
    """With a one-weight register per unit, a weight latch change reads the
    register, which was written since the unit's last load, filled by a
    buffer read that every unit loading that weight at that moment shares.
    The replayed energy of those events, the input reads, the drains and
    the merges is at least the paired term plus what the ``holders`` term
    counts of them (each weight written into a register and read out of
    the buffer once)."""
    problem = MultiLevelProblem(layer, weight_register_buffer(rows, cols))
    refill = latch_refill(problem, "weights")
    assert refill is not None and refill.units == 1 and refill.fill == pytest.approx(6 / (rows * cols))
    bound = paired_latch_term(problem) + (1 + 6) * layer.weight_elements
    macs = layer_macs(layer)
    rnd = random.Random(rows * 10 + cols)
    for schedule in SCHEDULES:
        for idle in (0.0, 0.3):
            for _ in range(2):
                got = replay(schedule(macs, rows * cols, rnd, idle))
                changes = got.gaps["IW"] + got.gaps["WO"] + got.gaps["IWO"] + len(macs) - sum(got.gaps.values())
                spent = 6 * (got.reads["I"] + got.drains + got.merges + got.reads["W"]) + 2 * changes
                assert spent >= bound - 1e-9, (schedule.__name__, spent, bound)
    with_refills = paired_latch_term(problem)
    monkeypatch.setattr("mapcert.validation.multilevel_bounds.latch_refill", lambda problem, tensor: None)
    without = paired_latch_term(problem)
    assert with_refills >= without
    if rows * cols == 4:  # few units and few weights: the refills bind (else the replays would not check them)
        assert with_refills > 1.1 * without


def test_the_paired_term_is_the_larger_one_on_wide_multicast():
    """Else the tests of the bound would not check it: with 16 units that
    share inputs and outputs, the paired term is well above the plain one
    on layers with fewer filter taps than units (a pair of events serves up
    to ``R*S`` gaps), and on `simba-pe` and `tpu-like` it raises the energy
    bound."""
    for layer in LAYERS[:2]:
        problem = MultiLevelProblem(layer, shared_buffer(4, 4))
        assert paired_latch_term(problem) > 1.2 * latch_and_merge_energy(problem)
    pointwise = ConvLayer("res2a", 1, 64, 64, 56, 56)
    for preset in ("simba-pe", "tpu-like"):
        problem = MultiLevelProblem(pointwise, hierarchy_preset(preset))
        assert paired_latch_term(problem) > 2 * latch_and_merge_energy(problem)


def test_a_unit_per_unit_fan_out_gains_nothing():
    """With no sharing (`eyeriss`: every latch fed by a per-PE register)
    the pairs add nothing, and the term equals the plain one."""
    layer = ConvLayer("res2a", 1, 64, 64, 56, 56)
    problem = MultiLevelProblem(layer, hierarchy_preset("eyeriss"))
    assert paired_latch_term(problem) <= latch_and_merge_energy(problem) * (1 + 1e-6)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_no_optimum_of_the_widest_space_is_below_the_bound(layer):
    """Proved optima of the widest declared spaces (any factors; halo
    reuse, which is modelled over divisor factors) on the 4 x 4 shared
    fan-out and on the bypassable buffer stay at or above the bound."""
    for hierarchy in (shared_buffer(4, 4), bypassable_buffer()):
        for space in ({"factors": "any"}, {"halo": True}):
            problem = MultiLevelProblem(layer, hierarchy, **space)
            solved = solve_multilevel(problem, "cpsat", 60)
            assert solved.status == "optimal"
            assert multilevel_bounds(problem).objective <= solved.objective + 1e-9


@pytest.mark.parametrize("hierarchy", [shared_buffer(4, 4), bypassable_buffer(), weight_register_buffer(2, 2)],
                         ids=["kept", "bypassable", "weight-register"])
def test_the_bound_is_read_from_a_repaired_dual(hierarchy, monkeypatch):
    """The term is the LP's optimum (up to its safety margin), also with
    events that cost nothing, and a wrong dual only lowers it: weak
    duality with the repair never overstates."""
    problem = MultiLevelProblem(ConvLayer("pointwise", 1, 8, 8, 3, 3), hierarchy)
    captured = {}
    real_dual_bound = latch_pairing._dual_bound

    def spy(matrix, rhs, cost, duals, caps=None):
        captured.update(matrix=matrix, rhs=rhs, cost=cost, duals=duals, caps=caps)
        return real_dual_bound(matrix, rhs, cost, duals, caps)

    monkeypatch.setattr(latch_pairing, "_dual_bound", spy)
    value = paired_latch_term(problem)
    matrix, rhs, cost = captured["matrix"], captured["rhs"], captured["cost"]
    assert value == pytest.approx(_primal_optimum(matrix, rhs, cost), rel=1e-6)
    rnd = np.random.default_rng(3)
    for _ in range(50):
        noisy = captured["duals"] * rnd.uniform(0.5, 1.5, size=len(rhs)) + rnd.normal(0, 0.1, size=len(rhs))
        assert real_dual_bound(matrix, rhs, cost, noisy, captured["caps"]) <= value * (1 + 1e-9)
    # the repaired duals are feasible: every column within its cost, also from duals that overweight the
    # rows pairing the gaps that keep the weight (step 6), whose entries in the columns of the gaps that
    # change the weight are positive, where raising them alone would break those columns
    step6 = np.any(matrix[:, matrix[0] > 0] > 0, axis=1) & (np.arange(len(rhs)) > 0)
    assert step6.any()
    scale = np.abs(captured["duals"]).max()
    trials = [captured["duals"] * rnd.uniform(0.5, 1.5, size=len(rhs)) + rnd.normal(0, 0.1, size=len(rhs))
              for _ in range(20)]
    trials += [captured["duals"] + factor * scale * step6 * rnd.uniform(0, 1, size=len(rhs))
               for factor in (0.01, 0.1, 1.0, 10.0)]
    for duals in trials:
        y = latch_pairing._repaired_duals(matrix, rhs, cost, duals, captured["caps"])
        assert np.all(y >= 0)
        assert np.all(matrix.T @ y <= cost + 1e-9 * (1 + np.abs(cost))), "a column's dual constraint is broken"


def _primal_optimum(matrix, rhs, cost) -> float:
    lp = highspy.Highs()
    lp.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    for c in cost:
        lp.addVar(0.0, inf)
    lp.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), np.array(cost, dtype=float))
    for row, b in zip(matrix, rhs):
        nz = np.nonzero(row)[0]
        lp.addRow(float(b), inf, len(nz), nz.astype(np.int32), row[nz])
    lp.run()
    return lp.getInfo().objective_function_value
