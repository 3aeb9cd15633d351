"""The partition picture (``plots.plot_partition``): every layer is named,
the legend lists each subgraph once, and neighbouring subgraphs get clearly
different colours."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from mapcert import plots
from mapcert.formulations.partition.graph import from_layers
from mapcert.formulations.partition.problem import execution_order


def conv(*inputs, m=4):
    return {"op": "conv2d", "dims": {"M": m, "C": 4, "P": 8, "Q": 8, "R": 3, "S": 3}, "inputs": list(inputs)}


def add(*inputs):
    return {"op": "add", "dims": {"M": 4, "C": 4, "P": 8, "Q": 8}, "inputs": list(inputs)}


LAYERS = {  # a stem and two residual blocks, one with a downsampling branch
    "conv1": conv("input"),
    "layer1.0.conv1": conv("conv1"),
    "layer1.0.conv2": conv("layer1.0.conv1"),
    "layer1.0.downsample": conv("conv1"),
    "layer1.0.add": add("layer1.0.conv2", "layer1.0.downsample"),
    "layer1.1.conv1": conv("layer1.0.add"),
    "layer1.1.conv2": conv("layer1.1.conv1"),
    "layer1.1.add": add("layer1.1.conv2", "layer1.0.add"),
    "fc": {"op": "fc", "dims": {"M": 3, "C": 256}, "inputs": ["layer1.1.add"]},
}
BLOCKS = [frozenset({"conv1"}), frozenset({"layer1.0.conv1", "layer1.0.conv2"}),
          frozenset({"layer1.0.downsample", "layer1.0.add"}), frozenset({"layer1.1.conv1"}),
          frozenset({"layer1.1.conv2", "layer1.1.add", "fc"})]


@pytest.fixture
def graph():
    return from_layers("tiny-resnet", LAYERS)


def unlike(a: int, b: int) -> bool:
    palette, hues = plots.PARTITION_PALETTE, plots.PARTITION_HUES
    return (hues[a] != hues[b]
            and math.dist(plots._lab(palette[a]), plots._lab(palette[b])) >= plots.CLOSE_COLOURS)


def test_every_layer_named_and_every_subgraph_in_the_legend(graph):
    fig = plots.draw_partition(graph, BLOCKS, "tiny")
    try:
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        for layer in LAYERS:
            assert layer in texts, layer
        entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert len(entries) == len(BLOCKS)
        assert entries[0] == "S1: conv1 (1 layer)"
        assert "S2: layer1.0.conv1 \u2013 layer1.0.conv2 (2 layers)" in entries
        assert "S5: layer1.1.conv2 \u2013 fc (3 layers)" in entries
        # each layer carries the number of its subgraph, in execution order
        ordered = execution_order(graph, BLOCKS)
        for k, layers in enumerate(ordered, start=1):
            assert texts.count(str(k)) == len(layers)
    finally:
        plt.close(fig)


def test_neighbouring_subgraphs_get_clearly_different_colours(graph):
    ordered = execution_order(graph, BLOCKS)
    neighbours = plots.subgraph_neighbours(graph, ordered)
    # one after the other, and joined by a tensor (conv1 feeds the downsampling branch)
    assert {(0, 1), (1, 2), (2, 3), (3, 4), (0, 2), (2, 4)} <= neighbours
    colours = plots.subgraph_colours(len(ordered), neighbours)
    assert all(unlike(colours[i], colours[j]) for i, j in neighbours)

    # a long chain with skips: neighbours always differ and the whole palette is used
    count = 60
    pairs = {(i, i + 1) for i in range(count - 1)} | {(i, i + 3) for i in range(0, count - 3, 2)}
    colours = plots.subgraph_colours(count, pairs)
    assert all(unlike(colours[i], colours[j]) for i, j in pairs)
    assert len(set(colours)) == len(plots.PARTITION_PALETTE)


def test_colours_differ_even_when_every_hue_is_taken():
    star = {(0, j) for j in range(1, 25)} | {(j, j + 1) for j in range(1, 24)}
    colours = plots.subgraph_colours(25, star)
    assert all(colours[i] != colours[j] for i, j in star)


def test_long_names_are_shortened_and_the_legend_capped(graph, monkeypatch):
    name = "inception4e.double_3x3_reduce_branch"
    short = plots.short_name(name)
    assert len(short) == plots.NAME_LIMIT and short.endswith("reduce_branch") and short.startswith("incep")
    assert plots.short_name("layer3.1.conv2") == "layer3.1.conv2"
    monkeypatch.setattr(plots, "LEGEND_LIMIT", 3)
    fig = plots.draw_partition(graph, BLOCKS, "tiny")
    try:
        entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert len(entries) == 3 and entries[-1].startswith("\u2026 and 3 more subgraphs")
    finally:
        plt.close(fig)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_plot_partition_writes_each_format(graph, tmp_path, suffix, magic):
    picture = tmp_path / f"partition{suffix}"
    plots.plot_partition(graph, BLOCKS, picture, "tiny")
    assert picture.read_bytes().startswith(magic)
