"""Mapping constraints on hierarchies: every exact method solves the
constrained space (agreeing with enumeration), the optimum satisfies every
constraint and is never below the unconstrained one, a constraint that
empties the space is named, and evaluate refuses a mapping that breaks one."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from helpers import run_mapcert
from mapcert.formulations.tiling.multilevel.constraints import (LevelConstraint, MappingConstraints,
                                                                 SpatialConstraint, violations)
from mapcert.formulations.tiling.multilevel.problem import DIMS, layer_extent
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.instances import load_text
from test_multilevel_exact import instances

USER_DIMS = ("N", "M", "C", "P", "Q", "R", "S")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def constrained(draw, base=instances):
    """(the problem without constraints, the problem with random ones)."""
    problem = draw(base())
    layer = problem.layer
    level = draw(st.sampled_from([1, 2]))
    dim = draw(st.sampled_from([d for d in USER_DIMS if layer_extent(layer, d) > 1] or ["M"]))
    fixed = draw(st.sampled_from(divisors(layer_extent(layer, dim))))
    whole = draw(st.sampled_from([(), ("R",), ("C",)]))
    rows = draw(st.sampled_from([None, ("C", "R"), ("M",), ()]))
    cols = draw(st.sampled_from([None, ("P", "Q"), ("M", "C")]))
    least = draw(st.sampled_from([0.0, 0.5, 1.0]))
    constraints = MappingConstraints(
        levels=tuple(sorted({level: LevelConstraint(factors=((dim, fixed),), whole=whole)}.items())),
        fanouts=((0, SpatialConstraint(rows=rows, cols=cols, min_utilization=least)),))
    return problem, replace(problem, constraints=constraints)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(constrained())
def test_every_exact_method_solves_the_constrained_space(pair):
    every_exact_method_solves_the_constrained_space(pair)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True)
@given(constrained())
def test_every_exact_method_solves_the_constrained_space_on_many_instances(pair):
    every_exact_method_solves_the_constrained_space(pair)


def every_exact_method_solves_the_constrained_space(pair) -> None:
    free, problem = pair
    if problem.objective == "edp":  # the EDP search is covered by test_multilevel_exact.py
        problem = replace(problem, objective="energy")
        free = replace(free, objective="energy")
    reference = solve_multilevel(problem, "enumerate")
    assert reference.status in ("optimal", "infeasible"), reference.message
    for method in ("cpsat", "milp"):
        got = solve_multilevel(problem, method, time_limit=60)
        assert got.status == reference.status, (method, got.message, reference.message)
        if reference.status == "optimal":
            assert got.objective == pytest.approx(reference.objective), method
            assert violations(problem.constraints, problem.hierarchy, got.mapping) == []
    if reference.status == "optimal":
        unconstrained = solve_multilevel(free, "enumerate")
        assert unconstrained.objective <= reference.objective + 1e-9


SMALL = {
    "family": "tiling",
    "workload": {"name": "small", "dims": {"N": 1, "M": 8, "C": 4, "P": 4, "Q": 4, "R": 3, "S": 3}},
    "hardware": {"array": {"rows": 3, "cols": 4},
                 "levels": [{"name": "DRAM", "read_energy": 200, "write_energy": 200},
                            {"name": "GLB", "capacity": "2 KiB", "read_energy": 6, "write_energy": 6,
                             "holds": ["inputs", "weights", "outputs"]},
                            {"name": "RF", "per_pe": True, "capacity": "64 B", "read_energy": 1,
                             "write_energy": 1, "holds": ["inputs", "weights", "outputs"]}]},
    "objective": "energy",
    "solver": {"method": "cpsat", "time_limit": 60},
}


def write(tmp_path, constraints: dict, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**SMALL, "constraints": constraints}, sort_keys=False))
    return path


def test_the_optimum_keeps_the_constraints_and_the_result_verifies(tmp_path):
    path = write(tmp_path, {"levels": {"RF": {"factors": {"S": 3}}, "GLB": {"whole": ["R"]}},
                            "spatial": {"rows": ["R"], "cols": ["M", "Q"], "min_utilization": 0.75}})
    result = tmp_path / "r.yaml"
    done = run_mapcert("solve", str(path), "-o", str(result))
    assert done.returncode == 0, done.stderr
    assert "constraints: GLB: R whole; RF: S=3; array rows: only R; array cols: only M/Q" in " ".join(done.stdout.split())
    data = yaml.safe_load(result.read_text())
    assert data["status"] == "optimal"
    mapping = data["solution"]
    assert mapping["levels"][2]["factors"].get("S") == 3
    assert set(mapping["spatial"]["rows"]) <= {"R"} and set(mapping["spatial"]["cols"]) <= {"M", "Q"}
    assert data["instance"]["constraints"]["spatial"]["min_utilization"] == 0.75
    verified = run_mapcert("verify", str(result))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_constraint_that_empties_the_space_is_named(tmp_path):
    done = run_mapcert("solve", str(write(tmp_path, {"levels": {"RF": {"factors": {"S": 2}}}})))
    assert done.returncode == 2
    assert "the constraint RF: factor S = 2 leaves no way to map S (extent 3)" in done.stdout + done.stderr
    crowded = run_mapcert("solve", str(write(tmp_path, {"spatial": {"rows": [], "cols": [],
                                                                    "min_utilization": 0.5}}, "u.yaml")))
    assert crowded.returncode == 2 and "Traceback" not in crowded.stderr
    assert ("the constraint of at least 6 busy instances of the array (12 in all) cannot be met: the layer's sizes and "
            "the constraints keep at most 1 busy") in crowded.stdout + crowded.stderr


@pytest.mark.parametrize("constraints, message", [
    # each alone leaves a row; together none: both are named
    ({"spatial": {"rows": ["C"], "row_factors": {"M": 2}}},
     "the constraints spatial rows: only C unrolled and spatial rows: factor M = 2 together leave no way to map M"),
    # each dimension fits the 3 rows alone, not together
    ({"spatial": {"row_factors": {"M": 2, "C": 2}}},
     "the constraints on spatial rows unroll at least M=2 x C=2 = 4, more than its 3 rows"),
    # one fixed factor wider than its axis, said with the axis's size
    ({"spatial": {"row_factors": {"M": 4}}}, "the constraint spatial rows: factor M = 4 needs 4 rows; the fan-out has 3"),
    # 4 columns, but C = 4 is the only dimension they may unroll and RF fixes C
    ({"spatial": {"cols": ["C"], "min_utilization": 1.0}, "levels": {"RF": {"factors": {"C": 2}}}},
     "the constraint of at least 12 busy instances of the array (12 in all) cannot be met"),
])
def test_conflicting_constraints_are_named_together(constraints, message):
    problem = load_text(yaml.safe_dump({**SMALL, "constraints": constraints}, sort_keys=False))
    result = solve_multilevel(problem, "cpsat", 30)
    assert result.status == "infeasible" and message in result.message, result.message


@pytest.mark.parametrize("constraints, message", [
    ({"levels": {"L2": {"whole": ["R"]}}}, "constraints.levels.L2: no level named 'L2'; the levels are DRAM, GLB, RF"),
    ({"levels": {"DRAM": {"factors": {"R": 3}}}}, "DRAM never splits the filter window"),
    ({"levels": {"GLB": {"factors": {"K": 2}}}}, "constraints.levels.GLB.factors.K"),
    ({"spatial": {"min_utilization": 1.5}}, "constraints.spatial.min_utilization"),
    ({"levels": {"GLB": {"factors": {"M": 0}}}}, "between 1 and 2^20"),
])
def test_bad_constraints_are_input_errors(tmp_path, constraints, message):
    done = run_mapcert("solve", str(write(tmp_path, constraints)))
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_evaluate_refuses_a_mapping_that_breaks_a_constraint(tmp_path):
    path = write(tmp_path, {"spatial": {"rows": ["R"], "cols": ["M"]}})
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"levels": [
        {"name": "DRAM", "factors": {"M": 8, "C": 4}},
        {"name": "GLB", "factors": {"P": 4, "Q": 4}},
        {"name": "RF", "factors": {"R": 3}}],
        "spatial": {"rows": {"S": 3}}}))
    done = run_mapcert("compare", str(path), "--mapping", str(mine), "--methods", "cpsat", "--json")
    assert "breaks the constraint spatial rows: only R unrolled" in done.stdout, done.stdout + done.stderr
    assert '"infeasible"' in done.stdout


def test_constraints_cover_every_dimension_of_the_model():
    assert set(USER_DIMS) | {"G"} == set(DIMS)


def test_levels_whose_order_cannot_matter_keep_one_order(monkeypatch, tmp_path):
    """A scratchpad whose constraints leave loops of one reuse group only (C
    and R, both in the outputs group) has one order: the optimum over all
    six group orders there is the same."""
    from mapcert.formulations.tiling.multilevel import enumeration, space
    from mapcert.instances import load

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "workload": {"name": "t", "dims": {"M": 4, "C": 2, "P": 2, "Q": 2,
                                                                             "R": 3, "S": 1}},
                                    "constraints": {"levels": {"RF": {"factors": {"N": 1, "M": 1, "P": 1, "Q": 1,
                                                                                  "S": 1}}}}}))
    problem = load(str(path))
    assert set(space.settled_rankings(problem)) == {2}  # DRAM and GLB keep their six orders
    assert space.settled_rankings(problem)[2][0] == "outputs"
    reduced = enumeration.enumerate_multilevel(problem)
    monkeypatch.setattr(enumeration, "level_orders",
                        lambda p: [space.GROUP_ORDERS] * len(p.hierarchy.levels))
    full = enumeration.enumerate_multilevel(problem)
    assert reduced.objective == full.objective
    for method in ("cpsat", "milp"):  # their order Booleans are fixed at the settled level
        assert solve_multilevel(problem, method, time_limit=60).objective == pytest.approx(full.objective)


@pytest.mark.parametrize("objective,level,constraint", [
    ("energy", 1, LevelConstraint(whole=("Q",))),            # was "infeasible" under the mirror-image cut
    ("offchip_traffic", 0, LevelConstraint(factors=(("Q", 2),))),
])
def test_a_constraint_that_favours_one_axis_keeps_the_axes_apart(objective, level, constraint):
    """A square layer whose constraints treat P and Q differently has no
    P/Q symmetry: the exact models must not discard a mapping as the mirror
    image of another (that cut once returned 200 B for a 196 B optimum, and
    "infeasible" for a feasible instance); they match the enumeration."""
    from mapcert.formulations.tiling.multilevel.enumeration import enumerate_multilevel
    from mapcert.formulations.tiling.multilevel.problem import MultiLevelProblem
    from mapcert.formulations.tiling.multilevel.space import axes_interchangeable
    from mapcert.formulations.tiling.problem import ConvLayer
    from mapcert.hardware.hierarchy import Hierarchy, MemoryLevel

    hier = Hierarchy("h", (MemoryLevel("DRAM", read_energy=100, write_energy=100),
                           MemoryLevel("GLB", capacity_bits=8 * 128, read_energy=6, write_energy=6),
                           MemoryLevel("RF", capacity_bits=8 * 16, per_pe=True, read_energy=1, write_energy=1)),
                     rows=2, cols=2, mac_energy=1)
    layer = ConvLayer(name="square", N=1, M=2, C=2, P=4, Q=4, R=3, S=3)
    constraints = MappingConstraints(levels=((level, constraint),), fanouts=((0, SpatialConstraint(rows=("P",))),))
    problem = MultiLevelProblem(layer, hier, objective, constraints=constraints)
    assert not axes_interchangeable(problem)
    best = enumerate_multilevel(problem).objective
    for method in ("cpsat", "milp"):
        result = solve_multilevel(problem, method, time_limit=60)
        assert result.status == "optimal" and result.objective == best, method


def test_groups_can_be_named_in_spatial_constraints():
    """G is a dimension of the model like any other: a spatial constraint may
    allow it (rows: [G]) or fix its factor, and one that does not name it
    keeps it off that axis. Solved by CP-SAT and the enumeration alike."""
    grouped = {**SMALL, "workload": {"name": "grouped", "dims": {"N": 1, "M": 8, "C": 4, "P": 4, "Q": 4, "R": 3,
                                                                 "S": 3}, "groups": 2}}
    problem = load_text(yaml.safe_dump({**grouped, "constraints": {"spatial": {"rows": ["G"], "cols": ["M"],
                                                                               "row_factors": {"G": 2}}}}))
    found = {method: solve_multilevel(problem, method, 60) for method in ("cpsat", "enumerate")}
    assert all(r.status == "optimal" for r in found.values()), {m: r.message for m, r in found.items()}
    assert found["cpsat"].objective == found["enumerate"].objective
    array = found["cpsat"].mapping.fanout(0)
    assert {d: f for d, f in array.rows.items() if f > 1} == {"G": 2} and {d for d, f in array.cols.items() if f > 1} <= {"M"}
    banned = load_text(yaml.safe_dump({**grouped, "constraints": {"spatial": {"rows": ["M"], "cols": ["M"]}}}))
    assert solve_multilevel(banned, "cpsat", 60).mapping.spatial("G") == 1


@settings(max_examples=10, deadline=None, derandomize=True)
@given(constrained())
def test_row_tables_are_shared_read_only_and_follow_the_constraints(pair):
    """``dim_choices`` lists a table once per problem: the same read-only
    table again, another one for other constraints, each equal to a fresh
    listing."""
    from mapcert.formulations.tiling.multilevel import space

    plain, constrained_problem = pair
    for problem in (plain, constrained_problem):
        for d in DIMS:
            table = space.dim_choices(problem, d)
            assert space.dim_choices(problem, d) is table
            assert not table.flags.writeable
            assert (table == space._list_dim_choices(problem, d)).all() and table.shape == \
                space._list_dim_choices(problem, d).shape
    fixed = constrained_problem.constraints.levels[0]
    dim = fixed[1].factors[0][0]
    plain_rows = {tuple(r) for r in space.dim_choices(plain, dim)}
    kept_rows = {tuple(r) for r in space.dim_choices(constrained_problem, dim)}
    assert kept_rows <= plain_rows
    assert all(r[fixed[0]] == fixed[1].factors[0][1] for r in kept_rows)


@pytest.mark.parametrize("own, merged", [(["C", "M"], ("C", "M")), (["M"], ("C", "M")), (["M", "C"], None)])
def test_an_order_that_ends_the_hardwares_refines_it(own, merged):
    """Both orders name the innermost loops, outermost first: the hardware's
    [C, M] and an instance's [M] (or the reverse) agree; [M, C] does not."""
    hardware = dict(SMALL["hardware"], constraints={"levels": {"GLB": {"order": ["C", "M"]}}})
    document = {**SMALL, "hardware": hardware, "constraints": {"levels": {"GLB": {"order": own}}}}
    if merged is None:
        with pytest.raises(Exception, match="fixes the innermost loops at GLB"):
            load_text(yaml.safe_dump(document, sort_keys=False))
        return
    problem = load_text(yaml.safe_dump(document, sort_keys=False))
    index = [level.name for level in problem.hierarchy.levels].index("GLB")
    assert problem.constraints.orders[index] == merged
