"""Loop-order constraints (``constraints.levels.NAME.order``): the exact
methods solve them on split levels (``ordered.py``); a brute force that
scores every order the constraint allows, on the original hierarchy, must
find the same optimum."""

from __future__ import annotations

import itertools

import pytest
import yaml

from mapcert.formulations.tiling.multilevel import enumeration, space
from mapcert.formulations.tiling.multilevel.constraints import order_breaks, violations
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.ordered import split_ordered
from mapcert.formulations.tiling.multilevel.problem import DIMS, LevelLoops, MultiLevelMapping, layer_extent
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.instances import load
from mapcert.solvers.multilevel_heuristics import HEURISTICS

HARDWARE = {
    "name": "tiny-array", "source": "illustrative", "energy_unit": "MAC", "mac_energy": 1,
    "array": {"rows": 2, "cols": 2},
    "levels": [{"name": "DRAM", "read_energy": 200},
               {"name": "GLB", "capacity": "160 B", "holds": ["inputs", "outputs"], "read_energy": 6},
               {"name": "RF", "capacity": "16 B", "per_pe": True, "read_energy": 1}],
}
DIMS_8 = {"N": 1, "M": 8, "C": 8, "P": 4, "Q": 4, "R": 3, "S": 1}


def instance(tmp_path, levels: dict, dims=DIMS_8, space_: dict | None = None):
    data = {"family": "tiling", "workload": {"name": "t", "op": "conv2d", "dims": dims}, "hardware": HARDWARE,
            "objective": "energy", "constraints": {"levels": levels}}
    if space_:
        data["space"] = space_
    path = tmp_path / "ordered.yaml"
    path.write_text(yaml.safe_dump(data))
    return load(str(path))


def brute_force(problem, monkeypatch):
    """The enumeration on the original hierarchy, with every order of the
    dimensions that have trips that each constrained level allows (the
    others keep their group orders)."""
    big = [d for d in DIMS if layer_extent(problem.layer, d) > 1]
    small = tuple(d for d in DIMS if d not in big)
    reduced = space.level_orders

    def orders(p):
        out = list(reduced(p))
        for level, order in p.constraints.orders.items():
            out[level] = tuple(small + perm for perm in itertools.permutations(big)
                               if not order_breaks(order, LevelLoops({d: 2 for d in DIMS}, small + perm)))
        return out

    monkeypatch.setattr(enumeration, "level_orders", orders)
    found = enumeration.enumerate_multilevel(problem)
    monkeypatch.setattr(enumeration, "level_orders", reduced)
    return found


@pytest.mark.slow  # 45 s; the default run checks orders against the brute force with halo and partial tiles below
def test_an_order_that_costs_energy_is_solved_exactly_by_every_method(tmp_path, monkeypatch):
    free = solve_multilevel(instance(tmp_path, {}), "cpsat", 60)
    problem = instance(tmp_path, {"DRAM": {"order": ["M", "C", "Q", "P"]}})
    truth = brute_force(problem, monkeypatch)
    assert truth.objective > free.objective  # the constraint matters here
    for method in ("cpsat", "milp", "enumerate"):
        result = solve_multilevel(problem, method, 120)
        assert result.status == "optimal", result.message
        assert result.objective == pytest.approx(truth.objective)
        assert not violations(problem.constraints, problem.hierarchy, result.mapping)
        assert evaluate_multilevel(problem, result.mapping).energy == pytest.approx(result.objective)
        assert [d for d in result.mapping.levels[0].order if result.mapping.levels[0].factors[d] > 1][-4:] \
            == [d for d in ("M", "C", "Q", "P") if result.mapping.levels[0].factors[d] > 1]


