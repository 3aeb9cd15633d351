"""Graph partition: the DP over ideals, the MILP and CP-SAT agree with brute
force over every set partition of small random DAGs."""

from __future__ import annotations

import time

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapcert.formulations.partition.brute_force import set_partitions
from mapcert.formulations.partition.compact import compact_lower_bound
from mapcert.formulations.partition.cost import (DEFAULT_MACHINE, Machine, SplitCapacity, compulsory_ema, ema_bytes,
                                                 evaluate, memory_bytes, memory_parts)
from mapcert.formulations.partition.exact import solve_partition
from mapcert.formulations.partition.graph import Node, PartitionGraph, from_network


@st.composite
def small_dags(draw):
    n = draw(st.integers(1, 7))
    graph = nx.DiGraph()
    for i in range(n):
        rows = draw(st.sampled_from([1, 4, 8, 16]))
        reads_input = i == 0
        node = Node(f"v{i}", rows=rows, row_bytes=draw(st.integers(1, 40)), window=draw(st.sampled_from([1, 3])),
                    stride=draw(st.sampled_from([1, 1, 2])), weight_bytes=draw(st.integers(0, 300)),
                    input_bytes=rows * 10 if reads_input else 0, input_row_bytes=10 if reads_input else 0,
                    channels=draw(st.sampled_from([1, 2, 4])), macs=draw(st.integers(0, 4000)))
        graph.add_node(node.name, index=i, node=node)
        if i:
            parents = draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=2, unique=True))
            for p in parents:
                graph.add_edge(f"v{p}", node.name)
    return PartitionGraph(graph, "random"), draw(st.integers(200, 2000))


def brute_force_best(pg, capacity, objective="ema", machine=DEFAULT_MACHINE):
    """Least objective over every set partition that runs, or None."""
    best = None
    for partition in set_partitions(list(pg.graph.nodes)):
        metrics = evaluate(pg, [frozenset(b) for b in partition], capacity, objective, machine)
        if metrics.feasible and (best is None or metrics.value < best):
            best = metrics.value
    return best


def assert_methods_reach(pg, capacity, best, objective="ema", machine=DEFAULT_MACHINE):
    for method in ("dp", "milp", "cpsat"):
        result = solve_partition(pg, capacity, method, objective=objective, machine=machine)
        if best is None:
            assert result.status == "infeasible", method
            continue
        assert result.status == "optimal" and result.objective == best, (method, result.message)
        metrics = evaluate(pg, result.blocks, capacity, objective, machine)
        assert metrics.feasible and metrics.value == best, method


@settings(max_examples=20, deadline=None, derandomize=True)
@given(small_dags())
def test_exact_methods_agree_with_brute_force(case):
    pg, capacity = case
    assert_methods_reach(pg, capacity, brute_force_best(pg, capacity))


@settings(max_examples=12, deadline=None, derandomize=True)
@given(small_dags())
def test_exact_methods_agree_with_brute_force_on_latency(case):
    """Latency: per subgraph max(compute, DRAM transfer) cycles, summed."""
    pg, capacity = case
    machine = Machine(macs_per_cycle=16, dram_bytes_per_cycle=4)
    assert_methods_reach(pg, capacity, brute_force_best(pg, capacity, "latency", machine), "latency", machine)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(small_dags(), st.floats(0.2, 0.8))
def test_exact_methods_agree_with_brute_force_on_separate_buffers(case, share):
    """Weights and activations each in their own buffer."""
    pg, total = case
    capacity = SplitCapacity(activations=int(total * share), weights=total - int(total * share))
    best = brute_force_best(pg, capacity)
    assert_methods_reach(pg, capacity, best)
    if best is not None:  # every split partition also fits one shared buffer of the same total
        assert solve_partition(pg, total, "dp").objective <= best


