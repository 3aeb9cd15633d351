"""The rows the exact models leave out (``fitting.py``) belong to no mapping
that fits: checked against the enumeration's own feasibility over the whole
space, on small instances with chosen bypass, per-PE and partitioned levels,
divisor and partial-tile factors."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings

from mapcert.formulations.tiling.multilevel.bypass import keep_sets
from mapcert.formulations.tiling.multilevel.clipped_cost import ClippedTables, clipped_objective_values
from mapcert.formulations.tiling.multilevel.cost import objective_values
from mapcert.formulations.tiling.multilevel.fitting import fitting_choices, overflow_reason
from mapcert.formulations.tiling.multilevel.problem import DIMS, MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.multilevel.space import dim_choices, level_orders
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.hierarchy import Hierarchy, MemoryLevel
from mapcert.instances import load

from test_multilevel_bypass import instances


def rows_of_feasible_mappings(problem, index: dict[str, np.ndarray] | None = None,
                              every_order: bool = True) -> dict[str, set[tuple[int, ...]]]:
    """Per dimension, the rows some fitting mapping uses (under some group
    orders and, where chosen, some keep set): over the whole space, or over
    the combinations ``index`` lists (row numbers per dimension). Over
    divisor factors whether a mapping fits does not depend on the orders,
    and one combination of them (``every_order`` False) says it."""
    choices = {d: dim_choices(problem, d) for d in DIMS}
    if index is None:
        grids = np.meshgrid(*(np.arange(len(choices[d])) for d in DIMS), indexing="ij")
        index = {d: g.ravel() for d, g in zip(DIMS, grids, strict=True)}
    table = {d: np.asfortranarray(choices[d][index[d]]) for d in DIMS}
    keeps = keep_sets(problem.hierarchy) if problem.hierarchy.chooses_bypass else None
    clipped = ClippedTables(problem, choices) if problem.factors != "divisors" else None
    feasible = np.zeros(len(index["N"]), dtype=bool)
    orders_to_try = itertools.product(*level_orders(problem))
    if not every_order:
        assert problem.factors == "divisors"
        orders_to_try = itertools.islice(orders_to_try, 1)
    for orders in orders_to_try:
        if clipped is None:
            scored = objective_values(problem, table, list(orders), keeps)
        else:
            scored = clipped_objective_values(problem, clipped, index, table, list(orders), keeps)
        feasible |= np.broadcast_to(scored[1], feasible.shape)
    return {d: {tuple(int(v) for v in choices[d][i]) for i in np.unique(index[d][feasible])} for d in DIMS}


def dropped_rows(problem) -> dict[str, set[tuple[int, ...]]]:
    kept = fitting_choices(problem)
    out = {}
    for d in DIMS:
        all_rows = [tuple(int(v) for v in r) for r in dim_choices(problem, d)]
        kept_rows = [tuple(int(v) for v in r) for r in kept[d]]
        # a filter: the kept rows in their original order
        assert kept_rows == [r for r in all_rows if r in set(kept_rows)], d
        out[d] = set(all_rows) - set(kept_rows)
    return out


def assert_no_dropped_row_fits(problem) -> int:
    used = rows_of_feasible_mappings(problem)
    dropped = dropped_rows(problem)
    for d in DIMS:
        assert not dropped[d] & used[d], (d, sorted(dropped[d] & used[d]))
    return sum(len(rows) for rows in dropped.values())


@settings(max_examples=6, deadline=None, derandomize=True)
@given(instances())
def test_no_dropped_row_belongs_to_a_fitting_mapping(problem):
    assert_no_dropped_row_fits(problem)


@pytest.mark.slow  # 14 s; the divisor-tile case runs by default
@settings(max_examples=4, deadline=None, derandomize=True)
@given(instances())
def test_no_dropped_row_belongs_to_a_fitting_mapping_with_partial_tiles(problem):
    assert_no_dropped_row_fits(replace(problem, factors="any"))


def tight_instance() -> MultiLevelProblem:
    """DRAM > GLB > [2 x 2 PEs] > RF with a six-word register file."""
    layer = ConvLayer(name="t", N=1, M=4, C=2, P=4, Q=1, R=3, S=1)
    hier = Hierarchy("h", (
        MemoryLevel("DRAM", read_energy=200, write_energy=200),
        MemoryLevel("GLB", capacity_bits=8 * 48, read_energy=6, write_energy=6),
        MemoryLevel("RF", capacity_bits=8 * 6, per_pe=True, read_energy=1, write_energy=1),
    ), rows=2, cols=2, mac_energy=1)
    return MultiLevelProblem(layer, hier, objective="energy")


def test_the_rule_drops_rows_on_a_tight_hierarchy():
    """The check above is not vacuous: a small register file loses rows."""
    problem = tight_instance()
    assert rows_of_feasible_mappings(problem) == rows_of_feasible_mappings(problem, every_order=False)
    assert assert_no_dropped_row_fits(problem) > 0


def test_a_one_weight_register_keeps_only_unit_weight_factors(tmp_path):
    """On the systolic array whose per-PE register holds one weight, every
    row left has factor 1 there for each dimension of the weights."""
    path = tmp_path / "tpu.yaml"
    path.write_text("family: tiling\nhardware: tpu-like\nobjective: energy\n"
                    "workload: {name: l, dims: {N: 1, M: 64, C: 32, P: 14, Q: 14, R: 3, S: 3}}\n")
    problem = load(str(path))
    names = [level.name for level in problem.hierarchy.levels]
    register = names.index("WeightReg")
    kept = fitting_choices(problem)
    for d in ("M", "C", "R", "S"):
        assert len(kept[d]) < len(dim_choices(problem, d)), d
        tiles = {int(np.prod(r[register:len(names)])) for r in kept[d]}
        assert tiles == {1}, d


def test_a_dimension_left_without_rows_is_reported_infeasible():
    """Nothing fits: every exact method says so, in words, without a traceback."""
    problem = tight_instance()
    tiny = problem.hierarchy.levels[2]
    hier = replace(problem.hierarchy, levels=problem.hierarchy.levels[:2] + (replace(tiny, capacity_bits=8),))
    problem = replace(problem, hierarchy=hier)
    assert any(len(rows) == 0 for rows in fitting_choices(problem).values())
    for method in ("enumerate", "cpsat", "milp"):
        result = solve_multilevel(problem, method, time_limit=30)
        assert result.status == "infeasible", (method, result.status, result.message)
        assert result.mapping is None
        if method != "enumerate":  # the exact models say which level overflows, and by how much
            assert "RF holds 8 bits, and the smallest tiles" in result.message and "need 40 bits" in result.message, \
                result.message


@pytest.mark.parametrize("hardware", ["eyeriss", "simba-pe", "eyeriss-like", "tpu-like"])
def test_on_the_presets_no_sampled_mapping_with_a_dropped_row_fits(tmp_path, hardware):
    """Spaces too large to list: per dimension, random combinations (seeded)
    of one of its dropped rows with kept rows of the others (the likelier
    to fit), each under every group order, on a ResNet-like layer; none fits."""
    path = tmp_path / "l.yaml"
    path.write_text(f"family: tiling\nhardware: {hardware}\nobjective: energy\n"
                    "workload: {name: l, dims: {N: 1, M: 64, C: 32, P: 14, Q: 14, R: 3, S: 3}}\n")
    problem = load(str(path))
    choices = {d: dim_choices(problem, d) for d in DIMS}
    kept = fitting_choices(problem)
    rng = np.random.default_rng(0)
    kept_index = {}
    for d in DIMS:
        kept_rows = {tuple(int(v) for v in r) for r in kept[d]}
        kept_index[d] = np.asarray([i for i, r in enumerate(choices[d]) if tuple(int(v) for v in r) in kept_rows])
    assert any(len(kept[d]) < len(choices[d]) for d in DIMS)  # rows do go on these presets
    for d in DIMS:
        gone = np.setdiff1d(np.arange(len(choices[d])), kept_index[d])
        if not len(gone):
            continue
        index = {e: rng.choice(kept_index[e], SAMPLE) for e in DIMS}
        index[d] = rng.choice(gone, SAMPLE)
        assert not any(rows_of_feasible_mappings(problem, index, every_order=False).values()), d


SAMPLE = 500


def test_an_overflowing_partition_is_named_with_its_bits():
    problem = tight_instance()
    rf = replace(problem.hierarchy.levels[2], capacity_bits=None,
                 partition_bits={"inputs": 4, "weights": 32, "outputs": 32})
    problem = replace(problem, hierarchy=replace(problem.hierarchy, levels=problem.hierarchy.levels[:2] + (rf,)))
    assert overflow_reason(problem) == ("RF's inputs partition holds 4 bits, and the smallest tiles of the inputs "
                                        "it must hold need 8 bits")
    assert overflow_reason(tight_instance()) is None


def test_a_tensor_the_mapping_may_bypass_takes_no_room():
    """With the register file's keep set left to the mapping, none of its
    tensors counts against it (a mapping may bypass them all), so rows the
    fixed register file drops come back, and none of them is wrong."""
    fixed = tight_instance()
    rf = replace(fixed.hierarchy.levels[2], chosen=frozenset(("inputs", "weights", "outputs")))
    chosen = replace(fixed, hierarchy=replace(fixed.hierarchy, levels=fixed.hierarchy.levels[:2] + (rf,)))
    assert assert_no_dropped_row_fits(chosen) < assert_no_dropped_row_fits(fixed)
