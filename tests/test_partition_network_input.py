"""The network input in the partition family: one tensor, however many
layers read it. A subgraph that holds several of its readers reads it once,
the compulsory EMA counts it once, and readers that cannot share one image
(another batch, other channels) are refused, as is a batch that changes
along an edge."""

from __future__ import annotations

import pytest

import mapcert
from mapcert.formulations.family import Status
from mapcert.instances import InstanceError, load_text

TWO_READERS = """family: partition
workload:
  name: two_readers
  layers:
    a: {op: conv2d, dims: {M: 8, C: 3, P: 8, Q: 8, R: 3, S: 3}, inputs: [input]}
    b: {op: conv2d, dims: {M: 8, C: 3, P: READ, Q: READ, R: 1, S: 1}, inputs: [input]}
    c: {op: conv2d, dims: {M: 8, C: 8, P: 8, Q: 8, R: TAP, S: TAP}, inputs: [b]}
    d: {op: add, dims: {M: 8, C: 8, P: 8, Q: 8}, inputs: [a, c]}
    e: {op: conv2d, dims: {M: 4, C: 8, P: 8, Q: 8, R: 1, S: 1}, inputs: [d]}
buffer: 2 KiB
"""


@pytest.mark.parametrize(("read", "tap", "expected"), [
    # a reads 3 x 10 x 10 (a 3 x 3 window on 8 x 8 outputs); b reads the same 10 x 10 region
    (10, 3, 216 + 24 + 576 + 32 + 3 * 10 * 10 + 4 * 8 * 8),
    # b reads 8 x 8: the image is 8 x 8, which a pads by one on each side
    (8, 1, 216 + 24 + 64 + 32 + 3 * 8 * 8 + 4 * 8 * 8),
])
def test_a_subgraph_reads_the_network_input_once(read, tap, expected):
    problem = load_text(TWO_READERS.replace("READ", str(read)).replace("TAP", str(tap)), "two.yaml")
    result = mapcert.solve(problem)
    assert result.status == Status.OPTIMAL
    assert len(result.solution["subgraphs"]) == 1
    assert result.objective == expected and result.lower_bound == expected
    assert result.certificate.functional.ran and result.certificate.functional.passed


def test_readers_split_over_two_subgraphs_read_it_twice():
    """At a buffer too small to fuse them, each subgraph that reads the
    network input reads it (a tensor read by two subgraphs is read twice)."""
    from mapcert.formulations.partition.cost import ema_bytes

    problem = load_text(TWO_READERS.replace("READ", "10").replace("TAP", "3"), "two.yaml")
    pg = problem.graph
    together = ema_bytes(pg, frozenset("abcde"))
    apart = ema_bytes(pg, frozenset("a")) + ema_bytes(pg, frozenset("bcde"))
    assert apart - together == 3 * 10 * 10 + 2 * 8 * 8 * 8  # the input again, and a's map out and back


@pytest.mark.parametrize(("change", "message"), [
    ("b: {op: conv2d, dims: {M: 8, C: 4,", "they read it with different batch and channels (a: N=1, C=3, b: N=1, C=4)"),
    ("b: {op: conv2d, dims: {N: 2, M: 8, C: 3,", "must equal the batch of b (2), got 1"),  # on c, first
])
def test_readers_that_cannot_share_one_image_are_refused(change, message):
    text = TWO_READERS.replace("READ", "10").replace("TAP", "3").replace("b: {op: conv2d, dims: {M: 8, C: 3,", change)
    with pytest.raises(InstanceError) as caught:
        load_text(text, "two.yaml")
    assert message in str(caught.value.issues[0])


def test_a_batch_that_changes_along_an_edge_is_refused():
    text = TWO_READERS.replace("READ", "10").replace("TAP", "3").replace(
        "e: {op: conv2d, dims: {M: 4,", "e: {op: conv2d, dims: {N: 2, M: 4,")
    with pytest.raises(InstanceError) as caught:
        load_text(text, "two.yaml")
    assert "workload.layers.e.dims.N: must equal the batch of d (1), got 2" in str(caught.value.issues[0])


@pytest.mark.parametrize("stride", ["[2, 1]", "[1, 2]"])
def test_the_network_input_is_as_wide_as_the_horizontal_stride_makes_it(stride):
    """8 x 8 outputs of a 3 x 3 window: 17 rows and 10 columns at stride
    [2, 1], 10 rows and 17 columns at [1, 2]; 3 channels either way."""
    text = ("family: partition\nworkload:\n  name: st\n  layers:\n    a: {op: conv2d, dims: {M: 8, C: 3, P: 8, Q: 8, "
            f"R: 3, S: 3}}, stride: {stride}, inputs: [input]}}\nbuffer: 16 KiB\n")
    result = mapcert.solve(load_text(text, "st.yaml"))
    assert result.objective == 8 * 3 * 9 + 3 * 17 * 10 + 8 * 8 * 8
    assert result.certificate.functional.passed
