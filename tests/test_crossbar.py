"""Crossbar allocation: exact methods against brute force, the bisection
third opinion, rigorous bounds below every optimum (every objective),
heuristics above it, the family through solve and verify, and the input
limits of the schema."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapcert import workload_library
from mapcert.formulations import registry
from mapcert.formulations.crossbar import CrossbarLayer, CrossbarProblem, evaluate, layers_from_network, solve_crossbar
from mapcert.formulations.crossbar.cost import Allocation
from mapcert.formulations.crossbar.exact import bisection_refusal, copy_candidates, options
from mapcert.hardware.pim import pim_chip
from mapcert.instances import InstanceError, load_document, load_text
from mapcert.pipeline import MethodError, solve
from mapcert.solvers.crossbar_heuristics import CROSSBAR_HEURISTICS, GenomeTable
from mapcert.validation.crossbar_bounds import best_bound, crossbar_bounds
from mapcert.validation.verify import verify

SMALL_CHIP = pim_chip("neurosim-rram", rows=16, columns=16, crossbars_per_pe=2, pes_per_tile=2, tiles=12,
                      bandwidth_bits_per_cycle=64)
FAMILY = registry.get("crossbar")
TINY = ("family: crossbar\nworkload:\n  - {name: a, dims: {M: 4, C: 6, P: 3, Q: 2, R: 3, S: 3}}\n"
        "  - {name: b, dims: {M: 3, C: 20, P: 2, Q: 2}, stride: 2}\n"
        "hardware: {preset: neurosim-rram, rows: 16, columns: 16, crossbars_per_pe: 2, pes_per_tile: 2, tiles: 12}\n")


def test_copy_candidates_cover_every_stage_length():
    layer = CrossbarLayer("l", C=4, M=4, P=7, Q=5)
    candidates = copy_candidates(layer)
    lengths = {-(-35 // r) for r in range(1, 36)}
    assert {-(-35 // r) for r in candidates.tolist()} == lengths
    assert len(candidates) == len(lengths)
    assert candidates.tolist() == sorted(min(r for r in range(1, 36) if -(-35 // r) == v) for v in lengths)


def test_crossbars_per_copy_follow_the_two_layouts():
    chip = pim_chip("neurosim-rram")  # 128 x 128, 8 one-bit slices
    layer = CrossbarLayer("conv", C=64, M=64, P=56, Q=56, R=3, S=3)
    p = CrossbarProblem((layer,), chip)
    assert p.crossbars_per_copy(layer, "conventional") == 5 * 4  # ceil(576/128) x ceil(512/128)
    assert p.crossbars_per_copy(layer, "split") == 9 * 1 * 4
    assert p.input_bits(layer, "conventional") == 56 * 56 * 576 * 8
    assert p.input_bits(layer, "split") == 64 * 58 * 58 * 8


def test_a_strided_1x1_layer_reads_every_other_input_once():
    """A 1x1 stride-2 downsample reads P x Q of its (2P-1) x (2Q-1) inputs."""
    layer = CrossbarLayer("down", C=64, M=128, P=28, Q=28, stride=(2, 2))
    p = CrossbarProblem((layer,), pim_chip("neurosim-rram"))
    assert layer.input_height == 55 and layer.rows_read == 28
    assert p.input_bits(layer, "split") == 64 * 28 * 28 * 8 == p.input_bits(layer, "conventional")


def options_brute_force(problem: CrossbarProblem) -> float | None:
    """The optimum over every combination of the exact models' options."""
    best = None
    for combo in itertools.product(*options(problem)):
        metrics = evaluate(problem, Allocation([o.style for o in combo], [o.copies for o in combo]))
        if metrics.feasible:
            value = metrics.objective(problem.objective)
            best = value if best is None else min(best, value)
    return best


