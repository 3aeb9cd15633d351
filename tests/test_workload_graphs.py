"""Network graphs: acyclic, every layer's input shape agrees with what its
producers deliver, and the tiling family reads the same shapes."""

from __future__ import annotations

import networkx as nx
import pytest

from mapcert import workload_library
from mapcert.instances import InstanceError, load_text

GRAPH_NETWORKS = ["vgg16", "resnet50", "mobilenetv2", "googlenet"]


def stride_of(layer: dict) -> int:
    stride = layer.get("stride", 1)
    return stride if isinstance(stride, int) else stride[0]


@pytest.mark.parametrize("name", GRAPH_NETWORKS)
def test_network_graphs_are_consistent_dags(name):
    graph = workload_library.network_graph(name)
    assert nx.is_directed_acyclic_graph(graph)
    assert nx.is_weakly_connected(graph)
    for node, layer in graph.nodes(data=True):
        producers = [graph.nodes[p] for p in graph.predecessors(node)]
        if not producers or layer["op"] == "fc":
            continue
        channels = [p["dims"]["M"] for p in producers]
        if layer["op"] == "concat":
            assert sum(channels) == layer["dims"]["C"], node
        else:
            assert all(c == layer["dims"]["C"] for c in channels), (node, channels)
        for p in producers:
            # padded windows: the output size is the producer's divided by the stride
            expected = -(-p["dims"]["P"] // stride_of(layer))
            assert layer["dims"]["P"] == expected, (node, p["dims"]["P"], layer["dims"]["P"])


def test_resnet50_graph_has_the_72_nodes_of_the_literature():
    graph = workload_library.network_graph("resnet50")
    assert graph.number_of_nodes() == 72
    assert sum(1 for _, d in graph.nodes(data=True) if d["op"] == "add") == 16


def test_weightless_layers_are_refused_by_the_tiling_family():
    with pytest.raises(InstanceError, match="pool layer without weights"):
        load_text("family: tiling\nworkload: vgg16.pool1\nhardware: glb-64KiB\n")
    problem = load_text("family: tiling\nworkload: resnet50.layer1.0.conv2\nhardware: glb-64KiB\n")
    assert problem.layer.C == 64 and problem.layer.R == 3


@pytest.mark.parametrize("name", GRAPH_NETWORKS)
def test_the_partition_family_reads_the_same_graphs(name):
    problem = load_text(f"family: partition\nworkload: {name}\nbuffer: 512 KiB\n")
    graph = workload_library.network_graph(name)
    assert set(problem.graph.order) == set(graph.nodes)
    assert set(problem.graph.graph.edges) == set(graph.edges)
    assert problem.graph.order == list(nx.lexicographical_topological_sort(graph, key=list(graph.nodes).index))
