"""Imperfect factors on hierarchies (``space: {factors: any}``): partial last
tiles counted exactly, the space solved by CP-SAT, the MILP and the enumeration."""

from __future__ import annotations

import random

import pytest
import yaml

from mapcert.formulations.tiling.multilevel.clipped_cost import evaluate_clipped
from mapcert.formulations.tiling.multilevel.clipping import remainder_rows
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.enumeration import enumerate_multilevel
from mapcert.formulations.tiling.multilevel.problem import (DIMS, LevelLoops, MultiLevelMapping, MultiLevelProblem,
                                                            mapping_problems)
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.multilevel.space import dim_choices, mapping_from_choice
from mapcert.hardware.functional.multilevel import run_multilevel
from mapcert.hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel, hierarchy_preset
from mapcert.validation.multilevel_bounds import multilevel_bounds

from helpers import random_multilevel_mapping, run_mapcert, with_random_keep
from test_multilevel_fanouts import LAYER, two_fanouts

TENSORS = ["inputs", "weights", "outputs"]
FIELDS = ("reads", "writes", "tile_bits", "fits", "compute_cycles", "level_cycles", "array_boundary_words")


def small_array(glb_bytes: int = 256) -> Hierarchy:
    """DRAM, a shared buffer, a 3 x 2 array of PEs with a register each."""
    levels = (MemoryLevel("DRAM", read_energy=200, write_energy=200),
              MemoryLevel("GLB", capacity_bits=8 * glb_bytes, read_energy=6, write_energy=6),
              MemoryLevel("Reg", capacity_bits=8 * 16, per_pe=True, read_energy=1, write_energy=1))
    return Hierarchy("small", levels, mac_energy=1, fanouts=(Fanout("PEs", 2, 3, 2),))


@pytest.mark.parametrize("multicast,reduction", [((True, True), (True, True)), ((False, True), (True, False)),
                                                 ((True, False), (False, False))])
def test_the_per_dimension_sums_give_the_divisor_model_on_divisor_rows(multicast, reduction):
    """On mappings without partial tiles (random orders, keep sets, fan-out
    flags), the clipped model's counts, tiles and cycles are the divisor
    model's: the two are written independently (sums over events against
    products of trip counts)."""
    rnd = random.Random(7)
    problem = MultiLevelProblem(LAYER, two_fanouts(multicast, reduction, chosen=True))
    for _ in range(12):
        mapping = with_random_keep(problem, random_multilevel_mapping(problem, rnd, full_orders=True), rnd)
        a, b = evaluate_multilevel(problem, mapping), evaluate_clipped(problem, mapping)
        assert all(getattr(a, f) == getattr(b, f) for f in FIELDS)
        assert a.utilization == pytest.approx(b.utilization)


@pytest.mark.parametrize("layer", [pytest.param(ConvLayer("a", 1, 5, 3, 5, 7, 3, 3), marks=pytest.mark.slow),
                                   ConvLayer("b", 2, 3, 5, 7, 3, 3, 1, stride=(2, 1), dilation=(1, 1)),
                                   ConvLayer("c", 1, 3, 5, 5, 5, 3, 3, dilation=(2, 1))])
def test_evaluate_counts_what_both_functional_models_execute(layer):
    """Random mappings of the ``any`` space with partial tiles (any loop
    orders, random keep sets, fan-outs with and without multicast and
    reduction): evaluate's reads, writes and cycles are those the two
    functional models count by running them, and the outputs are right."""
    rnd = random.Random(layer.name)
    for multicast, reduction in (((True, True), (True, True)), ((False, True), (True, False))):
        problem = MultiLevelProblem(layer, two_fanouts(multicast, reduction, chosen=True, lanes=(2, 3)),
                                    factors="any")
        rows = {d: [tuple(int(v) for v in r) for r in dim_choices(problem, d)] for d in DIMS}
        drawn = 0
        while drawn < 2:
            pick = {d: rnd.choice(rows[d]) for d in DIMS}
            mapping = with_random_keep(problem, mapping_from_choice(
                problem, pick, tuple(tuple(rnd.sample(DIMS, len(DIMS))) for _ in range(4))), rnd)
            if mapping_problems(layer, problem.hierarchy, mapping) or mapping.divides(layer, 2):
                continue  # overfull fan-out, or no partial tile
            drawn += 1
            metrics = evaluate_multilevel(problem, mapping)
            cycle, vectorized = run_multilevel(problem, mapping), run_multilevel_vectorized(problem, mapping)
            assert cycle.outputs_match and vectorized.outputs_match
            assert metrics.reads == cycle.reads == vectorized.reads
            assert metrics.writes == cycle.writes == vectorized.writes
            assert metrics.compute_cycles == cycle.cycles


