"""Hierarchies with several spatial fan-outs (a PE array, then lanes inside
each PE), each with or without multicast and reduction: the cost model, the
exact models' term structure and both functional models count the same
accesses; the exact methods agree with the enumeration; the space grew
without losing the one-fan-out optima."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest
import yaml

from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.enumeration import enumerate_multilevel
from mapcert.formulations.tiling.multilevel.problem import MultiLevelMapping, MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.functional.multilevel import run_multilevel
from mapcert.hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from mapcert.hardware.hierarchy import Fanout, Hierarchy, MemoryLevel
from mapcert.instances import load

from helpers import random_multilevel_mapping, run_mapcert, term_counts, with_random_keep

TENSORS = frozenset(("inputs", "weights", "outputs"))


def two_fanouts(multicast=(True, True), reduction=(True, True), glb=4096, pe_buffer=512, chosen=False,
                lanes=(1, 3)) -> Hierarchy:
    """DRAM, a shared buffer, a 2 x 2 PE array, a PE buffer, lanes, a register per lane."""
    keep = TENSORS if chosen else frozenset()
    levels = (MemoryLevel("DRAM", read_energy=200, write_energy=200),
              MemoryLevel("GLB", capacity_bits=8 * glb, chosen=keep, read_energy=6, write_energy=6),
              MemoryLevel("PEBuf", capacity_bits=8 * pe_buffer, per_pe=True, chosen=keep, read_energy=2,
                          write_energy=2),
              MemoryLevel("Reg", capacity_bits=8 * 16, per_pe=True, read_energy=1, write_energy=1))
    return Hierarchy("two-fanouts", levels, mac_energy=1,
                     fanouts=(Fanout("PEs", 2, 2, 2, multicast[0], reduction[0]),
                              Fanout("lanes", 3, *lanes, multicast[1], reduction[1])))


LAYER = ConvLayer(name="t", N=1, M=6, C=4, P=4, Q=3, R=3, S=2, stride=(2, 1))


@pytest.mark.parametrize("multicast,reduction", [((True, True), (True, True)), ((False, True), (True, False)),
                                                 ((True, False), (False, True)), ((False, False), (False, False))])
def test_cost_model_matches_both_functional_models(multicast, reduction):
    """On random mappings (any loop orders, random keep sets), evaluate's
    reads and writes equal those the cycle-level and the vectorized models
    count by executing the mapping, and those of the exact models' terms."""
    rnd = random.Random(hash((multicast, reduction)) % 1000)
    problem = MultiLevelProblem(LAYER, two_fanouts(multicast, reduction, chosen=True))
    spread = 0
    for _ in range(4):
        mapping = with_random_keep(problem, random_multilevel_mapping(problem, rnd, full_orders=True), rnd)
        spread += len(mapping.fanout(1).rows) + len(mapping.fanout(1).cols) > 0
        metrics = evaluate_multilevel(problem, mapping)
        cycle = run_multilevel(problem, mapping)
        vectorized = run_multilevel_vectorized(problem, mapping)
        assert cycle.outputs_match and vectorized.outputs_match
        assert metrics.reads == cycle.reads == vectorized.reads
        assert metrics.writes == cycle.writes == vectorized.writes
        reads, writes = term_counts(problem, mapping)
        assert reads == metrics.reads and writes == metrics.writes
    assert spread  # the draws used the inner fan-out


@pytest.mark.parametrize("objective,sharing", [("energy", True), ("offchip_traffic", True), ("latency", True),
                                               ("energy", False)])
def test_exact_methods_agree_with_the_enumeration(objective, sharing):
    hier = two_fanouts(multicast=(sharing, sharing), reduction=(sharing, sharing), glb=256, pe_buffer=32,
                       lanes=(1, 2))
    hier = replace(hier, levels=hier.levels[:3])  # DRAM, GLB, PE buffer; the lanes sit above the MACs
    problem = MultiLevelProblem(ConvLayer(name="t", N=1, M=4, C=2, P=4, Q=2, R=3, S=1), hier, objective)
    enumerated = enumerate_multilevel(problem)
    for method in ("cpsat", "milp"):
        result = solve_multilevel(problem, method, time_limit=60)
        assert result.status == "optimal", (method, result.message)
        assert result.objective == pytest.approx(enumerated.objective), method
        assert evaluate_multilevel(problem, result.mapping).objective(objective) == pytest.approx(result.objective)


