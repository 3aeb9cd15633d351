"""Partition heuristics: valid partitions, never better than the exact optimum."""

from __future__ import annotations

from hypothesis import given, settings

from mapcert.formulations.partition.cost import evaluate
from mapcert.formulations.partition.exact import solve_partition
from mapcert.formulations.partition.graph import from_network
from mapcert.solvers.partition_heuristics import PARTITION_HEURISTICS

from test_partition import small_dags


@settings(max_examples=25, deadline=None, derandomize=True)
@given(small_dags())
def test_heuristics_are_valid_and_never_beat_the_optimum(case):
    pg, capacity = case
    exact = solve_partition(pg, capacity, "dp")
    for name, heuristic in PARTITION_HEURISTICS.items():
        blocks = heuristic(pg, capacity)
        if exact.status == "infeasible":
            continue
        if blocks is None:
            # only when a single layer does not fit, which makes the exact problem infeasible too
            raise AssertionError(name)
        metrics = evaluate(pg, blocks, capacity)
        assert metrics.feasible, (name, metrics.violations)
        assert metrics.ema_bytes >= exact.objective, name


def test_heuristics_fuse_vgg16():
    pg = from_network("vgg16")
    capacity = 128 * 1024 * 1024
    single = evaluate(pg, [frozenset([v]) for v in pg.graph.nodes], capacity).ema_bytes
    optimum = solve_partition(pg, capacity, "dp").objective
    for name, heuristic in PARTITION_HEURISTICS.items():
        value = evaluate(pg, heuristic(pg, capacity), capacity).ema_bytes
        assert optimum <= value <= single, name


@settings(max_examples=25, deadline=None, derandomize=True)
@given(small_dags())
def test_coexploration_is_the_best_capacity_and_partition(case):
    from mapcert.formulations.partition.coexplore import coexplore, design_cost
    from mapcert.formulations.partition.brute_force import set_partitions

    pg, capacity = case
    capacities = [capacity // 4, capacity // 2, capacity, 2 * capacity]
    result = coexplore(pg, capacities, alpha=0.5)
    nodes = list(pg.graph.nodes)
    best = None
    for parts in set_partitions(nodes):
        blocks = [frozenset(p) for p in parts]
        for c in capacities:
            metrics = evaluate(pg, blocks, c)
            if metrics.feasible:
                cost = design_cost(c, metrics.ema_bytes, alpha=0.5)
                best = cost if best is None else min(best, cost)
    if best is None:
        assert result.status == "infeasible"
        return
    assert result.status == "optimal"
    assert result.cost == best
    assert evaluate(pg, result.blocks, result.capacity).feasible


def test_randwire_generator_is_seeded_and_consistent():
    import networkx as nx

    from mapcert import workload_library

    first = workload_library.randwire_layers(16, seed=3)
    assert first == workload_library.randwire_layers(16, seed=3)
    assert first != workload_library.randwire_layers(16, seed=4)
    graph = workload_library.graph_of_layers("rw", first)
    assert nx.is_directed_acyclic_graph(graph) and nx.is_weakly_connected(graph)
    assert sum(1 for _, d in graph.nodes(data=True) if d["op"] == "conv2d") == 16
    for node, data in graph.nodes(data=True):
        for producer in graph.predecessors(node):
            assert graph.nodes[producer]["dims"]["M"] == data["dims"]["C"]


def test_randwire_partition_exact_methods_agree():
    from mapcert import workload_library
    from mapcert.formulations.partition.graph import from_layers

    pg = from_layers("rw16", workload_library.randwire_layers(16, seed=1))
    capacity = 192 * 1024
    values = {m: solve_partition(pg, capacity, m, time_limit=60) for m in ("dp", "milp", "cpsat")}
    assert all(r.status == "optimal" for r in values.values())
    assert len({r.objective for r in values.values()}) == 1
    optimum = values["dp"].objective
    for name, heuristic in PARTITION_HEURISTICS.items():
        assert evaluate(pg, heuristic(pg, capacity), capacity).ema_bytes >= optimum, name


def test_coexploration_never_costs_more_than_a_fixed_buffer():
    from mapcert import workload_library
    from mapcert.formulations.partition.coexplore import coexplore, fixed_buffers
    from mapcert.formulations.partition.graph import from_layers

    pg = from_layers("rw16", workload_library.randwire_layers(16, seed=2))
    capacities = [k * 1024 for k in (128, 160, 192, 224)]
    best = coexplore(pg, capacities, alpha=0.02)
    baselines = fixed_buffers(pg, capacities, alpha=0.02)
    assert best.status == "optimal" and set(baselines) == {"small", "medium", "large"}
    assert all(best.cost <= point.cost for point in baselines.values())


@settings(max_examples=20, deadline=None, derandomize=True)
@given(small_dags())
def test_genetic_search_is_valid_and_never_beats_the_exact_co_exploration(case):
    from mapcert.formulations.partition.coexplore import coexplore, design_cost
    from mapcert.solvers.partition_genetic import genetic

    pg, capacity = case
    capacities = [capacity // 2, capacity, 2 * capacity]
    exact = coexplore(pg, capacities, alpha=0.5)
    found = genetic(pg, capacities, population=10, generations=10, alpha=0.5)
    if exact.status == "infeasible":
        assert found is None
        return
    blocks, chosen = found
    metrics = evaluate(pg, blocks, chosen)
    assert metrics.feasible, metrics.violations
    assert design_cost(chosen, metrics.ema_bytes, alpha=0.5) >= exact.cost


def test_genetic_search_is_seeded():
    from mapcert import workload_library
    from mapcert.formulations.partition.graph import from_layers
    from mapcert.solvers.partition_genetic import genetic

    pg = from_layers("rw16", workload_library.randwire_layers(16, seed=1))
    first = genetic(pg, [160 * 1024, 192 * 1024], population=8, generations=5, seed=7)
    assert first == genetic(pg, [160 * 1024, 192 * 1024], population=8, generations=5, seed=7)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(small_dags())
def test_local_search_keeps_partitions_valid_and_finds_the_optimum_of_a_region(case):
    """Merges, moves and exact re-partitions never make a partition worse
    or invalid, and the exact re-partition of the whole graph is never above
    the optimum (equal when its cover can be ordered)."""
    from mapcert.formulations.partition.cost import bound_fits, execution, quotient_is_acyclic
    from mapcert.solvers.partition_local_search import BlockCosts, _best_cover, improve, repartition

    pg, capacity = case
    exact = solve_partition(pg, capacity, "dp")
    if exact.status == "infeasible":
        return
    costs = BlockCosts(pg, lambda b: (lambda run: None if run is None else run.ema)(execution(pg, b, capacity)),
                       lambda b: bound_fits(pg, b, capacity))
    start = [frozenset([v]) for v in pg.order]
    before = evaluate(pg, start, capacity).ema_bytes
    better = repartition(pg, improve(pg, start, costs), costs, max_nodes=6, max_blocks=3)
    metrics = evaluate(pg, better, capacity)
    assert metrics.feasible, metrics.violations
    assert exact.objective <= metrics.ema_bytes <= before
    whole = frozenset(pg.graph.nodes)
    if len(whole) <= 10:
        value, blocks = _best_cover(pg, whole, costs)
        assert value <= exact.objective
        if quotient_is_acyclic(pg, blocks):
            assert value == exact.objective
