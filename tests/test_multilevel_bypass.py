"""Keep or bypass as a decision of the mapping: every exact method searches
it, the cost model, the term structure and the functional model agree on
it, the bounds still hold, and the larger space is never worse."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from mapcert.formulations.tiling.multilevel.bypass import keep_sets, links
from mapcert.formulations.tiling.multilevel.cost import evaluate_multilevel
from mapcert.formulations.tiling.multilevel.problem import MultiLevelMapping, MultiLevelProblem
from mapcert.formulations.tiling.multilevel.solve import solve_multilevel
from mapcert.formulations.tiling.problem import ConvLayer
from mapcert.hardware.functional.multilevel import run_multilevel
from mapcert.hardware.functional.multilevel_vectorized import run_multilevel_vectorized
from mapcert.hardware.hierarchy import TENSORS, Hierarchy, MemoryLevel, hierarchy_from_dict
from mapcert.validation.multilevel_bounds import multilevel_bounds

from helpers import random_multilevel_mapping, run_mapcert, term_counts, with_random_keep
from test_multilevel_constraints import constrained, every_exact_method_solves_the_constrained_space

ALL = frozenset(TENSORS)


@st.composite
def instances(draw, glb_options=(ALL, frozenset({"weights"}), frozenset())):
    """Small layers on DRAM > GLB > RF where GLB, RF or both choose their keep
    sets (GLB among ``glb_options``)."""
    layer = ConvLayer(
        name="t", N=1, M=draw(st.sampled_from([2, 4])), C=draw(st.sampled_from([1, 2, 3])),
        P=draw(st.sampled_from([2, 4])), Q=draw(st.sampled_from([1, 2])),
        R=draw(st.sampled_from([1, 3])), S=1, stride=(draw(st.sampled_from([1, 2])), 1),
    )
    glb_chosen = draw(st.sampled_from(list(glb_options)))
    rf_chosen = draw(st.sampled_from([ALL, frozenset({"inputs", "outputs"}), frozenset()]))
    partition = draw(st.booleans())
    hier = Hierarchy("h", (
        MemoryLevel("DRAM", read_energy=200, write_energy=200),
        MemoryLevel("GLB", capacity_bits=8 * draw(st.sampled_from([16, 48, 128])), chosen=glb_chosen,
                    read_energy=6, write_energy=draw(st.sampled_from([6, 7.5]))),
        MemoryLevel("RF", capacity_bits=None if partition else 8 * draw(st.sampled_from([4, 12])),
                    partition_bits={"inputs": 16, "weights": 32, "outputs": 16} if partition else None,
                    per_pe=draw(st.booleans()), chosen=rf_chosen, read_energy=1, write_energy=1),
    ), rows=draw(st.sampled_from([1, 2])), cols=2, mac_energy=1)
    objective = draw(st.sampled_from(["energy", "offchip_traffic", "latency"]))
    return MultiLevelProblem(layer, hier, objective=objective)


def few_keep_sets():
    """Instances with at most 16 keep sets, so that the MILP's union stays short."""
    return instances(glb_options=(frozenset({"weights"}), frozenset()))


def exact_methods_agree(problem) -> None:
    reference = solve_multilevel(problem, "enumerate")
    assert reference.status in ("optimal", "infeasible")
    fixed = solve_multilevel(replace(problem, hierarchy=problem.hierarchy.fixed()), "enumerate")
    if fixed.status == "optimal":  # a larger space is never worse
        assert reference.status == "optimal" and reference.objective <= fixed.objective + 1e-9
    for method in ("cpsat", "milp"):
        got = solve_multilevel(problem, method, time_limit=60)
        if reference.status == "infeasible":
            assert got.status == "infeasible", method
            continue
        assert got.status == "optimal", (method, got.message)
        assert got.objective == pytest.approx(reference.objective), method
        assert got.objective >= multilevel_bounds(problem).objective - 1e-9


