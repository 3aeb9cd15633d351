"""Layer shapes of standard networks (workloads/*.yaml), addressable by name.

``vgg16.conv3_2`` names one layer; ``vgg16`` names the whole network.  Every
family reads shapes from here, so there is one source of layer shapes.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import networkx as nx
import yaml

COMPUTE_OPS = ("conv2d", "matmul", "fc")
"""Layers with weights; ``add``, ``concat`` and ``pool`` join or reduce
activations and have none."""


@lru_cache(maxsize=None)
def network(name: str) -> dict[str, dict]:
    """Layers of network ``name`` in execution order (KeyError if unknown)."""
    try:
        text = resources.files("mapcert").joinpath("workloads", f"{name}.yaml").read_text()
    except (FileNotFoundError, OSError) as exc:
        raise KeyError(name) from exc
    return yaml.safe_load(text)["layers"]


@lru_cache(maxsize=None)
def networks() -> tuple[str, ...]:
    folder = resources.files("mapcert").joinpath("workloads")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")))


def layer(qualified: str) -> dict:
    """Raw description of ``network.layer`` (KeyError with a hint if unknown)."""
    net, _, name = qualified.partition(".")
    if not name:
        raise KeyError(f"{qualified!r} names no layer; write network.layer, e.g. vgg16.conv3_2")
    if net not in networks():
        raise KeyError(f"unknown network {net!r}; known: {', '.join(networks())}")
    layers = network(net)
    if name not in layers:
        sample = ", ".join(list(layers)[:6])
        raise KeyError(f"network {net!r} has no layer {name!r}; its layers include {sample}, ...")
    return dict(layers[name], name=qualified)


def compute_layers(name: str) -> dict[str, dict]:
    """The layers of network ``name`` that have weights, in order."""
    return {k: v for k, v in network(name).items() if v.get("op") in COMPUTE_OPS}


def network_graph(name: str) -> nx.DiGraph:
    """The network as a DAG: one node per layer (its description as node
    data, in execution order as ``order``), an edge from every producer to
    its consumers.  A layer without ``inputs`` reads the layer before it;
    ``input`` names the network input (no node)."""
    return graph_of_layers(name, network(name))


def randwire_layers(nodes: int = 32, k: int = 4, p: float = 0.75, seed: int = 0, channels: int = 78,
                    size: int = 28) -> dict[str, dict]:
    """A RandWire-style network (Xie, Kirillov, Girshick, He, ICCV 2019).

    A Watts-Strogatz graph WS(nodes, k, p) is oriented from lower to higher
    node index, which makes it a DAG. Every node is a 3x3 convolution of
    ``channels`` channels on a ``size`` x ``size`` map. A node with several
    inputs first adds them (an ``add`` layer). Nodes without inputs read the
    network input, and the nodes without outputs are added into the output.
    Seeded: the same arguments give the same graph."""
    if nodes < 2 or not 2 <= k < nodes:
        raise ValueError("RandWire needs at least 2 nodes and 2 <= k < nodes")
    ws = nx.connected_watts_strogatz_graph(nodes, k, p, seed=seed)
    dag = nx.DiGraph((min(u, v), max(u, v)) for u, v in ws.edges)
    dag.add_nodes_from(range(nodes))
    conv = {"op": "conv2d", "dims": {"N": 1, "M": channels, "C": channels, "P": size, "Q": size, "R": 3, "S": 3}}
    plain = {"op": "add", "dims": {"N": 1, "M": channels, "C": channels, "P": size, "Q": size}}
    layers: dict[str, dict] = {}
    for v in range(nodes):
        preds = sorted(dag.predecessors(v))
        if not preds:
            source = ["input"]
        elif len(preds) == 1:
            source = [f"n{preds[0]}"]
        else:
            layers[f"n{v}.sum"] = dict(plain, inputs=[f"n{u}" for u in preds])
            source = [f"n{v}.sum"]
        layers[f"n{v}"] = dict(conv, inputs=source)
    sinks = [f"n{v}" for v in range(nodes) if dag.out_degree(v) == 0]
    if len(sinks) > 1:
        layers["output"] = dict(plain, inputs=sinks)
    return layers


def graph_of_layers(name: str, layers: dict[str, dict]) -> nx.DiGraph:
    """The DAG of a layer dictionary in the format of workloads/."""
    graph = nx.DiGraph(name=name)
    previous = None
    for index, (layer_name, raw) in enumerate(layers.items()):
        graph.add_node(layer_name, order=index, **raw)
        sources = raw.get("inputs", ["input"] if previous is None else [previous])
        for source in sources:
            if source == "input":
                continue
            if source not in graph:
                raise ValueError(f"{name}: layer {layer_name} reads {source!r}, which does not precede it")
            graph.add_edge(source, layer_name)
        previous = layer_name
    return graph
