"""Analytical lower bounds on off-chip traffic (derivations in docs/bounds.md).

* ``compulsory``: every input element some MAC reads, every weight and every
  output crosses the chip boundary at least once.  Rigorous.
* ``hong_kung``: a red-blue pebble / Loomis-Whitney argument over segments of
  the execution, with the per-element sliding-window reuse ``Rmax``.  Rigorous
  for every schedule, whatever its tiling or order.
* ``read_segment``: a segment argument that counts reads and output
  creations only, in bits at each tensor's precision, with no tensor counted
  beyond its size (``read_segment.py``).  Rigorous for every schedule.
* ``capped_segment``: the read-segment argument with per-element MAC caps
  and exact per-segment maxima (``capped_segment.py``).  Rigorous for every
  schedule.
* ``room_segment``: for a buffer partitioned per tensor, the capped argument
  with each tensor's part as its room (``room_segment.py``).  Rigorous for
  every schedule on that buffer.
* ``seed``: the paper's asymptotic form 2*MACs/sqrt(Rw*S) + |O|; not rigorous
  for small or deep layers, so its ratio is reported, never asserted.

``rigorous`` is the largest of the rigorous bounds: a proved optimum below
it is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, sqrt

import numpy as np

from ..formulations.tiling.problem import TilingProblem
from .capped_segment import CappedInstance, capped_segment_bits
from .room_segment import RoomInstance, room_segment_cost
from .read_segment import SegmentInstance, read_segment_bits


@dataclass(frozen=True)
class Bound:
    name: str
    bytes: float
    rigorous: bool
    meaning: str

    def to_dict(self) -> dict:
        return {"bytes": self.bytes, "rigorous": self.rigorous, "meaning": self.meaning}


def word_bits(problem: TilingProblem) -> int:
    """The narrowest element: bounds count elements, and every element moved
    costs at least this many bits, every buffer slot holds at most one."""
    p = problem.layer.precision
    return min(p.inputs, p.weights, p.outputs, p.psums)


def buffer_words(problem: TilingProblem) -> int:
    """Elements the buffer can hold at most (all partitions together), at least 1."""
    bits = problem.buffer.capacity_bits
    if problem.buffer.partition_bits is not None:
        bits = sum(problem.buffer.partition_bits.values())
    return max(1, bits // word_bits(problem))


def compulsory_bytes(problem: TilingProblem) -> float:
    layer = problem.layer
    p = layer.precision
    bits = layer.input_elements_used * p.inputs + layer.weight_elements * p.weights + layer.output_elements * p.outputs
    return bits / 8


def hong_kung_words(macs: int, reuse_max: int, words: int) -> float:
    """max over segment lengths T of T * (ceil(macs / V(T)) - 1), where
    V(T) = sqrt(reuse_max) * ((2*words + T) / 3) ** 1.5 bounds the MACs one
    segment of T transfers can perform."""
    best = 0.0
    for x in np.linspace(0.05, 40.0, 800):
        t = max(1, int(x * words))
        per_segment = sqrt(reuse_max) * ((2 * words + t) / 3) ** 1.5
        best = max(best, t * (ceil(macs / per_segment) - 1))
    return best


def segment_instance(problem: TilingProblem) -> SegmentInstance:
    """The layer and buffer as the read-segment bound sees them: the whole
    capacity in bits (a partitioned buffer holds no more than its parts)."""
    bits = problem.buffer.capacity_bits
    if problem.buffer.partition_bits is not None:
        bits = sum(problem.buffer.partition_bits.values())
    return layer_segment_instance(problem.layer, bits)


def layer_segment_instance(layer, capacity_bits: int) -> SegmentInstance:
    """A layer on one on-chip memory of ``capacity_bits``, as the read-segment bound sees it."""
    p = layer.precision
    return SegmentInstance(
        macs=layer.macs, reuse_max=layer.reuse_max(), inputs=layer.input_elements_used,
        weights=layer.weight_elements, outputs=layer.output_elements, input_bits=p.inputs,
        weight_bits=p.weights, psum_bits=p.psums, output_bits=p.outputs, capacity_bits=capacity_bits,
    )


def capped_instance(problem: TilingProblem) -> CappedInstance:
    """The layer and buffer as the capped read-segment bound sees them."""
    return layer_capped_instance(problem.layer, segment_instance(problem).capacity_bits)


def layer_capped_instance(layer, capacity_bits: int) -> CappedInstance:
    """The read-segment view plus the most MACs one element of each tensor takes part in."""
    seg = layer_segment_instance(layer, capacity_bits)
    return CappedInstance(
        **{f: getattr(seg, f) for f in SegmentInstance.__dataclass_fields__},
        input_cap=layer.reuse_max() * (layer.M // layer.groups),
        weight_cap=layer.N * layer.P * layer.Q,
        output_cap=(layer.C // layer.groups) * layer.R * layer.S,
    )


def seed_words(macs: int, reuse_avg: float, words: int, outputs: int) -> float:
    return 2 * macs / sqrt(reuse_avg * words) + outputs


def tiling_bounds(problem: TilingProblem) -> dict[str, Bound]:
    layer = problem.layer
    wb = word_bits(problem) / 8
    words = buffer_words(problem)
    compulsory = Bound(
        "compulsory", compulsory_bytes(problem), True,
        "each used input, weight and output crosses once",
    )
    hk = Bound(
        "hong_kung", hong_kung_words(layer.macs, layer.reuse_max(), words) * wb, True,
        f"segment argument, S={words} words, Rmax={layer.reuse_max()}",
    )
    reads = Bound(
        "read_segment", read_segment_bits(segment_instance(problem)) / 8, True,
        "segment argument over reads and output creations, per-tensor precisions and sizes",
    )
    capped = Bound(
        "capped_segment", capped_segment_bits(capped_instance(problem)) / 8, True,
        "read-segment argument with per-element MAC caps, exact per-segment maxima",
    )
    seed = Bound(
        "seed", seed_words(layer.macs, layer.reuse_average(), words, layer.output_elements) * wb, False,
        f"paper's asymptotic 2N/sqrt(Rw*S)+|O|, Rw={layer.reuse_average():g}: an estimate, not a bound (it may "
        "exceed the optimum)",
    )
    bounds = {"compulsory": compulsory, "hong_kung": hk, "read_segment": reads, "capped_segment": capped}
    if problem.buffer.partition_bits is not None:  # each tensor in its own part: the room segment bound
        bounds["room_segment"] = Bound(
            "room_segment", room_segment_cost(partitioned_room_instance(problem)) / 8, True,
            "capped segment argument with each tensor's part of the buffer as its room, spills of partial "
            "sums counted")
    bounds["seed"] = seed
    rigorous = max((b for b in bounds.values() if b.rigorous), key=lambda b: b.bytes)
    bounds["rigorous"] = Bound("rigorous", rigorous.bytes, True, f"larger rigorous bound: {rigorous.name}")
    return bounds


def partitioned_room_instance(problem: TilingProblem) -> RoomInstance:
    """A partitioned buffer as the room segment bound sees it: each tensor's
    part holds that many of its elements (outputs as partial sums), and the
    events weigh their bits (a partial sum read back: its read and the
    write that spilled it)."""
    p, parts = problem.layer.precision, problem.buffer.partition_bits
    rooms = (parts.get("inputs", 0) // p.inputs, parts.get("weights", 0) // p.weights, parts.get("outputs", 0) // p.psums)
    return RoomInstance.from_capped(capped_instance(problem), rooms, (p.inputs, p.weights, 2 * p.psums, p.outputs))