@pytest.mark.slow  # 14 s; bypass with constraints and from the command line run by default
@settings(max_examples=3, deadline=None, derandomize=True)
@given(few_keep_sets())
def test_exact_methods_agree_with_enumeration_when_bypass_is_chosen(problem):
    exact_methods_agree(problem)


def test_keep_sets_in_a_pool_of_processes_find_the_optimum(monkeypatch):
    """The keep sets after the first sent to two processes, each with the
    cutoff of the moment: the enumerated optimum, and the message says so."""
    import mapcert.formulations.tiling.multilevel.milp as milp
    import mapcert.formulations.tiling.multilevel.milp_pieces as pieces

    monkeypatch.setattr(milp, "KEEP_SET_POOL_AFTER", 0.0)
    monkeypatch.setattr(pieces, "MIN_POOL_SECONDS", 0.0)
    layer = ConvLayer(name="k", N=1, M=4, C=3, P=4, Q=2, R=3, S=1)
    hier = Hierarchy("h", (
        MemoryLevel("DRAM", read_energy=200, write_energy=200),
        MemoryLevel("GLB", capacity_bits=8 * 48, chosen=frozenset({"weights", "outputs"}), read_energy=6,
                    write_energy=7.5),
        MemoryLevel("RF", capacity_bits=8 * 12, per_pe=True, chosen=frozenset({"inputs", "outputs"}),
                    read_energy=1, write_energy=1),
    ), rows=2, cols=2, mac_energy=1)
    problem = MultiLevelProblem(layer, hier, objective="energy")
    reference = solve_multilevel(problem, "enumerate")
    got = solve_multilevel(problem, "milp", time_limit=60, workers=2, canonical=False)
    assert reference.status == got.status == "optimal", got.message
    assert got.objective == pytest.approx(reference.objective)
    assert f"{len(keep_sets(hier))}/{len(keep_sets(hier))} keep sets finished in 2 processes" in got.message


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True)
@given(instances())
def test_exact_methods_agree_with_enumeration_when_bypass_is_chosen_on_many_instances(problem):
    exact_methods_agree(problem)


@settings(max_examples=2, deadline=None, derandomize=True)
@given(constrained(base=few_keep_sets))
def test_bypass_and_constraints_together(pair):
    """Keep choices inside a constrained space: every exact method against
    the enumeration, the constraints kept, never better than without them."""
    every_exact_method_solves_the_constrained_space(pair)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, derandomize=True)
@given(constrained(base=instances))
def test_bypass_and_constraints_together_on_many_instances(pair):
    every_exact_method_solves_the_constrained_space(pair)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(instances(), st.integers(0, 10**6))
def test_functional_model_and_terms_follow_the_keep_sets(problem, seed):
    """Random mappings with random keep sets: the cycle-level and vectorized
    functional models compute the layer and move the counted words, and the
    telescoped terms of the exact models (only the boundaries the keep sets
    open) reproduce every count."""
    rnd = random.Random(seed)
    mapping = with_random_keep(problem, random_multilevel_mapping(problem, rnd, full_orders=True), rnd)
    metrics = evaluate_multilevel(problem, mapping)
    cycle_level = run_multilevel(problem, mapping, seed=seed % 5)
    vectorized = run_multilevel_vectorized(problem, mapping, seed=seed % 5)
    assert cycle_level.outputs_match and vectorized.outputs_match
    assert cycle_level.reads == vectorized.reads == metrics.reads
    assert cycle_level.writes == vectorized.writes == metrics.writes

    reads, writes = term_counts(problem, mapping)
    assert reads == metrics.reads and writes == metrics.writes