@st.composite
def small_problems(draw, objective=None):
    layers = tuple(
        CrossbarLayer(f"l{i}", C=draw(st.integers(1, 40)), M=draw(st.integers(1, 12)),
                      P=draw(st.integers(1, 5)), Q=draw(st.integers(1, 4)), R=draw(st.sampled_from([1, 3])),
                      S=draw(st.sampled_from([1, 3])), stride=draw(st.sampled_from([(1, 1), (2, 2)])))
        for i in range(draw(st.integers(1, 3)))
    )
    return CrossbarProblem(
        layers, SMALL_CHIP,
        objective=objective or draw(st.sampled_from(["bottleneck", "latency", "energy"])),
        styles=draw(st.sampled_from([("conventional",), ("split",), ("conventional", "split")])),
        one_layer_per_tile=draw(st.booleans()),
        bandwidth=draw(st.booleans()),
        budget=draw(st.integers(4, 48)),
    )


def check_exact_methods(problem: CrossbarProblem) -> None:
    expected = options_brute_force(problem)
    milp = solve_crossbar(problem, "milp")
    cpsat = solve_crossbar(problem, "cpsat")
    if expected is None:
        assert milp.status == cpsat.status == "infeasible"
        assert crossbar_bounds(problem) == []
        return
    assert milp.status == cpsat.status == "optimal"
    assert milp.objective == pytest.approx(expected) and cpsat.objective == pytest.approx(expected)
    if bisection_refusal(problem) is None:
        assert solve_crossbar(problem, "bisection").objective == expected
    for heuristic in CROSSBAR_HEURISTICS.values():
        metrics = evaluate(problem, heuristic(problem))
        if metrics.feasible:
            assert metrics.objective(problem.objective) >= expected - 1e-6


@settings(max_examples=12, deadline=None, derandomize=True)
@given(small_problems())
def test_exact_methods_agree_with_brute_force(problem):
    check_exact_methods(problem)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(small_problems())
def test_exact_methods_agree_with_brute_force_on_many_instances(problem):
    check_exact_methods(problem)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(small_problems(), st.integers(0, 2 ** 31))
def test_the_genetic_search_scores_genomes_as_evaluate_does(problem, seed):
    styles = [min(problem.styles, key=lambda s: problem.crossbars_per_copy(layer, s)) for layer in problem.layers]
    table = GenomeTable(problem, styles)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        genome = rng.integers(0, table.sizes)
        metrics = evaluate(problem, Allocation(styles, [int(table.candidates[l][g]) for l, g in enumerate(genome)]))
        assert table.fits(genome) == metrics.feasible
        assert table.score(genome) == (metrics.objective(problem.objective) if metrics.feasible else float("inf"))


@pytest.mark.parametrize("objective", ["bottleneck", "latency", "energy"])
@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_every_rigorous_bound_lies_at_or_below_the_brute_force_optimum(objective, data):
    """Each objective's bounds, on random small instances, against the
    optimum over every style and copy count (the family's brute force)."""
    problem = data.draw(small_problems(objective))
    problem = replace(problem, layers=problem.layers[:2])  # keeps the exhaustive search small
    optimum = FAMILY.brute_force(problem)
    bounds = FAMILY.bounds(problem)
    if optimum is None:
        return
    assert bounds and all(b.rigorous for b in bounds)
    for bound in bounds:
        assert bound.value <= optimum * (1 + 1e-9), (bound, optimum)


def test_the_latency_and_energy_bounds_reach_the_optimum_when_the_budget_binds():
    layers = tuple(layers_from_network(workload_library.network("resnet18")))
    for objective in ("latency", "energy"):
        problem = CrossbarProblem(layers, pim_chip("neurosim-rram"), objective=objective, budget=8192)
        optimum = solve_crossbar(problem, "cpsat").objective
        bound = best_bound(problem)
        assert bound <= optimum * (1 + 1e-9)
        assert bound >= 0.9 * optimum, (objective, bound, optimum)