def test_a_partial_tile_is_counted_by_hand():
    """P = 7 as 2 DRAM trips of 4-row buffer tiles (4, then 3 rows): every
    input and output word moves once, the buffer holds the full 4-row
    tile, and the MAC runs 7 cycles, not 8."""
    hier = Hierarchy("t", (MemoryLevel("DRAM", read_energy=100, write_energy=100),
                           MemoryLevel("B", capacity_bits=8 * 1024, read_energy=1, write_energy=1)), mac_energy=1)
    layer = ConvLayer("p7", 1, 1, 1, 7, 1, 3, 1)
    mapping = MultiLevelMapping.on_array((LevelLoops({"P": 2}, DIMS), LevelLoops({"P": 4, "R": 3}, DIMS)))
    metrics = evaluate_multilevel(MultiLevelProblem(layer, hier), mapping)
    # input rows: tile 1 reads rows 0..5 (4 outputs, 3 taps), tile 2 rows 4..8: 6 + 5
    assert metrics.reads[0] == {"inputs": 11, "weights": 3, "outputs": 0}
    assert metrics.writes[0]["outputs"] == 7
    assert metrics.compute_cycles == 21
    assert metrics.tile_bits[1]["inputs"] == 6 * 8 and metrics.tile_bits[1]["outputs"] == 4 * 24


def test_a_single_trip_loop_inside_another_dimensions_loop_is_refused():
    """P = 7 as 4 DRAM trips of 2-row tiles leaves the buffer's P loop one
    trip in the last tile: exact only with that loop outside M's."""
    hier = Hierarchy("t", (MemoryLevel("DRAM", read_energy=100, write_energy=100),
                           MemoryLevel("B", capacity_bits=8 * 1024, read_energy=1, write_energy=1)), mac_energy=1)
    layer = ConvLayer("p7", 1, 2, 1, 7, 1)
    problem = MultiLevelProblem(layer, hier)
    inside = MultiLevelMapping.on_array((LevelLoops({"P": 4}, DIMS), LevelLoops({"P": 2, "M": 2}, DIMS)))
    with pytest.raises(ValueError, match="leaves its loop at B a single trip on some instances, with the loop of M"):
        evaluate_multilevel(problem, inside)
    outside = MultiLevelMapping.on_array((LevelLoops({"P": 4}, DIMS),
                                          LevelLoops({"P": 2, "M": 2}, ("P", "N", "G", "M", "C", "Q", "R", "S"))))
    assert evaluate_multilevel(problem, outside).compute_cycles == 14
    short = MultiLevelMapping.on_array((LevelLoops({"P": 2}, DIMS), LevelLoops({"P": 3}, DIMS)))
    with pytest.raises(ValueError, match="multiply to DRAM 2 x B 3 = 6, less than its extent 7: part of the layer"):
        evaluate_multilevel(problem, short)


def test_the_space_has_the_divisor_rows_and_one_remainder_each():
    rows = remainder_rows(7, (None, 4, None))
    assert (1, 7, 1) not in rows  # the array has 4 instances
    assert {(1, 1, 7), (2, 4, 1), (2, 1, 4), (4, 2, 1), (7, 1, 1)} <= set(rows)
    assert (3, 4, 1) not in rows  # 3 x 4 covers 7 with an empty last iteration
    assert (2, 3, 3) not in remainder_rows(10, (None, None, None))  # partial tiles of 3 and of 9: two remainders
    for row in rows:
        assert 7 <= row[0] * row[1] * row[2] < 14