def test_memory_grows_with_the_receptive_field():
    graph = nx.DiGraph()
    for i, (window, stride) in enumerate([(3, 1), (3, 2), (1, 1)]):
        graph.add_node(f"v{i}", index=i, node=Node(f"v{i}", 16, 10, window, stride, 0, 0, 0))
    graph.add_edges_from([("v0", "v1"), ("v1", "v2")])
    pg = PartitionGraph(graph)
    # v2 consumes one row per step; v1 (1x1 consumer) keeps 1 row; v0 feeds a
    # 3-row window with stride 2 that advances 1 row per step: 3 rows
    assert memory_bytes(pg, frozenset({"v2"})) == 1 * 10 + 1 * 10  # its row, and one row of v1 read from outside
    assert memory_bytes(pg, frozenset({"v0", "v1", "v2"})) == (3 + 1 + 1) * 10


@pytest.mark.parametrize("capacity_mib", [98.01, 128])
def test_vgg16_partitions_agree(capacity_mib):
    # fc6 holds 98 MiB of weights: the smallest capacity any partition of VGG-16 fits in
    pg = from_network("vgg16")
    capacity = int(capacity_mib * 1024 * 1024)
    results = {m: solve_partition(pg, capacity, m, time_limit=60) for m in ("dp", "milp", "cpsat")}
    values = {m: r.objective for m, r in results.items()}
    assert all(r.status == "optimal" for r in results.values()), {m: r.message for m, r in results.items()}
    assert len(set(values.values())) == 1, values
    single = evaluate(pg, [frozenset([v]) for v in pg.graph.nodes], 10**12).ema_bytes
    assert values["dp"] < single  # fusion saves external memory access


@settings(max_examples=60, deadline=None, derandomize=True)
@given(small_dags(), st.data())
def test_memory_bound_never_shrinks_as_nodes_are_added(case, data):
    """The candidate enumeration prunes every superset of a set whose bound exceeds the capacity."""
    pg, _ = case
    nodes = list(pg.graph.nodes)
    subset = frozenset(data.draw(st.lists(st.sampled_from(nodes), min_size=1, unique=True)))
    extra = data.draw(st.sampled_from(nodes))
    weights, buffers, bound = memory_parts(pg, subset)
    assert bound <= buffers and memory_bytes(pg, subset) == weights + buffers
    more_weights, _, more_bound = memory_parts(pg, subset | {extra})
    assert more_weights >= weights and more_bound >= bound


def test_a_layer_whose_weights_do_not_fit_streams_them():
    # VGG-16's fc6 holds 98 MiB of weights; alone, its weights streamed in output-channel groups, it runs in 128 KiB
    pg = from_network("vgg16")
    capacity = 128 * 1024
    result = solve_partition(pg, capacity, "dp")
    assert result.status == "optimal"
    metrics = evaluate(pg, result.blocks, capacity)
    assert metrics.feasible and metrics.peak_memory_bytes <= capacity
    assert "fc6" in metrics.streamed and metrics.streamed["fc6"] > 1
    # streaming reads every weight once, so the EMA is at least all weights once
    assert metrics.ema_bytes >= sum(pg.node(v).weight_bytes for v in pg.graph.nodes)


def test_best_covering_that_cannot_be_ordered_is_refused():
    """Two crossed chains: fusing each chain is the cheapest covering, but
    then each subgraph feeds the other. Every method must fall back to an
    orderable partition, the one brute force finds."""
    graph = nx.DiGraph()
    for i, v in enumerate(["a1", "b1", "a2", "b2"]):
        graph.add_node(v, index=i, node=Node(v, 16, 10, 1, 1, 0, 160 if v.endswith("1") else 0,
                                             10 if v.endswith("1") else 0))
    graph.add_edges_from([("a1", "a2"), ("b1", "b2"), ("a1", "b2"), ("b1", "a2")])
    pg = PartitionGraph(graph)
    pairs = [frozenset(p) for p in (("a1", "a2"), ("b1", "b2"))]
    capacity = max(memory_bytes(pg, p) for p in pairs)
    assert all(memory_bytes(pg, frozenset(graph.nodes) - {v}) > capacity for v in graph.nodes)
    assert not evaluate(pg, pairs, capacity).feasible  # the cheapest covering cannot be ordered
    best = min(m.ema_bytes for part in set_partitions(list(graph.nodes))
               if (m := evaluate(pg, [frozenset(b) for b in part], capacity)).feasible)
    assert sum(ema_bytes(pg, p) for p in pairs) < best  # so the unordered relaxation picks it
    for method in ("dp", "milp", "cpsat"):
        result = solve_partition(pg, capacity, method)
        assert result.status == "optimal" and result.objective == best, method
        assert evaluate(pg, result.blocks, capacity).feasible, method