def test_family_brute_force_equals_the_option_enumeration():
    for budget in (12, 20, 40):
        for objective in ("bottleneck", "latency", "energy"):
            problem = CrossbarProblem((CrossbarLayer("a", C=20, M=3, P=3, Q=2, R=3, S=1),
                                       CrossbarLayer("b", C=5, M=9, P=2, Q=2, stride=(2, 2))),
                                      SMALL_CHIP, objective=objective, budget=budget)
            assert FAMILY.brute_force(problem) == pytest.approx(options_brute_force(problem))


def test_resnet34_allocation_is_proved_and_bounded():
    layers = tuple(layers_from_network(workload_library.network("resnet34")))
    problem = CrossbarProblem(layers, pim_chip("neurosim-rram"), budget=16384)
    milp, cpsat = solve_crossbar(problem, "milp"), solve_crossbar(problem, "cpsat")
    assert milp.status == cpsat.status == "optimal" and milp.objective == cpsat.objective
    assert best_bound(problem) <= milp.objective
    assert solve_crossbar(problem, "bisection").objective == milp.objective
    greedy = evaluate(problem, CROSSBAR_HEURISTICS["greedy-bottleneck"](problem))
    assert greedy.period >= milp.objective


@pytest.mark.slow
@pytest.mark.parametrize("budget", [12000, 16384, 32768])
def test_resnet34_allocations_are_proved_and_bounded_with_tiles_and_bandwidth(budget):
    layers = tuple(layers_from_network(workload_library.network("resnet34")))
    for extra in ({}, {"one_layer_per_tile": True, "bandwidth": True}):
        problem = CrossbarProblem(layers, pim_chip("neurosim-rram"), budget=budget, **extra)
        milp, cpsat = solve_crossbar(problem, "milp"), solve_crossbar(problem, "cpsat")
        assert milp.status == cpsat.status == "optimal" and milp.objective == cpsat.objective
        assert best_bound(problem) <= milp.objective
        if not extra:
            assert solve_crossbar(problem, "bisection").objective == milp.objective


# --------------------------------------------------------------------------
# the family through solve and verify


def test_too_small_a_budget_is_infeasible_with_a_reason():
    problem = load_text("family: crossbar\nworkload: resnet34\nhardware: neurosim-rram\nconstraints: {budget: 4000}\n")
    result = solve(problem, functional=False, heuristics=False)
    assert result.status == "infeasible" and "one copy of every layer needs" in result.message
    assert result.bounds == []


def test_solve_then_verify_and_a_tampered_objective_fails():
    problem = load_text(TINY + "objective: latency\nconstraints: {budget: 30, bandwidth: true}\n")
    result = solve(problem, time_limit=30)
    assert result.status == "optimal" and result.certificate.functional.ran and result.certificate.functional.passed
    assert any(c.name == "cpsat agrees" and c.passed for c in result.certificate.checks)
    data = result.to_dict()
    assert verify(data, time_limit=30).passed
    data["objective"] = data["objective"] - 8
    failed = [c.name for c in verify(data, time_limit=30).checks if not c.passed]
    assert "objective: equals evaluate of the solution" in failed


def test_the_dumped_instance_is_self_contained_and_equal():
    problem = load_text("family: crossbar\nworkload: resnet18\nhardware: {preset: neurosim-rram, tiles: 128}\n"
                        "objective: energy\nstyles: [split]\nconstraints: {budget: 8192, bandwidth: true}\n"
                        "solver: {method: cpsat, time_limit: 20}\n")
    document = FAMILY.dump(problem)
    assert isinstance(document["workload"]["layers"], list) and document["hardware"]["rows"] == 128
    assert load_document(document) == problem


def test_bisection_applies_to_the_pure_min_max_case_only():
    pure = load_text(TINY + "constraints: {budget: 30}\nsolver: {method: bisection}\n")
    assert solve(pure, functional=False).status == "optimal"
    coupled = load_text(TINY + "constraints: {budget: 30, bandwidth: true}\n")
    with pytest.raises(MethodError, match="bandwidth"):
        solve(coupled, "bisection")
    latency = replace(coupled, objective="latency", bandwidth=False)
    assert "latency" in bisection_refusal(latency)