@pytest.mark.parametrize("objective", ["energy", "offchip_traffic", "latency"])
def test_cpsat_and_the_enumeration_agree_and_the_space_only_helps(objective):
    layer = ConvLayer("x", 1, 2, 1, 7, 1, 2, 1)
    problem = MultiLevelProblem(layer, small_array(), objective=objective, factors="any")
    found = enumerate_multilevel(problem)
    solved = solve_multilevel(problem, "cpsat", 60)
    assert solved.status == "optimal"
    assert solved.objective == pytest.approx(found.objective)
    assert evaluate_multilevel(problem, solved.mapping).objective(objective) == pytest.approx(solved.objective)
    milp = solve_multilevel(problem, "milp", 60)
    assert milp.status == "optimal" and milp.objective == pytest.approx(found.objective)
    divisors = solve_multilevel(MultiLevelProblem(layer, small_array(), objective=objective), "cpsat", 60)
    assert solved.objective <= divisors.objective + 1e-9
    assert multilevel_bounds(problem).objective <= solved.objective + 1e-9
    if objective == "latency":  # P = 7 on 3 PE rows: 3 + 3 + 1 rows by 2 taps beat the divisor space
        assert solved.objective < divisors.objective


ANY_SPACE_CASES = [  # (layer, hierarchy, objective, whether the optimum has partial tiles): on two fan-outs
    pytest.param(ConvLayer("l", 1, 2, 5, 5, 3, 3, 1), two_fanouts((True, True), (True, False), glb=4096, pe_buffer=64),
                 "latency", True, marks=pytest.mark.slow, id="l"),
    (ConvLayer("t", 1, 7, 5, 7, 1, 1, 3, stride=(2, 1)), two_fanouts((False, True), (True, True), glb=256, pe_buffer=64),
     "latency", True),
    (ConvLayer("o", 1, 2, 3, 7, 5, 1, 1, stride=(2, 1)), two_fanouts((True, True), (True, True), glb=256, pe_buffer=64),
     "offchip_traffic", False),
    (ConvLayer("e", 1, 2, 1, 7, 1, 2, 1), small_array(), "energy", True),
]


@pytest.mark.parametrize("layer,hier,objective,partial", ANY_SPACE_CASES,
                         ids=[c.id if hasattr(c, "id") else c[0].name for c in ANY_SPACE_CASES])
def test_the_milp_of_the_any_space_agrees_with_cpsat(layer, hier, objective, partial):
    """The any-space MILP on its own (no divisor start, so it must find the
    mapping, partial tiles included, not only refute) proves CP-SAT's
    optimum, and its mapping evaluates to what it claimed."""
    from mapcert.formulations.tiling.multilevel.problem import Restriction
    from mapcert.formulations.tiling.multilevel.solve import _solve_piece

    problem = MultiLevelProblem(layer, hier, objective=objective, factors="any")
    cpsat = solve_multilevel(problem, "cpsat", 60)
    milp = _solve_piece(problem, "milp", Restriction(), 60, 1)
    assert cpsat.status == milp.status == "optimal", milp.message
    assert milp.objective == pytest.approx(cpsat.objective)
    assert evaluate_multilevel(problem, milp.mapping).objective(objective) == pytest.approx(milp.objective)
    assert (not milp.mapping.divides(layer, len(hier.fanouts))) == partial
    assert solve_multilevel(problem, "milp", 60).objective == pytest.approx(cpsat.objective)


