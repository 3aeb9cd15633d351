"""The partition family through the contract: instances and their limits,
solutions read back, verify and tampering, bounds against brute force,
time-outs that still carry a bound, and the terminal and plot views."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings

from mapcert.formulations import registry
from mapcert.formulations.family import Status
from mapcert.validation.partition_bounds import least_design_cost, partition_bounds
from mapcert.formulations.partition.brute_force import brute_force_optimum
from mapcert.formulations.partition.cost import Machine, compulsory_ema
from mapcert.formulations.partition.problem import PartitionProblem, PartitionSolution
from mapcert.instances import InstanceError, Located, load_document, load_text
from mapcert.pipeline import compare, solve
from mapcert.validation.certificate import at_least
from mapcert.validation.verify import verify

from test_partition import small_dags

FAMILY = registry.get("partition")
FIXED, COEXPLORED, LATENCY = FAMILY.examples()


def failed_checks(data: dict) -> list[str]:
    verification = verify(data, time_limit=30, methods=["dp"], seed=1)
    return [c.name for c in verification.checks if not c.passed]


@pytest.fixture(scope="module")
def fixed_result():
    return solve(load_text(FIXED, "fixed.yaml")).to_dict()


@pytest.fixture(scope="module")
def coexplored_result():
    return solve(load_text(COEXPLORED, "coexplored.yaml")).to_dict()


# --------------------------------------------------------------------------
# verify


def test_a_fresh_result_verifies(fixed_result, coexplored_result):
    for data in (fixed_result, coexplored_result):
        assert data["status"] == "optimal"
        assert failed_checks(data) == []


def test_the_result_keeps_what_a_reader_needs(fixed_result, coexplored_result):
    details = fixed_result["details"]
    assert details["compulsory_ema_bytes"] <= fixed_result["metrics"]["ema_bytes"] < details["layer_by_layer_ema_bytes"]
    assert 0 < details["fusion_saving"] < 1
    points = coexplored_result["details"]["capacities"]
    assert [p["capacity_bytes"] for p in points] == [250, 400, 600, 1000]  # 1600 alone costs more than the best
    best = min(points, key=lambda p: p["cost"])
    assert best["cost"] == coexplored_result["objective"] and coexplored_result["solution"]["capacity"] == 1000


def test_a_tampered_objective_fails(fixed_result):
    data = copy.deepcopy(fixed_result)
    data["objective"] -= 1
    assert "objective: equals evaluate of the solution" in failed_checks(data)


def test_tampered_subgraphs_fail(fixed_result):
    merged = copy.deepcopy(fixed_result)
    subgraphs = merged["solution"]["subgraphs"]
    subgraphs[0:2] = [subgraphs[0] + subgraphs[1]]  # another partition: a different EMA, or one that does not fit
    assert any(name.startswith(("objective", "solution")) for name in failed_checks(merged))
    unknown = copy.deepcopy(fixed_result)
    unknown["solution"]["subgraphs"][0][0] = "conv9"
    assert "solution: lies in the declared space" in failed_checks(unknown)
    twice = copy.deepcopy(fixed_result)
    twice["solution"]["subgraphs"][-1].append(twice["solution"]["subgraphs"][0][0])
    assert "solution: lies in the declared space" in failed_checks(twice)


def test_a_tampered_capacity_fails(fixed_result, coexplored_result):
    other = copy.deepcopy(fixed_result)
    other["solution"]["capacity"] += 1
    assert "solution: lies in the declared space" in failed_checks(other)
    larger = copy.deepcopy(coexplored_result)
    larger["solution"]["capacity"] = 1600  # a candidate, but not the optimal design
    assert "objective: equals evaluate of the solution" in failed_checks(larger)


# --------------------------------------------------------------------------
# solutions


@pytest.mark.parametrize("data, words", [
    ({"subgraphs": [["conv1", "conv9"], ["conv2", "conv3", "add", "pool", "fc"]]}, "'conv9' is not a layer"),
    ({"subgraphs": [["conv1", "conv2"], ["conv2", "conv3", "add", "pool", "fc"]]}, "already in subgraphs[0]"),
    ({"subgraphs": [["conv1", "conv2", "conv3", "add", "pool"]]}, "in no subgraph: fc"),
    ({"subgraphs": [[], ["conv1", "conv2", "conv3", "add", "pool", "fc"]]}, "subgraphs[0]: empty"),
    ({"subgraphs": [["conv1", "conv2", "conv3", "add", "pool", "fc"]], "capacity": 512}, "not among"),
    ({"subgraphs": [["conv1", "conv2", "conv3", "add", "pool", "fc"]], "extra": 1}, "unknown field"),
    ({"subgraphs": "conv1"}, "lists of layer names"),
])
def test_solutions_that_do_not_fit_the_instance_are_refused(data, words):
    problem = load_text(FIXED)
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        FAMILY.solution_from_dict(problem, data)


def test_a_solution_reads_back_and_its_capacity_may_be_left_out():
    problem = load_text(FIXED)
    layers = ["conv1", "conv2", "conv3", "add", "pool", "fc"]
    solution = FAMILY.solution_from_dict(problem, {"subgraphs": [[v] for v in reversed(layers)]})
    assert solution.capacity == 600
    stored = FAMILY.solution_to_dict(problem, solution)
    assert stored == {"subgraphs": [[v] for v in layers], "capacity": 600}  # in execution order
    again = FAMILY.solution_from_dict(problem, stored)
    assert set(again.blocks) == set(solution.blocks) and again.capacity == solution.capacity
    coexplored = load_text(COEXPLORED)
    with pytest.raises(ValueError, match="capacity: required"):
        FAMILY.solution_from_dict(coexplored, {"subgraphs": [[v] for v in coexplored.graph.order]})


def test_a_buffer_outside_the_candidates_does_not_evaluate():
    problem = load_text(FIXED)
    evaluation = FAMILY.evaluate(problem, PartitionSolution(tuple(frozenset([v]) for v in problem.graph.order), 10**6))
    assert not evaluation.feasible and evaluation.objective is None
    assert any("not among the instance's sizes" in v for v in evaluation.violations)


# --------------------------------------------------------------------------
# instances


@pytest.mark.parametrize("text", [
    FIXED, COEXPLORED, LATENCY,
    "family: partition\nworkload: resnet50\nbuffer: {from: 128 KiB, to: 1 MiB, step: 128 KiB}\n",
    "family: partition\nworkload: googlenet\nbuffer: 512 KiB\nprecision: {activations: 16, weights: 4}\n"
    "objective: latency\naccelerator: {macs_per_cycle: 256, dram_bytes_per_cycle: 8.5}\n"
    "solver: {method: cpsat, time_limit: 12, workers: 2}\n",
])
def test_instances_round_trip_through_dump(text):
    problem = load_text(text)
    again = load_document(FAMILY.dump(problem))
    assert FAMILY.dump(again) == FAMILY.dump(problem)
    assert again.graph.order == problem.graph.order
    assert all(again.graph.node(v) == problem.graph.node(v) for v in problem.graph.order)
    assert list(again.graph.graph.edges) == list(problem.graph.graph.edges)


def test_an_inline_graph_builds_the_same_graph_as_the_network_of_the_same_layers():
    from mapcert import workload_library
    from mapcert.formulations.partition.graph import from_layers

    layers = workload_library.randwire_layers(4, 2, 0.75, 2, 4, 6)
    inline = load_document({"family": "partition", "workload": {"name": "rw", "layers": layers}, "buffer": "1 KiB"})
    direct = from_layers("rw", layers)
    assert inline.graph.order == direct.order
    assert all(inline.graph.node(v) == direct.node(v) for v in direct.order)


def issues(text: str) -> str:
    with pytest.raises(InstanceError) as info:
        load_text(text, "bad.yaml")
    return str(info.value)


@pytest.mark.parametrize("text, words", [
    ("workload: vgg16\nbuffer: 1000000000000000\n", ["bad.yaml:3: buffer:", "1 TiB"]),
    ("workload: vgg16\nbuffer: 2 PiB\n", ["bad.yaml:3: buffer:", "(1 B to 1 TiB)"]),  # one range, whatever the size
    ("workload: vgg16\nbuffer: {activations: 1 KiB, weights: 2000000000000}\n", ["buffer.weights", "1 TiB"]),
    ("workload: {randwire: {nodes: 100000}}\nbuffer: 1 MiB\n", ["workload.randwire.nodes", "2 to 512"]),
    ("workload: {randwire: {nodes: 64, channels: 1000000}}\nbuffer: 1 MiB\n",
     ["workload.randwire.channels", "1 to 4,096"]),
    ("workload: vgg16\nbuffer: {from: 1, to: 1000000000, step: 1}\n", ["buffer.step", "1,000,000,000 sizes", "1 to 200"]),
    ("workload: vgg16\nbuffer: {from: 1 KiB, to: 2 KiB, step: 0}\n", ["buffer.step", "positive"]),
    ("workload: {name: g, layers: {a: {op: conv2d, dims: {M: 4, C: 1000000000000, P: 8, Q: 8}}}}\nbuffer: 1 MiB\n",
     ["workload.layers.a.dims.C", "1 to 16,777,216"]),
    ("workload: {name: g, layers: {a: {op: conv2d, dims: {M: 1048576, C: 1048576, P: 8, Q: 8, R: 1024, S: 1024}}}}\n"
     "buffer: 1 MiB\n", ["workload.layers.a.dims", "weights hold", "beyond the supported range"]),
    ("workload: vgg16\nbuffer: 1 MiB\nsolver: {time_limit: .inf}\n", ["solver.time_limit", "at most a week"]),
    ("workload: vgg16\nbuffer: 1 MiB\ncost: {alpha: .nan}\n", ["cost.alpha", "finite"]),
    ("workload: vgg16\nbuffer: 1 MiB\nprecision: {activations: 64}\n", ["precision.activations", "1 to 32"]),
    ("workload: {name: g, layers: {a: {op: concat, dims: {M: 8, P: 4, Q: 4}}}}\nbuffer: 1 MiB\n",
     ["workload.layers.a.dims", "dimension C (input channels) is missing", "channels of its inputs together"]),
])
def test_absurd_sizes_are_refused_naming_the_field_and_the_range(text, words):
    message = issues("family: partition\n" + text)
    for word in words:
        assert word in message, message
    assert "Traceback" not in message


def test_a_million_layers_or_sizes_are_refused_before_they_are_read():
    million = [f"l{i}" for i in range(10**6)]
    where = Located("big.yaml")
    data = {"family": "partition", "workload": {"name": "big", "layers": dict.fromkeys(million, {"op": "add"})},
            "buffer": "1 MiB"}
    assert FAMILY.build(data, where, "big.yaml", Path(".")) is None
    assert [i.field for i in where.issues] == ["workload.layers"]
    assert "1,000,000 layers; the supported range is 1 to 1,000" in where.issues[0].message
    where = Located("big.yaml")
    data = {"family": "partition", "workload": "vgg16", "buffer": list(range(1, 10**6 + 1))}
    assert FAMILY.build(data, where, "big.yaml", Path(".")) is None
    assert [i.field for i in where.issues] == ["buffer"] and "1 to 200" in where.issues[0].message


@pytest.mark.parametrize("layers, words", [
    ("a: {op: conv2d, dims: {M: 4, C: 2, P: 8, Q: 8, R: 3, S: 3}, inputs: [b]}\n"
     "    b: {op: conv2d, dims: {M: 4, C: 4, P: 8, Q: 8, R: 3, S: 3}, inputs: [a]}",
     ["workload.layers.a.inputs", "'b', which is not a layer before a"]),
    ("a: {op: conv2d, dims: {M: 4, C: 2, P: 8, Q: 8, R: 3, S: 3}}\n"
     "    b: {op: conv2d, dims: {M: 4, C: 3, P: 8, Q: 8, R: 3, S: 3}}",
     ["workload.layers.b.dims.C", "must equal the channels of a (4)"]),
    ("a: {op: add, dims: {M: 4, C: 4, P: 8, Q: 8}, inputs: [input]}",
     ["workload.layers.a.inputs", "may read the network input"]),
    ("a: {op: conv2d, dims: {M: 4, C: 2, P: 8, Q: 8}}\n    b: {op: fc, dims: {M: 3, C: 100}}",
     ["workload.layers.b.dims.C", "must be 256"]),
    ("a: {op: conv2d, dims: {M: 4, C: 2, P: 8, Q: 8}, groups: 3}", ["workload.layers.a.groups", "must divide"]),
    ("a: {op: conv2d, dims: {M: 4, C: 2, P: 8, Q: 8, K: 3}}", ["workload.layers.a.dims.K", "unknown dimension"]),
    ("input: {op: conv2d, dims: {M: 4, C: 2}}", ["workload.layers.input", "network input"]),
    ("a: {op: softmax, dims: {M: 4, C: 2}}", ["workload.layers.a.op"]),
    ("a: {op: conv2d, dims: {M: 4, C: 2, P: 8, Q: 8, R: 3, S: 3}}\n"
     "    b: {op: conv2d, dims: {M: 4, C: 4, P: 16, Q: 16, R: 3, S: 3}}",
     ["workload.layers.b.dims.P", "reads 18 rows of its input", "a gives 8"]),
    ("a: {op: conv2d, dims: {M: 4, C: 2, P: 8, Q: 8, R: 3, S: 3}}\n"
     "    b: {op: pool, dims: {M: 4, C: 4, P: 4, Q: 2, R: 2, S: 2}, stride: 2}",
     ["workload.layers.b.dims.Q", "reads 4 columns", "a gives 8"]),
])
def test_inline_graphs_are_checked_layer_by_layer(layers, words):
    message = issues(f"family: partition\nbuffer: 1 MiB\nworkload:\n  name: g\n  layers:\n    {layers}\n")
    for word in words:
        assert word in message, message


# --------------------------------------------------------------------------
# bounds


def problem_of(pg, capacities, objective="ema", machine=Machine(), alpha=0.5) -> PartitionProblem:
    capacities = tuple(sorted(set(capacities)))
    return PartitionProblem(pg, "random", capacities, len(capacities) > 1, alpha, 12.5, "dp", 30, 0, "test",
                            objective, machine)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(small_dags())
def test_bounds_lie_below_brute_force(case):
    pg, capacity = case
    for problem in (problem_of(pg, [capacity]),
                    problem_of(pg, [capacity], "latency", Machine(macs_per_cycle=16, dram_bytes_per_cycle=4)),
                    problem_of(pg, [capacity // 4, capacity // 2, capacity, 2 * capacity])):
        best = brute_force_optimum(problem)
        (bound,) = partition_bounds(problem)
        assert bound.rigorous
        if best is not None:
            assert at_least(best, bound.value), (problem.objective_name, best, bound)


def test_the_design_cost_bound_skips_sizes_no_layer_fits():
    problem = load_text(COEXPLORED)
    floor = 0.01 * 8 * 12.5 * compulsory_ema(problem.graph)
    assert least_design_cost(problem) == 250 + floor
    tight = load_text(COEXPLORED.replace("[250, 400, 600, 1000, 1600]", "[16, 32, 250, 1000]"))
    assert least_design_cost(tight) == 250 + floor  # no layer runs in 16 or 32 B


# --------------------------------------------------------------------------
# time-outs, heuristics, views


def test_a_time_out_returns_the_best_heuristic_partition_with_a_bound():
    problem = load_text("family: partition\nworkload: resnet50\nbuffer: 512 KiB\nsolver: {method: dp}\n")
    result = solve(problem, time_limit=0.001, functional=False, heuristics=False)
    assert result.status == Status.FEASIBLE and "heuristic" in result.method, result.message
    assert result.solution is not None and result.best_bound is not None
    assert result.best_bound == result.lower_bound == compulsory_ema(problem.graph)  # the rigorous bound, at worst
    assert result.objective >= result.best_bound and result.gap > 0


@pytest.mark.slow  # annealing and the genetic search: about 9 s on two cores
def test_compare_runs_the_long_heuristics_and_none_beats_the_optimum():
    problem = load_text(COEXPLORED)
    quick = {h.name for h in FAMILY.heuristics(problem) if h.in_solve}
    assert quick == {"greedy-merge", "depth-dp"}
    comparison = compare(problem, functional=False)
    rows = {r.method: r for r in comparison.rows}
    assert {"annealing", "genetic", "fixed-small", "fixed-medium", "fixed-large"} <= set(rows)
    assert rows["dp"].objective == rows["milp"].objective == rows["cpsat"].objective == comparison.optimum
    for name in ("greedy-merge", "depth-dp", "annealing", "genetic", "fixed-small", "fixed-medium", "fixed-large"):
        assert rows[name].objective >= comparison.optimum, name


def test_render_prints_the_subgraphs_and_the_sizes_explored(coexplored_result):
    from rich.console import Console
    from rich.table import Table

    from mapcert.result import Result

    problem = load_text(COEXPLORED)
    console = Console(record=True, width=140)
    FAMILY.render(problem, Result.from_dict(coexplored_result), console, lambda **kw: Table(**kw))
    text = console.export_text()
    for words in ("chosen buffer", "compulsory EMA", "saved by fusion", "subgraphs in execution order",
                  "buffer sizes explored", "sizes from 1.56 KiB on not solved: each costs at least its size plus"):
        assert words in text, text


def test_plot_draws_the_optimal_partition(tmp_path):
    picture = tmp_path / "partition.png"
    said = FAMILY.plot(load_text(FIXED), picture, {"time_limit": 30}, lambda what, total: (lambda: None))
    assert "optimal partition" in said and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_verify_fails_a_result_whose_subgraphs_are_listed_out_of_order():
    """The listed order is the schedule: a stored result with its subgraphs (or the layers
    of one) swapped reads back to the same partition, and verify names the edit."""
    from mapcert.pipeline import solve
    from mapcert.validation.verify import verify

    problem = load_text(FIXED)
    data = solve(problem).to_dict()
    subgraphs = data["solution"]["subgraphs"]
    assert len(subgraphs) > 1 or len(subgraphs[0]) > 1
    edited = copy.deepcopy(data)
    if len(subgraphs) > 1:
        edited["solution"]["subgraphs"] = list(reversed(subgraphs))
    else:
        edited["solution"]["subgraphs"] = [list(reversed(subgraphs[0]))]
    failed = [c for c in verify(edited, time_limit=30).checks if not c.passed]
    assert [c.name for c in failed] == ["solution: stored as mapcert writes it"], failed
    assert verify(data, time_limit=30).passed


@pytest.mark.parametrize("buffer, words", [
    ("{activations: 1 KiB, weights: 10 MiB}", "B of activations, more than the activations buffer's 1,024 B"),
    ("{activations: 10 MiB, weights: 1 KiB}", "B of weights, more than the weights buffer's 1,024 B"),
])
def test_separate_buffers_too_small_name_the_short_one(buffer, words):
    """An infeasible instance with separate buffers says which buffer a layer
    overflows, not a shared total that would hold it."""
    problem = load_text(f"family: partition\nworkload: resnet18\nbuffer: {buffer}\n")
    result = solve(problem, time_limit=20)
    assert result.status == Status.INFEASIBLE and "alone needs at least" in result.message
    assert words in result.message and "+" not in result.message, result.message


def test_every_library_network_a_partition_reads_is_its_real_graph():
    """A library network whose layers, read as a graph, do not fit together
    (a chain of shapes without its pools and skip connections) is refused,
    naming what does not fit; the others pass the checks of an inline graph
    and keep their layers with weights in order."""
    from mapcert import workload_library
    from mapcert.formulations.partition.schema import library_graph_problems

    refused = [name for name in workload_library.networks() if library_graph_problems(name)]
    assert refused == ["efficientnet_b0"]
    message = issues("family: partition\nworkload: efficientnet_b0\nbuffer: 512 KiB\n")
    assert "se_reduce" in message and "onnx" in message and "resnet18" in message
    for name in ("resnet18", "resnet34", "alexnet"):
        graph = workload_library.network_graph(name)
        joins = [n for n, data in graph.nodes(data=True) if data["op"] in ("add", "pool")]
        assert joins, name
    # the downsample of a ResNet block reads the block's input, not the conv before it
    graph = workload_library.network_graph("resnet18")
    assert list(graph.predecessors("layer2.0.downsample")) == ["layer1.1.add"]
    assert sorted(graph.predecessors("layer2.0.add")) == ["layer2.0.conv2", "layer2.0.downsample"]