@pytest.mark.parametrize("levels,space_,dims", [
    ({"GLB": {"order": ["C", "M"]}, "RF": {"order": ["R", "Q", "P", "M", "C"]}}, None, DIMS_8),
    pytest.param({"GLB": {"order": ["C", "M"]}}, {"halo": True},
                 {"N": 1, "M": 4, "C": 4, "P": 4, "Q": 2, "R": 3, "S": 1}, marks=pytest.mark.slow),
    pytest.param({"RF": {"order": ["P", "C"]}, "DRAM": {"order": ["P", "M"]}}, {"factors": "any"},
                 {"N": 1, "M": 3, "C": 4, "P": 5, "Q": 2, "R": 3, "S": 1}, marks=pytest.mark.slow),
])
def test_orders_with_halo_reuse_and_partial_tiles_agree_with_the_brute_force(tmp_path, monkeypatch, levels, space_,
                                                                              dims):
    problem = instance(tmp_path, levels, dims, space_)
    truth = brute_force(problem, monkeypatch)
    for method in ("cpsat", "milp"):
        result = solve_multilevel(problem, method, 120)
        assert result.status == "optimal", result.message
        assert result.objective == pytest.approx(truth.objective)
        assert not violations(problem.constraints, problem.hierarchy, result.mapping)


def test_a_full_order_fixes_the_level(tmp_path):
    full = ["N", "G", "S", "R", "M", "Q", "C", "P"]
    problem = instance(tmp_path, {"GLB": {"order": full}})
    result = solve_multilevel(problem, "cpsat", 60)
    assert result.status == "optimal"
    assert list(result.mapping.levels[1].order) == full


def test_split_levels_carry_each_loop_once_and_fold_back(tmp_path):
    problem = instance(tmp_path, {"GLB": {"order": ["C", "M"]}, "RF": {"order": ["P"]}})
    split = split_ordered(problem)
    names = [level.name for level in split.problem.hierarchy.levels]
    assert names == ["DRAM", "GLB", "GLB/C", "GLB/M", "RF", "RF/P"]
    assert split.problem.hierarchy.fanouts[0].level == 4  # still right above RF
    result = solve_multilevel(problem, "cpsat", 60)
    assert split.fold(split.unfold(result.mapping)) == result.mapping
    # a run of one reuse group's loops (Q, P: neither indexes the weights) shares a level over divisors,
    # not with halo reuse, which reads the order inside a group
    runs = split_ordered(instance(tmp_path, {"DRAM": {"order": ["M", "C", "Q", "P"]}}))
    assert [level.name for level in runs.problem.hierarchy.levels][:4] == ["DRAM", "DRAM/M", "DRAM/C", "DRAM/QP"]
    halo = split_ordered(instance(tmp_path, {"DRAM": {"order": ["M", "C", "Q", "P"]}}, space_={"halo": True}))
    assert [level.name for level in halo.problem.hierarchy.levels][3:5] == ["DRAM/Q", "DRAM/P"]
    assert evaluate_multilevel(split.problem, split.unfold(result.mapping)).energy == pytest.approx(result.objective)


def test_evaluate_refuses_a_mapping_that_breaks_the_order(tmp_path):
    problem = instance(tmp_path, {"GLB": {"order": ["C", "M"]}})
    result = solve_multilevel(problem, "cpsat", 60)
    glb = result.mapping.levels[1]
    moved = LevelLoops({**glb.factors, "C": 2, "M": 2}, (*(d for d in DIMS if d not in "CM"), "M", "C"))
    broken = MultiLevelMapping(levels=(result.mapping.levels[0], moved, result.mapping.levels[2]),
                               fanouts=result.mapping.fanouts)
    assert violations(problem.constraints, problem.hierarchy, broken) == [
        "breaks the constraint GLB: C, M innermost, in this order"]
    # loops that run once may sit anywhere
    assert not order_breaks(("C", "M"), LevelLoops({**{d: 1 for d in DIMS}, "M": 2, "N": 2}, DIMS))
    assert order_breaks(("C", "M"), LevelLoops({**{d: 1 for d in DIMS}, "M": 2, "P": 2}, DIMS))


