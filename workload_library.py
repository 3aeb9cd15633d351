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
    graph = nx.DiGraph(name=name)
    previous = None
    for index, (layer_name, raw) in enumerate(network(name).items()):
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