@pytest.mark.slow
def test_the_milp_of_the_any_space_agrees_on_random_instances():
    """Random small layers (odd and prime sizes, strides), hierarchies with
    one or two fan-outs, with and without multicast and reduction, fixed or
    chosen keep sets, every objective: where both methods prove an optimum
    (a time-out proves nothing either way), they prove the same one."""
    from mapcert.formulations.tiling.multilevel.problem import Restriction
    from mapcert.formulations.tiling.multilevel.solve import _solve_piece

    rnd = random.Random(11)
    proved = 0
    for _ in range(10):
        layer = ConvLayer("r", 1, rnd.choice([2, 3, 5, 7]), rnd.choice([1, 3, 5]), rnd.choice([3, 5, 7]),
                          rnd.choice([1, 3, 5]), rnd.choice([1, 2, 3]), rnd.choice([1, 3]), stride=(rnd.choice([1, 2]), 1))
        hier = rnd.choice([small_array(rnd.choice([64, 256])),
                           two_fanouts((rnd.random() < .5, True), (True, rnd.random() < .5), glb=rnd.choice([256, 4096]),
                                       pe_buffer=64, chosen=rnd.random() < .5)])
        problem = MultiLevelProblem(layer, hier, objective=rnd.choice(["energy", "offchip_traffic", "latency"]),
                                    factors="any")
        cpsat = solve_multilevel(problem, "cpsat", 60)
        milp = _solve_piece(problem, "milp", Restriction(), 60, 1)
        assert milp.status in ("optimal", "feasible"), milp.message
        if cpsat.status == milp.status == "optimal":
            proved += 1
            assert milp.objective == pytest.approx(cpsat.objective)
        else:  # no proof: neither may claim less than the other proved
            assert milp.objective >= cpsat.objective - 1e-6 or cpsat.status != "optimal"
    assert proved >= 6


