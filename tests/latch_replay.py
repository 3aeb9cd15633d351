"""Replays schedules of a small layer on MAC units with one-word operand
latches, fed by one buffer through a network that multicasts and reduces
across every unit: the machine model of the operand-latch bounds
(docs/tiling-multilevel.md, "Bounds"), not our mapping space.

A schedule is a list of steps, each a dict from unit to the MAC it
performs (units may idle). Before a step, every active unit whose input
(weight) latch holds another element receives it; all units receiving the
same element at that moment share one read. A unit whose output latch
holds another output drains its partial sum; all units draining the same
output at that moment share one write, the network adding them. Each
later write of an output's partial sum merges into the stored one with
one read-back. At the end every latch drains.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from mapcert.formulations.tiling.problem import ConvLayer


def layer_macs(layer: ConvLayer) -> list[tuple[tuple, tuple, tuple]]:
    """Every MAC of ``layer`` (one group, stride and dilation 1) as
    ``(input, weight, output)`` element ids."""
    assert layer.groups == 1 and layer.stride == (1, 1) and layer.dilation == (1, 1)
    out = []
    for n, m, c, p, q, r, s in itertools.product(range(layer.N), range(layer.M), range(layer.C), range(layer.P),
                                                 range(layer.Q), range(layer.R), range(layer.S)):
        out.append(((n, c, p + r, q + s), (m, c, r, s), (n, m, p, q)))
    return out


@dataclass
class Replay:
    """Events of one schedule: shared reads of each tensor, shared drains,
    merge read-backs, and the gaps between consecutive MACs of a unit by
    the latches they change."""

    reads: dict[str, int] = field(default_factory=lambda: {"I": 0, "W": 0})
    drains: int = 0
    merges: int = 0
    gaps: dict[str, int] = field(default_factory=lambda: {"IO": 0, "IW": 0, "WO": 0, "IWO": 0})
    fresh: dict[str, int] = field(default_factory=lambda: {"IO": 0, "WO": 0, "any": 0})
    """MACs whose own input (weight) arrived in the gap before them and whose
    output drains in the gap after them; ``any``: with two such events of
    different tensors."""

    def energy(self, access: float, merge: float) -> float:
        return access * (self.reads["I"] + self.reads["W"] + self.drains) + merge * self.merges


def replay(steps: list[dict[int, tuple]]) -> Replay:
    """Count the events of ``steps`` (see the module docstring)."""
    out = Replay()
    latch: dict[int, list] = {}
    last: dict[int, tuple] = {}
    stored: set = set()
    sequence: dict[int, list[str]] = {}

    def drain(outputs: set) -> None:
        out.drains += len(outputs)
        out.merges += len(outputs & stored)
        stored.update(outputs)

    for step in steps:
        wanted = {"I": set(), "W": set()}
        drained = set()
        for unit, (i, w, o) in step.items():
            held = latch.setdefault(unit, [None, None, None])
            if held[0] != i:
                wanted["I"].add(i)
            if held[1] != w:
                wanted["W"].add(w)
            if held[2] != o:
                if held[2] is not None:
                    drained.add(held[2])
            if unit in last:
                before = last[unit]
                kind = "".join(t for t, a, b in zip("IWO", before, (i, w, o)) if a != b)
                assert len(kind) >= 2, "two MACs share two operands: the schedule repeats a MAC"
                out.gaps[kind] += 1
                sequence.setdefault(unit, []).append(kind)
            held[:] = [i, w, o]
            last[unit] = (i, w, o)
        for t in "IW":
            out.reads[t] += len(wanted[t])
        drain(drained)
    drain({held[2] for held in latch.values() if held[2] is not None})
    for kinds in sequence.values():
        count_fresh(out, kinds)
    return out


def count_fresh(out: Replay, kinds: list[str]) -> None:
    """Add one unit's fresh MACs; ``kinds`` are its gaps in order (before its
    first MAC every latch is filled, after its last the output drains)."""
    before = ["IWO"] + kinds
    after = kinds + ["O"]
    for gap_before, gap_after in zip(before, after):
        i, w, o = "I" in gap_before, "W" in gap_before, "O" in gap_after
        out.fresh["IO"] += i and o
        out.fresh["WO"] += w and o
        out.fresh["any"] += (i and w) or ((i or w) and o)


def check_once(steps: list[dict[int, tuple]], macs: list) -> None:
    """Every MAC exactly once."""
    done = [mac for step in steps for mac in step.values()]
    assert sorted(done) == sorted(macs)


# -- schedules --------------------------------------------------------------

def random_schedule(macs: list, units: int, rnd: random.Random, idle: float) -> list[dict[int, tuple]]:
    """The MACs in a random order, dealt to random units, each unit idling
    at a step with probability ``idle``."""
    queues = [[] for _ in range(units)]
    for mac in rnd.sample(macs, len(macs)):
        queues[rnd.randrange(units)].append(mac)
    return _run(queues, rnd, idle)


def sorted_schedule(macs: list, units: int, rnd: random.Random, idle: float) -> list[dict[int, tuple]]:
    """Lockstep loop nests: the MACs sorted by a random order of the seven
    loops, dealt round-robin (the units split the innermost loops), with
    random idling that staggers the units."""
    order = rnd.sample(range(7), 7)

    def key(mac):
        (n, c, h, w_), (m, _c, r, s), (_n, _m, p, q) = mac
        index = (n, m, c, p, q, r, s)
        return tuple(index[k] for k in order)

    ordered = sorted(macs, key=key)
    queues = [ordered[u::units] for u in range(units)]
    return _run(queues, rnd, idle)


def weight_stationary_schedule(macs: list, units: int, rnd: random.Random, idle: float) -> list[dict[int, tuple]]:
    """Each unit keeps one weight as long as it can, so that nearly every
    gap changes only its input and output latches: the gaps the paired
    bound is about."""
    by_weight: dict[tuple, list] = {}
    for mac in macs:
        by_weight.setdefault(mac[1], []).append(mac)
    weights = list(by_weight)
    rnd.shuffle(weights)
    queues = [[] for _ in range(units)]
    for k, weight in enumerate(weights):
        group = by_weight[weight]
        rnd.shuffle(group) if rnd.random() < 0.5 else group.sort(key=lambda mac: mac[2])
        queues[k % units].extend(group)
    return _run(queues, rnd, idle)


def grid_schedule(macs: list, units: int, rnd: random.Random, idle: float) -> list[dict[int, tuple]]:
    """A weight-stationary array: units in an ``a x b`` grid, output
    channels along ``a`` and input channels along ``b``, all of them
    sweeping the same output pixel in lockstep, so that one input read
    feeds a column and one drain adds up a row."""
    a = 1 << ((units.bit_length() - 1) // 2)
    b = units // a

    def key(mac):
        (n, c, _h, _w), (m, _c, r, s), (_n, _m, p, q) = mac
        return (n, m // a, c // b, r, s, p, q)

    queues = [[] for _ in range(units)]
    for mac in sorted(macs, key=key):
        (_n, c, _h, _w), (m, _c, _r, _s), _o = mac
        queues[(m % a) * b + c % b].append(mac)
    return _run(queues, rnd, idle)


def _run(queues: list[list], rnd: random.Random, idle: float) -> list[dict[int, tuple]]:
    steps, heads = [], [0] * len(queues)
    while any(head < len(q) for head, q in zip(heads, queues)):
        step = {}
        for unit, queue in enumerate(queues):
            if heads[unit] < len(queue) and rnd.random() >= idle:
                step[unit] = queue[heads[unit]]
                heads[unit] += 1
        if step:
            steps.append(step)
    return steps


SCHEDULES = (random_schedule, sorted_schedule, weight_stationary_schedule, grid_schedule)