def test_a_second_fanout_of_one_instance_changes_nothing():
    """The space with a 1 x 1 inner fan-out is the one-fan-out space."""
    one = Hierarchy("one", two_fanouts().levels, mac_energy=1, fanouts=(Fanout("PEs", 2, 2, 2),))
    two = two_fanouts(lanes=(1, 1))
    first = solve_multilevel(MultiLevelProblem(LAYER, one), "cpsat", time_limit=60)
    second = solve_multilevel(MultiLevelProblem(LAYER, two), "cpsat", time_limit=60)
    assert first.status == second.status == "optimal"
    assert first.objective == second.objective


def test_lanes_help_and_a_network_without_multicast_never_does():
    """More fan-outs only add mappings; taking multicast and reduction away only removes sharing."""
    layer = ConvLayer(name="t", N=1, M=6, C=2, P=4, Q=3, R=3, S=1)
    base = solve_multilevel(MultiLevelProblem(layer, two_fanouts(lanes=(1, 1))), "cpsat", time_limit=60)
    lanes = solve_multilevel(MultiLevelProblem(layer, two_fanouts()), "cpsat", time_limit=60)
    plain = solve_multilevel(MultiLevelProblem(layer, two_fanouts(multicast=(False, False),
                                                                  reduction=(False, False))), "cpsat",
                             time_limit=60)
    assert base.status == lanes.status == plain.status == "optimal"
    assert lanes.objective <= base.objective
    assert plain.objective >= lanes.objective


FANOUT_INSTANCE = {
    "family": "tiling",
    "workload": {"name": "small", "dims": {"N": 1, "M": 8, "C": 4, "P": 4, "Q": 4, "R": 3, "S": 3}},
    "hardware": {
        "mac_energy": 1,
        "fanouts": [{"name": "PEs", "above": "PEBuf", "x": 2, "y": 2},
                    {"name": "lanes", "above": "MACs", "x": 4, "multicast": False}],
        "levels": [{"name": "DRAM", "read_energy": 200},
                   {"name": "GLB", "capacity": "2 KiB", "read_energy": 6},
                   {"name": "PEBuf", "capacity": "128 B", "holds": ["inputs", "weights", "outputs"],
                    "read_energy": 1}],
    },
    "objective": "energy",
    "constraints": {"fanouts": {"lanes": {"cols": ["M", "C"]}}},
}