def test_links_of_a_fixed_hierarchy_are_its_holders():
    hier = Hierarchy("h", (MemoryLevel("DRAM"), MemoryLevel("GLB", capacity_bits=800, holds=frozenset({"inputs"})),
                           MemoryLevel("RF", capacity_bits=80, per_pe=True)), rows=2, cols=2)
    assert {(k.level, k.tensor, k.parent) for k in links(hier)} == {
        (1, "inputs", 0), (2, "inputs", 1), (2, "weights", 0), (2, "outputs", 0),
        (3, "inputs", 2), (3, "weights", 2), (3, "outputs", 2)}
    assert all(not k.kept and not k.bypassed for k in links(hier))
    chosen = replace(hier, levels=(hier.levels[0], replace(hier.levels[1], holds=ALL, chosen=ALL), hier.levels[2]))
    # the MACs may read inputs from RF, from GLB (RF bypassed) or from DRAM (both bypassed)
    assert {(k.parent, k.kept, k.bypassed) for k in links(chosen) if k.level == 2 and k.tensor == "inputs"} == {
        (1, (1,), ()), (0, (), (1,))}
    assert len(keep_sets(chosen)) == 8


def test_keep_and_bypass_in_yaml_fix_part_of_the_choice():
    raw = {"levels": [{"name": "DRAM"}, {"name": "GLB", "capacity": "1 KiB", "keep": ["weights"], "bypass": ["outputs"]},
                      {"name": "RF", "per_pe": True, "partition": {"inputs": "8 B", "outputs": "8 B"}},
                      {"name": "Reg", "per_pe": True, "capacity": "4 B", "holds": ["outputs"]}]}
    hier = hierarchy_from_dict("h", raw)
    glb, rf, reg = hier.levels[1:]
    assert glb.holds == {"inputs", "weights"} and glb.chosen == {"inputs"} and glb.always_holds == {"weights"}
    assert rf.holds == {"inputs", "outputs"} and rf.chosen == rf.holds  # a partition names what a level can keep
    assert reg.holds == {"outputs"} and not reg.chosen
    assert len(keep_sets(hier)) == 2 * 4
    for bad, message in (({"holds": ["inputs"], "keep": ["inputs"]}, "either holds or keep/bypass"),
                         ({"keep": ["inputs"], "bypass": ["inputs"]}, "both kept and bypassed")):
        level = {"name": "GLB", "capacity": "1 KiB", **bad}
        with pytest.raises(ValueError, match=message):
            hierarchy_from_dict("h", {"levels": [{"name": "DRAM"}, level]})


def test_a_mapping_cannot_bypass_what_the_hardware_keeps():
    hier = hierarchy_from_dict("h", {"levels": [{"name": "DRAM"},
                                                {"name": "GLB", "capacity": "1 KiB", "keep": ["weights"]}]})
    layer = ConvLayer(name="t", N=1, M=2, C=2, P=2, Q=2, R=1, S=1)
    problem = MultiLevelProblem(layer, hier)
    data = {"levels": [{"name": "DRAM", "factors": {"M": 2, "C": 2, "P": 2, "Q": 2}},
                       {"name": "GLB", "keep": ["inputs"]}]}
    with pytest.raises(ValueError, match="GLB always keeps weights"):
        MultiLevelMapping.from_dict(data, hier, layer)
    data["levels"][1]["keep"] = ["weights", "inputs"]
    mapping = MultiLevelMapping.from_dict(data, hier, layer)
    assert mapping.keep[1] == {"weights", "inputs"}
    assert evaluate_multilevel(problem, mapping).writes[1]["outputs"] == 0  # outputs bypass GLB
    assert mapping.to_dict(hier)["levels"][1]["keep"] == ["inputs", "weights"]