def test_too_many_candidates_is_an_error_not_a_hang():
    pg = from_network("mobilenetv2")
    result = solve_partition(pg, 1024 * 1024, "dp", max_candidates=100)
    assert result.status == "error" and "more than 100 candidate subgraphs" in result.message
    assert result.blocks is None


@pytest.mark.slow  # the compact model and annealing on ResNet-50: about 40 s
def test_too_many_candidates_falls_back_to_the_compact_bound():
    method = "milp"  # cpsat takes the same path
    pg = from_network("resnet50")
    capacity = 512 * 1024
    optimum = solve_partition(pg, capacity, "dp").objective
    result = solve_partition(pg, capacity, method, time_limit=60, max_candidates=50)
    assert result.status == "feasible" and "compact model" in result.message
    assert result.best_bound <= optimum <= result.objective
    assert result.objective == evaluate(pg, result.blocks, capacity).ema_bytes
    assert result.best_bound > compulsory_ema(pg)  # the cuts raise it above the trivial bound


@pytest.mark.slow  # annealing on ResNet-50: about 30 s
def test_a_solver_that_finds_nothing_in_time_reports_the_best_heuristic(monkeypatch):
    from mapcert.formulations.partition import exact
    from mapcert.solvers.outcome import SolverOutcome

    pg = from_network("resnet50")
    capacity = 512 * 1024
    optimum = solve_partition(pg, capacity, "dp").objective
    nothing = SolverOutcome("milp", False, False, None, float(compulsory_ema(pg)), 1.0, None, "timeLimit")
    monkeypatch.setattr(exact, "_milp", lambda *args: nothing)
    result = solve_partition(pg, capacity, "milp")
    assert result.status == "feasible" and "heuristic" in result.message
    assert result.best_bound == compulsory_ema(pg) <= optimum <= result.objective


@settings(max_examples=40, deadline=None, derandomize=True)
@given(small_dags())
def test_compact_bound_never_exceeds_the_optimum(case):
    pg, capacity = case
    best = brute_force_best(pg, capacity)
    bound, converged = compact_lower_bound(pg, capacity, 30)
    assert converged
    if best is not None:
        assert bound <= best


def test_dp_stops_at_its_time_limit(monkeypatch):
    from mapcert.formulations.partition import exact

    pg = from_network("googlenet")
    monkeypatch.setattr(exact, "ENUMERATION_SHARE", 100.0)  # enumerate all, then run out of time in the DP
    result = solve_partition(pg, 512 * 1024, "dp", time_limit=0.5)
    assert result.status == "error" and "did not finish" in result.message


def test_enumeration_stops_at_its_share_of_the_time_limit():
    pg = from_network("googlenet")
    start = time.perf_counter()
    result = solve_partition(pg, 1024 * 1024, "dp", time_limit=0.5)
    assert result.status == "error" and "not all enumerated" in result.message
    assert time.perf_counter() - start < 5


def test_separate_buffers_bind_each_part():
    from mapcert.formulations.partition.cost import execution

    pg = from_network("vgg16")
    layer = frozenset(["conv5_1"])  # 2.25 MiB of weights
    capacity = SplitCapacity(activations=4 * 1024 * 1024, weights=256 * 1024)
    split = execution(pg, layer, capacity)
    assert split.weight_groups > 1 and split.weight_memory <= capacity.weights
    assert split.memory - split.weight_memory <= capacity.activations
    assert execution(pg, layer, capacity.total).weight_groups == 1  # one shared buffer holds them whole