def test_an_instance_declares_the_space_and_the_result_verifies(tmp_path):
    spec = {"family": "tiling", "workload": {"name": "awk", "dims": {"N": 1, "M": 2, "C": 1, "P": 7, "Q": 1,
                                                                     "R": 2, "S": 1}},
            "hardware": {"levels": [{"name": "DRAM", "read_energy": 200, "write_energy": 200},
                                    {"name": "GLB", "capacity": "256 B", "holds": TENSORS, "read_energy": 6,
                                     "write_energy": 6},
                                    {"name": "Reg", "capacity": "16 B", "holds": TENSORS, "read_energy": 1,
                                     "write_energy": 1}],
                         "fanouts": [{"name": "PEs", "above": "Reg", "x": 2, "y": 3}], "mac_energy": 1},
            "objective": "latency", "space": {"factors": "any"},
            "solver": {"time_limit": 60}}
    path = tmp_path / "awk.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "awk.result.yaml"
    run = run_mapcert("solve", str(path), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert "OPTIMAL" in run.stdout and "partial" in run.stdout
    result = yaml.safe_load(out.read_text())
    assert result["instance"]["space"] == {"factors": "any"}
    assert run_mapcert("verify", str(out)).returncode == 0
    milp = run_mapcert("solve", str(path), "--method", "milp", "-o", str(tmp_path / "awk.milp.yaml"))
    assert milp.returncode == 0, milp.stderr
    milp_result = yaml.safe_load((tmp_path / "awk.milp.yaml").read_text())
    assert milp_result["status"] == "optimal" and milp_result["objective"] == result["objective"]
    spec["objective"] = "edp"
    path.write_text(yaml.safe_dump(spec))
    edp = run_mapcert("solve", str(path))
    assert edp.returncode == 2 and "edp is solved over divisor factors only" in edp.stderr


@pytest.mark.slow
def test_awkward_sizes_gain_on_the_eyeriss_like_array():
    """13 output channels, 13 x 13 outputs, 3 input channels on 12 x 14 PEs:
    partial tiles cut the cycles (the divisor space cannot split 13)."""
    layer = ConvLayer("awk", 1, 13, 3, 13, 13, 3, 3)
    hier = hierarchy_preset("eyeriss-like")
    cycles = {}
    for factors in ("divisors", "any"):
        result = solve_multilevel(MultiLevelProblem(layer, hier, objective="latency", factors=factors), "cpsat", 60)
        assert result.status == "optimal"
        cycles[factors] = result.objective
    assert cycles["any"] < cycles["divisors"]
    assert len(dim_choices(MultiLevelProblem(layer, hier, factors="any"), "M")) > \
        len(dim_choices(MultiLevelProblem(layer, hier), "M"))


def test_a_partial_tile_lies_outside_the_divisor_space():
    """The certificate's space decides: a mapping with a partial tile is a
    mapping of the layer, but not of the divisors space, and a covering with
    an empty iteration is not one of the ``any`` space either."""
    from mapcert.formulations.registry import family_of

    hier = Hierarchy("t", (MemoryLevel("DRAM", read_energy=100, write_energy=100),
                           MemoryLevel("B", capacity_bits=8 * 1024, read_energy=1, write_energy=1)), mac_energy=1)
    layer = ConvLayer("p7", 1, 1, 1, 7, 1)
    partial = MultiLevelMapping.on_array((LevelLoops({"P": 2}, DIMS), LevelLoops({"P": 4}, DIMS)))
    family = family_of(MultiLevelProblem(layer, hier))
    divisors = family.evaluate(MultiLevelProblem(layer, hier), partial)
    assert not divisors.feasible and any("outside the divisors space" in v for v in divisors.violations)
    assert family.evaluate(MultiLevelProblem(layer, hier, factors="any"), partial).feasible
    empty = MultiLevelMapping.on_array((LevelLoops({"P": 3}, DIMS), LevelLoops({"P": 4}, DIMS)))
    wasteful = family.evaluate(MultiLevelProblem(layer, hier, factors="any"), empty)
    assert not wasteful.feasible and any("empty iteration" in v for v in wasteful.violations)
    # in the divisors space, a covering no space admits is not sent to factors: any
    outside = family.evaluate(MultiLevelProblem(layer, hier), empty)
    assert not outside.feasible and any("outside every space" in v for v in outside.violations)
    assert not any("factors: any" in v for v in outside.violations)


def test_a_partial_tile_of_groups_is_solved_under_the_same_rule():
    """Depthwise: G = 7 groups with partial tiles; the exact models keep a
    G loop that a partial tile leaves one trip outside the other loops, as
    evaluate requires, and agree with the enumeration."""
    layer = ConvLayer("dw", 1, 7, 7, 3, 1, 2, 1, groups=7)
    problem = MultiLevelProblem(layer, small_array(), objective="energy", factors="any")
    found = enumerate_multilevel(problem)
    solved = solve_multilevel(problem, "cpsat", 60)
    assert solved.status == "optimal" and solved.objective == pytest.approx(found.objective)
    assert evaluate_multilevel(problem, solved.mapping).objective("energy") == pytest.approx(solved.objective)


def test_two_level_instances_take_the_hierarchies_name_for_the_space():
    from mapcert.instances import InstanceError, load_text

    text = ("family: tiling\nworkload: vgg16.conv3_2\n"
            "hardware: {levels: [{name: DRAM}, {name: GLB, capacity: 64 KiB}]}\nspace: {factors: any}\n")
    assert load_text(text).space == "any"
    with pytest.raises(InstanceError, match="factors: any and tiles: divisors disagree"):
        load_text(text.replace("{factors: any}", "{factors: any, tiles: divisors}"))


def test_a_written_mapping_the_model_cannot_count_is_scored_outside_every_space(tmp_path):
    """P = 7 as 4 DRAM trips of 2 rows with the buffer's M loop outside its P
    loop: a mapping of the layer, which the cost model cannot count exactly.
    `compare --mapping` scores it as an infeasible row that says why, beside
    the others, rather than refusing the whole comparison."""
    from mapcert.formulations.registry import family_of
    from mapcert.instances import load_text

    problem = load_text("""family: tiling
workload: {name: p7, dims: {M: 2, C: 1, P: 7, Q: 1}}
hardware:
  mac_energy: 1
  levels:
    - {name: DRAM, read_energy: 100, write_energy: 100}
    - {name: B, capacity: 1 KiB, read_energy: 1, write_energy: 1}
space: {factors: any}
""", "p7.yaml")
    family = family_of(problem)
    mapping = family.solution_from_dict(problem, {"levels": [
        {"name": "DRAM", "factors": {"P": 4}, "order": ["P"]},
        {"name": "B", "factors": {"P": 2, "M": 2}, "order": ["M", "P"]}]})
    scored = family.evaluate(problem, mapping)
    assert not scored.feasible and scored.objective is None
    assert scored.violations[0].startswith("outside every space: the partial last tile of P leaves its loop at B")