def test_bypass_choices_from_the_command_line(tmp_path):
    """The solver's keep sets are in the result, `verify` re-derives them,
    and `space: {bypass: fixed}` gives the space without the choice."""
    instance = {
        "family": "tiling",
        "workload": {"name": "small", "dims": {"N": 1, "M": 4, "C": 2, "P": 4, "Q": 2, "R": 3, "S": 1}},
        "hardware": {"array": {"rows": 2, "cols": 2}, "mac_energy": 1,
                     "levels": [{"name": "DRAM", "read_energy": 200},
                                {"name": "GLB", "capacity": "64 B", "holds": ["inputs", "outputs"], "read_energy": 6},
                                {"name": "RF", "capacity": "12 B", "per_pe": True, "read_energy": 1}]},
        "objective": "energy",
    }
    chosen, fixed = tmp_path / "chosen.yaml", tmp_path / "fixed.yaml"
    chosen.write_text(yaml.safe_dump(instance))
    fixed.write_text(yaml.safe_dump({**instance, "space": {"bypass": "fixed"}}))
    results = {}
    for path in (chosen, fixed):
        out = tmp_path / f"{path.stem}.result.yaml"
        done = run_mapcert("solve", str(path), "-o", str(out))
        assert done.returncode == 0, done.stderr
        results[path.stem] = yaml.safe_load(out.read_text())
    assert run_mapcert("verify", str(tmp_path / "chosen.result.yaml")).returncode == 0
    assert results["chosen"]["objective"] < results["fixed"]["objective"]
    rf = results["chosen"]["solution"]["levels"][2]
    assert set(rf["keep"]) < set(TENSORS)  # the optimum bypasses the register file for some tensor
    assert "keep" not in results["fixed"]["solution"]["levels"][2]


def test_samplers_draw_keep_sets_however_many_there_are():
    """Five levels choosing all three tensors: 2^15 keep sets, more than the
    union over keep sets walks; the sampling mappers draw from them anyway."""
    from mapcert.formulations.tiling.multilevel.bypass import MAX_KEEP_SETS
    from mapcert.solvers.multilevel_heuristics import paper_dataflow

    levels = [MemoryLevel("DRAM", read_energy=200)] + [
        MemoryLevel(f"L{i}", capacity_bits=8 * size, chosen=ALL, read_energy=energy, per_pe=i > 2)
        for i, (size, energy) in enumerate([(4096, 10), (1024, 6), (256, 3), (64, 1), (8, 1)])]
    problem = MultiLevelProblem(ConvLayer(name="t", N=1, M=4, C=4, P=4, Q=2, R=3, S=1),
                                Hierarchy("h", tuple(levels), rows=2, cols=2, mac_energy=1))
    with pytest.raises(ValueError, match="keep/bypass combinations"):
        keep_sets(problem.hierarchy)
    assert 2 ** 15 > MAX_KEEP_SETS
    mapping = paper_dataflow(problem, samples=2_000)
    assert mapping is not None and evaluate_multilevel(problem, mapping).fits


def test_a_keep_set_whose_settled_tiles_overflow_a_level_is_an_empty_model_not_an_error():
    """With the factors pinned, every tile size of a keep set's level can be
    settled before the solve; when they overflow the level, that keep set's
    MILP is empty (the others still run), not a malformed constraint."""
    from mapcert.formulations.tiling.multilevel.constraints import (LevelConstraint, MappingConstraints,
                                                                   SpatialConstraint)
    from mapcert.hardware.hierarchy import Fanout

    every = frozenset(TENSORS)
    levels = (MemoryLevel("DRAM", read_energy=200, write_energy=200),
              MemoryLevel("GLB", capacity_bits=1024, holds=every, chosen=frozenset({"weights"}),
                          read_energy=6, write_energy=6),
              MemoryLevel("RF", capacity_bits=32, holds=every, chosen=every, read_energy=1, write_energy=1))
    hierarchy = Hierarchy("h", levels, mac_energy=1, fanouts=(Fanout("array", 3, 1, 2),))
    constraints = MappingConstraints(levels=((1, LevelConstraint(factors=(("M", 4),), whole=("C",), order=())),),
                                     fanouts=((0, SpatialConstraint(rows=("M",), cols=("M", "C"), row_factors=(),
                                                                    col_factors=(), min_utilization=0.5)),))
    problem = MultiLevelProblem(ConvLayer("t", 1, 4, 1, 4, 1, 1, 1, stride=(2, 1)), hierarchy,
                                constraints=constraints)
    reference = solve_multilevel(problem, "enumerate")
    got = solve_multilevel(problem, "milp", time_limit=60)
    assert reference.status == got.status == "optimal", got.message
    assert got.objective == pytest.approx(reference.objective)