def test_a_stored_allocation_that_does_not_fit_the_instance_is_named():
    problem = load_text(TINY + "styles: [conventional]\n")
    with pytest.raises(ValueError, match="the instance has 2"):
        FAMILY.solution_from_dict(problem, {"layers": [{"layer": "a", "style": "conventional", "copies": 1}]})
    rows = [{"layer": "a", "style": "split", "copies": 1}, {"layer": "b", "style": "conventional", "copies": 1}]
    with pytest.raises(ValueError, match="style 'split'"):
        FAMILY.solution_from_dict(problem, {"layers": rows})
    rows[0] = {"layer": "a", "style": "conventional", "copies": 7}
    with pytest.raises(ValueError, match="copies 7 outside 1..6"):
        FAMILY.solution_from_dict(problem, {"layers": rows})


@pytest.mark.slow
def test_the_resnet34_example_is_certified_with_a_functional_run_and_verifies():
    from mapcert.instances import load

    result = solve(load("examples/resnet34_crossbar.yaml"))
    assert result.status == "optimal"
    functional = result.certificate.functional
    assert functional.ran and functional.passed and functional.counts["layers_run"] == 37
    assert verify(result.to_dict(), seed=1).passed


# --------------------------------------------------------------------------
# input limits


def _issues(text: str) -> list[str]:
    with pytest.raises(InstanceError) as err:
        load_text(text, "i.yaml")
    return [str(i) for i in err.value.issues]


@pytest.mark.parametrize("text,field,range_", [
    ("family: crossbar\nworkload: [{name: huge, dims: {M: 8, C: 8, P: 1000000, Q: 100}}]\n"
     "hardware: neurosim-rram\n", "workload[0].dims.P", "1..65,536"),
    ("family: crossbar\nworkload: [{name: huge, dims: {N: 1000, M: 8, C: 8, P: 60000, Q: 60000}}]\n"
     "hardware: neurosim-rram\n", "workload[0].dims", "1..16,777,216"),
    ("family: crossbar\nworkload: [{name: wide, dims: {M: 10000000, C: 8}}]\nhardware: neurosim-rram\n",
     "workload[0].dims.M", "1..1,048,576"),
    ("family: crossbar\nworkload: resnet18\nhardware: neurosim-rram\nconstraints: {budget: 1000000000000000}\n",
     "constraints.budget", "1..1,000,000,000"),
    ("family: crossbar\nworkload: resnet18\nhardware: {preset: neurosim-rram, tiles: 10000000}\n",
     "hardware.tiles", "1..1,000,000"),
    ("family: crossbar\nworkload: resnet18\nhardware: {preset: neurosim-rram, tiles: 1000000, pes_per_tile: 4096}\n",
     "hardware.tiles", "1..1,000,000,000"),
])
def test_absurd_sizes_are_refused_naming_the_field_and_the_range(text, field, range_):
    issues = _issues(text)
    assert len(issues) == 1, issues
    assert f": {field}: " in issues[0] and range_ in issues[0], issues[0]


def test_inline_layers_are_checked():
    issues = _issues("family: crossbar\nworkload:\n  - {name: a, dims: {M: 4, C: 6}}\n"
                     "  - {name: a, dims: {M: 4, C: 6}}\n  - {name: c, dims: {M: 4, C: 6, K: 3}}\n"
                     "  - {name: d, dims: {M: 6, C: 4}, groups: 4}\n  - {name: e, op: fc, dims: {M: 6, C: 4, P: 2}}\n"
                     "hardware: neurosim-rram\n")
    assert any(i.startswith("i.yaml:4: workload[1].name:") and "names must differ" in i for i in issues), issues
    assert any("workload[2].dims.K: unknown dimension" in i for i in issues)
    assert any("workload[3].groups" in i for i in issues)
    assert any("workload[4].op" in i for i in issues)