def test_an_instance_declares_fanouts_and_the_result_round_trips(tmp_path):
    path = tmp_path / "fanouts.yaml"
    path.write_text(yaml.safe_dump(FANOUT_INSTANCE, sort_keys=False))
    problem = load(str(path))
    assert [(f.name, f.level, f.rows, f.cols, f.multicast) for f in problem.hierarchy.fanouts] == \
        [("PEs", 2, 2, 2, True), ("lanes", 3, 1, 4, False)]
    assert problem.hierarchy.levels[2].per_pe and not problem.hierarchy.levels[1].per_pe
    result = solve_multilevel(problem, "cpsat", time_limit=60)
    assert result.status == "optimal"
    assert set(result.mapping.fanout(1).cols) <= {"M", "C"}
    written = result.mapping.to_dict(problem.hierarchy)
    assert set(written["spatial"]) == {"PEs", "lanes"}
    again = MultiLevelMapping.from_dict(written, problem.hierarchy, problem.layer)
    assert evaluate_multilevel(problem, again).energy == result.objective
    out = tmp_path / "result.yaml"
    done = run_mapcert("solve", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "fan-out lanes" in done.stdout
    verified = run_mapcert("verify", str(out), "--methods", "cpsat,milp")
    assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize("change,message", [
    (lambda h: h["fanouts"][1].update(above="nowhere"), "'above' must name a level"),
    (lambda h: h.update(array={"rows": 2, "cols": 2}), "either 'array'"),
    (lambda h: h["fanouts"].reverse(), "outermost first"),
    (lambda h: h["fanouts"][0].update(x=0), "hardware.fanouts[0].x"),
    (lambda h: h["fanouts"][0].update(above="DRAM"), "must lie below DRAM"),
    (lambda h: h["levels"][2].update(per_pe=False), "so it is per-PE"),
    (lambda h: h.update(fanouts=[]), "lists no fan-out"),
])
def test_a_malformed_fanout_is_one_line(tmp_path, change, message):
    data = yaml.safe_load(yaml.safe_dump(FANOUT_INSTANCE))
    change(data["hardware"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    done = run_mapcert("solve", str(path))
    assert done.returncode == 2, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], done.stderr


@pytest.mark.parametrize("constraints,message", [
    ({"spatial": {"rows": ["M"]}}, "several fan-outs"),
    ({"fanouts": {"rows": {"cols": ["M"]}}}, "no fan-out named 'rows'"),
])
def test_constraints_must_name_their_fanout(tmp_path, constraints, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(dict(FANOUT_INSTANCE, constraints=constraints), sort_keys=False))
    done = run_mapcert("solve", str(path))
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_the_simba_like_preset_has_two_fanouts_and_chosen_bypass():
    from mapcert.formulations.tiling.multilevel.schema import preset_constraints
    from mapcert.hardware.hierarchy import hierarchy_preset

    hier = hierarchy_preset("simba-like")
    assert [(f.name, f.rows, f.cols) for f in hier.fanouts] == [("PEs", 4, 4), ("lanes", 8, 8)]
    assert hier.chooses_bypass and hier.pes == 1024
    problem = MultiLevelProblem(ConvLayer(name="t", N=1, M=32, C=16, P=8, Q=8, R=3, S=3), hier, "energy",
                                constraints=preset_constraints("simba-like", hier))
    result = solve_multilevel(problem, "cpsat", time_limit=60)
    assert result.status == "optimal"
    lanes = result.mapping.fanout(1)
    assert set(lanes.rows) <= {"M"} and set(lanes.cols) <= {"C"}
    run = run_multilevel_vectorized(problem, result.mapping)
    metrics = evaluate_multilevel(problem, result.mapping)
    assert run.outputs_match and run.reads == metrics.reads and run.writes == metrics.writes


def test_each_flag_changes_exactly_the_transfers_it_governs():
    """Lanes that unroll M share their inputs: only multicast changes the
    PE buffer's input reads. Lanes that unroll C meet at the same outputs:
    only reduction changes the PE buffer's output writes."""
    from mapcert.formulations.tiling.multilevel.problem import LevelLoops, SpatialLoops

    one = dict.fromkeys("NGMCPQRS", 1)

    def mapping(dram, lanes):
        return MultiLevelMapping(
            levels=(LevelLoops(dict(one, P=2, Q=3, **dram)), LevelLoops(dict(one, R=3, S=2, C=4 // lanes.get("C", 1))),
                    LevelLoops(dict(one)), LevelLoops(dict(one))),
            fanouts=(SpatialLoops({"P": 2}, {"M": 2}), SpatialLoops({}, lanes)))

    over_m, over_c = mapping({}, {"M": 3}), mapping({"M": 3}, {"C": 2})
    counts = {}
    for multicast, reduction in itertools.product([True, False], repeat=2):
        problem = MultiLevelProblem(LAYER, two_fanouts(multicast=(True, multicast), reduction=(True, reduction)))
        m, c = evaluate_multilevel(problem, over_m), evaluate_multilevel(problem, over_c)
        counts[multicast, reduction] = (m.reads[2]["inputs"], m.writes[2]["outputs"],
                                        c.reads[2]["inputs"], c.writes[2]["outputs"])
    shared = counts[True, True]
    assert counts[False, True] == (3 * shared[0], *shared[1:])  # three lanes, three copies of each input
    assert counts[True, False] == (*shared[:3], 2 * shared[3])  # two lanes, two partial sums per output