def test_heuristics_return_mappings_that_obey_the_order(tmp_path):
    problem = instance(tmp_path, {"GLB": {"order": ["C", "M"]}, "RF": {"order": ["Q", "P"]}})
    found = {name: HEURISTICS[name](problem) for name in ("random", "greedy-largest-tile", "zigzag-orders")}
    assert sum(mapping is not None for mapping in found.values()) >= 2  # the check below is not vacuous
    for name, mapping in found.items():
        if mapping is not None:
            assert not violations(problem.constraints, problem.hierarchy, mapping), name


def test_the_schema_checks_orders(tmp_path):
    from mapcert.instances import InstanceError

    with pytest.raises(InstanceError, match="at most once"):
        instance(tmp_path, {"GLB": {"order": ["C", "C"]}})
    with pytest.raises(InstanceError, match="no level named"):
        instance(tmp_path, {"SRAM": {"order": ["C"]}})


def test_an_infeasible_answer_points_at_the_constraint_and_names_every_dimension(tmp_path):
    import subprocess
    import sys

    data = {"family": "tiling", "workload": {"name": "t", "op": "conv2d", "dims": DIMS_8}, "hardware": HARDWARE,
            "objective": "energy",
            "constraints": {"levels": {"RF": {"factors": {"C": 1, "M": 1}}, "GLB": {"whole": ["C", "M"]}},
                            "spatial": {"rows": ["R"], "cols": ["P"]}}}
    path = tmp_path / "infeasible.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    run = subprocess.run([sys.executable, "-m", "mapcert", "solve", str(path)], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "constraints.levels" in run.stderr and "INFEASIBLE" in run.stderr
    assert "map M (extent 8)" in run.stderr and "map C (extent 8)" in run.stderr


def test_an_unknown_field_gets_the_nearest_known_one(tmp_path):
    from mapcert.instances import InstanceError

    with pytest.raises(InstanceError) as caught:
        instance(tmp_path, {"GLB": {"ordr": ["C"], "permutation": ["C", "M"]}})
    text = str(caught.value)
    assert "constraints.levels.GLB.ordr: unknown field; did you mean 'order'?" in text
    assert "permutation: unknown field; mapcert calls it 'order'" in text


def test_a_fixed_factor_that_divides_no_extent_is_a_mapping_of_the_any_space(tmp_path):
    """RF: P = 3 with P = 8 leaves the divisor space empty, not the space
    of partial tiles (3 trips of whole tiles at RF under 3 outer trips, the
    last RF run partial): the answer is an optimum, not "infeasible"."""
    dims = {"N": 1, "M": 4, "C": 4, "P": 8, "Q": 2, "R": 3, "S": 1}
    problem = instance(tmp_path, {"RF": {"factors": {"P": 3}}}, dims, {"factors": "any"})
    found = {method: solve_multilevel(problem, method, 120) for method in ("cpsat", "milp")}
    assert all(r.status == "optimal" for r in found.values()), [r.message for r in found.values()]
    assert found["cpsat"].objective == pytest.approx(found["milp"].objective)
    assert found["cpsat"].mapping.levels[2].factors["P"] == 3
    divisors = instance(tmp_path, {"RF": {"factors": {"P": 3}}}, dims)
    assert solve_multilevel(divisors, "cpsat", 60).status == "infeasible"


def test_an_ordered_instance_that_nothing_fits_is_said_of_the_original_levels(tmp_path):
    hardware = {**HARDWARE, "levels": [HARDWARE["levels"][0], {**HARDWARE["levels"][1], "capacity": "1 B"},
                                       {**HARDWARE["levels"][2], "capacity": "1 B"}]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"family": "tiling", "workload": {"name": "t", "op": "conv2d", "dims": DIMS_8},
                                    "hardware": hardware, "objective": "energy",
                                    "constraints": {"levels": {"GLB": {"order": ["P", "Q"]}}}}))
    result = solve_multilevel(load(str(path)), "cpsat", 30)
    assert result.status == "infeasible"
    # the capacity is the cause whatever the order constraint, and it is said of an original level
    assert result.message.startswith("no mapping fits the hierarchy, whatever the constraints: "), result.message
    assert result.message.split(": ", 1)[1].split(" ")[0] in ("GLB", "RF"), result.message