def test_an_infeasible_budget_names_every_layer_that_cannot_fit():
    """Every layer whose one copy exceeds the budget is named with what it needs."""
    from mapcert.formulations.crossbar.exact import solve_crossbar
    from mapcert.instances import load_text

    problem = load_text("family: crossbar\nworkload: alexnet\nhardware: neurosim-rram\nobjective: bottleneck\n"
                        "styles: [conventional, split]\nconstraints: {budget: 250}\n")
    result = solve_crossbar(problem, "milp", 10)
    assert result.status == "infeasible"
    assert result.message.startswith("5 layers cannot fit even one copy: conv3 (432 crossbars)")
    assert "fc8 (2,016 crossbars)" in result.message and result.message.endswith("the crossbar budget of 250")


def test_with_the_bandwidth_each_stage_of_the_latency_waits_for_its_own_input_bits():
    """The latency sums stage times of one image; with the bandwidth a stage takes at least
    its own input bits through the buffer, so the allocation changes to meet it (the period
    is unchanged by this, its bound on all stages together implying each one's)."""
    problem = load_text("family: crossbar\nworkload: resnet18\nhardware: {preset: neurosim-rram, rows: 256, "
                        "columns: 256, tiles: 64}\nobjective: latency\nstyles: [conventional, split]\n"
                        "constraints: {budget: 4096, one_layer_per_tile: true, bandwidth: true}\n")
    result = solve_crossbar(problem, "milp", 60)
    metrics = evaluate(problem, result.allocation)
    own = [-(-bits // problem.chip.bandwidth_bits_per_cycle) for bits in metrics.input_bits]
    assert result.status == "optimal" and metrics.latency == result.objective
    assert metrics.latency == sum(max(c, b) for c, b in zip(metrics.stage_cycles, own))
    assert metrics.latency > sum(metrics.stage_cycles) and metrics.latency >= sum(own)  # it binds on conv1
    assert metrics.latency == sum(metrics.stage_times)  # the table's stage times add up to it
    free = solve_crossbar(replace(problem, bandwidth=False), "milp", 60)
    assert free.objective < result.objective
    assert crossbar_bounds(problem)[0].value <= result.objective


@pytest.mark.parametrize(("chip", "cycles"), [
    ("{preset: neurosim-rram}", 8),                                  # 8-bit inputs, a 1-bit DAC
    ("{preset: neurosim-rram, input_bits: 16}", 16),                 # the preset's 8 follows the inputs
    ("{preset: neurosim-rram, input_bits: 4, dac_bits: 2}", 2),
    ("{preset: neurosim-rram, input_bits: 4, dac_bits: 2, cycles_per_mvm: 5}", 5),  # given: kept
])
def test_cycles_per_mvm_follow_the_bit_serial_input_chunks(chip, cycles):
    """A stage's time and its energy count the same input chunks: one cycle
    per chunk of dac_bits unless the chip says otherwise."""
    from mapcert.instances import load_text

    problem = load_text(f"family: crossbar\nworkload: [{{name: c, dims: {{M: 16, C: 16, P: 4, Q: 4, R: 3, S: 3}}}}]\n"
                        f"hardware: {chip}\n", "xb.yaml")
    assert problem.chip.cycles_per_mvm == cycles


def test_too_few_tiles_for_one_layer_each_says_how_many():
    from mapcert.instances import load_text

    problem = load_text("family: crossbar\nworkload:\n  - {name: c1, dims: {M: 32, C: 3, P: 32, Q: 32, R: 3, S: 3}}\n"
                        "  - {name: c2, dims: {M: 64, C: 32, P: 16, Q: 16, R: 3, S: 3}}\n"
                        "hardware: {preset: neurosim-rram, tiles: 1}\n"
                        "constraints: {budget: 64, one_layer_per_tile: true}\n", "xt.yaml")
    for method in ("milp", "cpsat"):
        result = solve_crossbar(problem, method, 10)
        assert result.status == "infeasible"
        assert "with one layer per tile, one copy of every layer needs 2 tiles; the chip has 1" in result.message
