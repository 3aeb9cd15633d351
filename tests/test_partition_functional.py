"""The partition's functional model: every subgraph the exact methods may
pick runs in the buffers the cost model gives it, moves exactly the bytes
the cost model counts, and computes what the layers computed one after
another compute."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapcert.formulations.partition.cost import evaluate, execution, least_memory
from mapcert.formulations.partition.exact import candidates, solve_partition
from mapcert.formulations.partition.graph import from_layers, from_network
from mapcert.formulations.partition.schedule import row_schedule
from mapcert.hardware.functional.partition import BufferOverflow, run_partition


@st.composite
def small_networks(draw):
    """Layer dictionaries of small networks with consistent shapes: strided
    and padded convolutions, grouped ones, pools, adds and concatenations
    of equal shapes, a global pool and a final fully connected layer."""
    size = draw(st.integers(5, 12))
    channels = draw(st.integers(1, 3))
    layers = {"n0": {"op": "conv2d", "dims": {"N": 1, "M": 2, "C": channels, "P": size, "Q": size, "R": 3, "S": 3},
                     "inputs": ["input"]}}
    shapes = {"n0": (size, 2)}
    for i in range(1, draw(st.integers(2, 7))):
        name = f"n{i}"
        kind = draw(st.sampled_from(["conv", "conv", "conv", "pool", "join", "global"]))
        same = {}
        for u, shape in shapes.items():
            same.setdefault(shape, []).append(u)
        pairs = [us for us in same.values() if len(us) >= 2]
        if kind == "join" and pairs:
            us = draw(st.sampled_from(pairs))
            a, b = draw(st.lists(st.sampled_from(us), min_size=2, max_size=2, unique=True))
            rows, m = shapes[a]
            op = draw(st.sampled_from(["add", "concat"]))
            out = m if op == "add" else 2 * m
            layers[name] = {"op": op, "dims": {"N": 1, "M": out, "C": out, "P": rows, "Q": rows}, "inputs": [a, b]}
            shapes[name] = (rows, out)
            continue
        u = draw(st.sampled_from(sorted(shapes)))
        rows, c = shapes[u]
        if kind == "global":
            layers[name] = {"op": "pool", "dims": {"N": 1, "M": c, "C": c, "P": 1, "Q": 1, "R": rows, "S": rows},
                            "inputs": [u]}
            shapes[name] = (1, c)
            continue
        window = draw(st.sampled_from([1, 2, 3])) if rows > 1 else 1
        stride = draw(st.sampled_from([1, 2])) if rows > 2 else 1
        out_rows = (rows - 1) // stride + 1
        if kind == "pool":
            layers[name] = {"op": "pool", "dims": {"N": 1, "M": c, "C": c, "P": out_rows, "Q": out_rows, "R": window,
                                                   "S": window}, "stride": stride, "inputs": [u]}
            shapes[name] = (out_rows, c)
            continue
        groups = c if c > 1 and draw(st.booleans()) else 1
        m = groups * draw(st.integers(1, 2))
        layers[name] = {"op": "conv2d", "dims": {"N": 1, "M": m, "C": c, "P": out_rows, "Q": out_rows, "R": window,
                                                 "S": window}, "stride": stride, "groups": groups, "inputs": [u]}
        shapes[name] = (out_rows, m)
    sinks = [u for u in shapes if not any(u in raw.get("inputs", []) for raw in layers.values())]
    rows, c = shapes[sinks[-1]]
    layers["fc"] = {"op": "fc", "dims": {"N": 1, "M": 3, "C": rows * rows * c}, "inputs": [sinks[-1]]}
    return layers


@settings(max_examples=20, deadline=None, derandomize=True)
@given(small_networks())
def test_every_candidate_subgraph_runs_in_its_modelled_buffers(layers):
    pg = from_layers("random", layers)
    capacity = 10**9
    for candidate in candidates(pg, capacity):
        rest = [frozenset([v]) for v in pg.graph.nodes if v not in candidate.nodes]
        blocks = [candidate.nodes, *rest]
        if not evaluate(pg, blocks, capacity).feasible:
            continue  # the lone layers around it cannot be ordered
        run = run_partition(pg, blocks, capacity)
        assert not run.mismatched, (sorted(candidate.nodes), run.max_relative_error)
        assert run.counts_match, [(b.layers, b.counted_ema, b.model_ema) for b in run.blocks]
        assert run.counted_ema == evaluate(pg, blocks, capacity).ema_bytes
        assert all(b.peak_rows[k] <= b.held_rows[k] for b in run.blocks for k in b.held_rows)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(small_networks(), st.data())
def test_optimal_partitions_at_tight_capacities_pass(layers, data):
    """Small capacities make lone layers stream their weights in groups."""
    pg = from_layers("random", layers)
    smallest = max(least_memory(pg, frozenset([v])) for v in pg.graph.nodes)  # every lone layer fits
    roomy = max(execution(pg, frozenset([v]), 10**9).memory for v in pg.graph.nodes)  # none streams
    capacity = data.draw(st.integers(smallest, max(smallest, roomy)))
    result = solve_partition(pg, capacity, "dp")
    if result.status != "optimal":
        return
    run = run_partition(pg, result.blocks, capacity)
    assert run.passed, (run.mismatched, [(b.layers, b.counted_ema, b.model_ema) for b in run.blocks])
    assert run.counted_ema == result.objective


def test_strides_that_disagree_run_tensor_by_tensor():
    """Two paths from one tensor with different stride products meet: no
    rates fit both, so the subgraph holds whole tensors."""
    conv = {"op": "conv2d", "dims": {"N": 1, "M": 2, "C": 2, "P": 4, "Q": 4, "R": 3, "S": 3}, "stride": 2}
    layers = {
        "a": {"op": "conv2d", "dims": {"N": 1, "M": 2, "C": 1, "P": 8, "Q": 8, "R": 3, "S": 3}, "inputs": ["input"]},
        "b": dict(conv, inputs=["a"]),
        "pool_a": {"op": "pool", "dims": {"N": 1, "M": 2, "C": 2, "P": 1, "Q": 1, "R": 8, "S": 8}, "inputs": ["a"]},
        "pool_b": {"op": "pool", "dims": {"N": 1, "M": 2, "C": 2, "P": 1, "Q": 1, "R": 4, "S": 4}, "inputs": ["b"]},
        "sum": {"op": "add", "dims": {"N": 1, "M": 2, "C": 2, "P": 1, "Q": 1}, "inputs": ["pool_a", "pool_b"]},
    }
    pg = from_layers("disagree", layers)
    everything = frozenset(pg.graph.nodes)
    assert row_schedule(pg, everything).whole_tensors
    run = run_partition(pg, [everything], 10**9)
    assert run.passed and run.counted_ema == evaluate(pg, [everything], 10**9).ema_bytes


def test_a_buffer_one_row_short_stops_the_run(monkeypatch):
    """The check can fail: shrink the buffer of a skip connection by a row."""
    import mapcert.hardware.functional.partition as functional
    from mapcert.formulations.partition import schedule as schedule_module

    pg = from_network("resnet50")
    block = frozenset(["layer1.1.conv1", "layer1.1.conv2", "layer1.1.conv3", "layer1.1.add"])
    capacity = 10**9
    blocks = [block, *[frozenset([v]) for v in pg.graph.nodes if v not in block]]
    real = schedule_module.row_schedule

    def shrunk(pg_, nodes):
        s = real(pg_, nodes)
        if nodes != block:
            return s
        skip = s.buffers["layer1.0.add"]
        import dataclasses
        return dataclasses.replace(s, buffers={**s.buffers, skip.key: dataclasses.replace(skip, held=skip.held - 1)})

    monkeypatch.setattr(functional, "row_schedule", shrunk)
    with pytest.raises(BufferOverflow):
        run_partition(pg, blocks, capacity)


@pytest.mark.parametrize("network", ["resnet50", pytest.param("googlenet", marks=pytest.mark.slow),  # 11 s
                                     "mobilenetv2"])
def test_optimal_partitions_of_networks_pass(network):
    pg = from_network(network)
    capacity = 512 * 1024
    result = solve_partition(pg, capacity, "milp", time_limit=60)
    assert result.status == "optimal"
    run = run_partition(pg, result.blocks, capacity)
    assert run.passed and run.counted_ema == result.objective
    assert run.max_relative_error < 1e-4


def test_a_graph_of_sizes_only_is_not_run_and_says_why():
    import networkx as nx

    from mapcert.formulations import registry
    from mapcert.formulations.partition.graph import Node, PartitionGraph
    from mapcert.formulations.partition.problem import PartitionProblem, PartitionSolution

    graph = nx.DiGraph()
    graph.add_node("v0", index=0, node=Node("v0", 4, 10, 3, 1, 0, 0, 0))
    problem = PartitionProblem(PartitionGraph(graph), "sizes-only", (1000,), False, 0.002, 12.5, "dp", 10, 0, "test")
    run = registry.get("partition").functional(problem, PartitionSolution((frozenset(["v0"]),), 1000))
    assert not run.ran and "shape" in run.reason  # not run is not a failure; the result says why


def test_a_network_beyond_the_functional_models_limits_is_not_run():
    from mapcert.formulations.partition.graph import from_layers
    from mapcert.hardware.functional.partition import MAX_VALUES, size_refusal

    side = 4096
    layers = {"big": {"op": "conv2d", "dims": {"N": 1, "M": 16, "C": 16, "P": side, "Q": side, "R": 3, "S": 3},
                      "inputs": ["input"]}}
    pg = from_layers("big", layers)
    reason = size_refusal(pg)
    assert reason is not None and f"{MAX_VALUES:,}" in reason
    with pytest.raises(ValueError, match="limit"):
        run_partition(pg, [frozenset(["big"])], 10**12)
