"""Functional model of a memory hierarchy with a PE array.

It runs a multi-level mapping one MAC cycle at a time, on random integers.
All PEs step through the same temporal loops together; each PE works on its
own spatial slice. Every level instance keeps one tile per tensor it holds,
as a dictionary from words to values, and knows which tile that is.

When a MAC needs a word that its level does not hold, the level is filled,
after its parent has been filled if the parent lacks it too. Without
operand latches (``latches: false``) a MAC unit keeps nothing between
cycles: its partial sum is drained after every MAC and its operands are
fetched anew.

- A level has one instance per point of the fan-outs above it. A parent
  that fills several instances in the same cycle reads each distinct word
  once (multicast), except across fan-outs that cannot multicast, whose
  instances each get their own copy.
- Output tiles are drained before a new tile is filled: bottom-up, with the
  partial sums of instances that share a word added on the way (reduction);
  across fan-outs that cannot reduce, each group writes its own partial
  sums and the parent adds them.
- A tile visited before is filled with its partial sums; a first visit
  starts from zero.
- The factors of a dimension may multiply to more than its extent (a
  mapping with partial last tiles). The loops then run over a nominal grid
  that is clipped to the layer: a MAC unit whose index lies outside the
  layer in some dimension is idle that cycle (no MAC, no fill, no drain), a
  tile holds only the words of its range that lie inside the layer, and a
  cycle in which every unit is idle is skipped. A tile stays resident while
  the units that need it are idle, so the fills follow the keys the active
  units ask for, not the static loop nest. An output tile that leaves takes
  along the output tiles held below it, those of idle units included: their
  partial sums belong to it, so they are drained into it first.

Reads and writes are counted per level and tensor by watching these
transfers. They never come from the cost model's formulas, so comparing
them with ``evaluate_multilevel`` tests that model. The final outputs are
compared with a direct convolution. This is meant for small layers: the
model is a Python loop over cycles and PEs.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from ...formulations.tiling.multilevel.problem import (DIMS, RELEVANT, MultiLevelMapping, MultiLevelProblem,
                                                       kept_problem, layer_extent)
from .tiling import random_operands, reference_conv

TENSORS = ("inputs", "weights", "outputs")


@dataclass
class MultiLevelReport:
    outputs_match: bool
    reads: list[dict[str, int]]
    writes: list[dict[str, int]]
    cycles: int
    max_abs_error: float
    wall_time_s: float


def run_multilevel(problem: MultiLevelProblem, mapping: MultiLevelMapping, seed: int = 0,
                   max_steps: int = 2_000_000) -> MultiLevelReport:
    problem = kept_problem(problem, mapping)
    layer, hier = problem.layer, problem.hierarchy
    start = time.perf_counter()
    K = len(hier.levels)
    inputs, weights = random_operands(layer, seed)
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    size = {d: layer_extent(layer, d) for d in DIMS}  # the layer; the loops may run past it

    # tile extents per level (K = the MAC), as in the mapping's definition
    fans = hier.fanouts
    spread = [{d: mapping.fanout(f).factor(d) for d in DIMS} for f in range(len(fans))]
    T = [dict.fromkeys(DIMS, 1) for _ in range(K + 1)]
    for l in range(K - 1, -1, -1):
        T[l] = {d: mapping.factor(l, d) * T[l + 1][d] for d in DIMS}
        for f, fan in enumerate(fans):
            if fan.level == l + 1:
                T[l] = {d: T[l][d] * spread[f][d] for d in DIMS}

    # temporal loops, outermost first: (dim, trips, stride); spatial slices per MAC unit
    loops, loop_level = [], []
    for l in range(K):
        for d in mapping.levels[l].order:
            f = mapping.factor(l, d)
            if f > 1:
                loops.append((d, f, T[l][d] // f))
                loop_level.append(l)
    # halo reuse: per level, the position of its sweep loop (the innermost loop above it that
    # indexes the inputs) when that loop moves the input window (P, Q, R or S)
    sweep = {}
    if problem.halo:
        for l in (j for j in range(1, K + 1) if not hier.fetches_every_trip(j)):  # no latches: nothing to reuse
            above = [i for i, (d, _, _) in enumerate(loops) if loop_level[i] < l and d in RELEVANT["inputs"]]
            if above and loops[above[-1]][0] in ("P", "Q", "R", "S"):
                sweep[l] = above[-1]
    filled_at: dict[tuple, tuple] = {}  # (level, instance) -> loop counters of its last input fill
    # a MAC unit is one instance of every fan-out: (its index on each fan-out, its offset)
    per_fanout = [list(itertools.product(*(range(spread[f][d]) for d in DIMS))) for f in range(len(fans))]
    units = []
    for choice in itertools.product(*(range(len(options)) for options in per_fanout)):
        offset = dict.fromkeys(DIMS, 0)
        for f, j in enumerate(choice):
            for d, i in zip(DIMS, per_fanout[f][j], strict=True):
                offset[d] += i * T[fans[f].level][d]
        units.append((choice, offset))
    pe_offsets = [offset for _, offset in units]
    n_pe = len(pe_offsets)
    steps = int(np.prod([f for _, f, _ in loops])) if loops else 1
    if steps * n_pe > max_steps:
        raise ValueError(f"{steps * n_pe:,} MAC steps; the functional model stops at {max_steps:,}")

    def words(tensor: str, level: int, index: dict[str, int]) -> list[tuple]:
        """All words of the tile of ``level`` that contains ``index``, its
        range cut to the layer along every dimension."""
        span = {}
        for d in DIMS:
            origin = index[d] // T[level][d] * T[level][d]
            span[d] = range(origin, min(origin + T[level][d], size[d]))
        if tensor == "weights":
            return list(itertools.product(span["G"], span["M"], span["C"], span["R"], span["S"]))
        if tensor == "outputs":
            return list(itertools.product(span["N"], span["G"], span["M"], span["P"], span["Q"]))
        rows = sorted({p * sh + r * dh for p in span["P"] for r in span["R"]})
        cols = sorted({q * sw + t * dw for q in span["Q"] for t in span["S"]})
        return list(itertools.product(span["N"], span["G"], span["C"], rows, cols))

    def key(tensor: str, level: int, index: dict[str, int]) -> tuple:
        return tuple(index[d] // T[level][d] for d in DIMS if d in RELEVANT[tensor])

    def instance(level: int, p: int) -> tuple:
        """The instance of ``level`` that serves MAC unit ``p``: its indices on the fan-outs above."""
        return tuple(units[p][0][f] for f in hier.fanouts_above(level))

    def copy_of(parent: int, level: int, tensor: str, p: int) -> tuple:
        """Which copy of a transfer between ``parent`` and ``level`` unit ``p``
        takes: fan-outs that cannot share ``tensor`` keep their instances apart."""
        return tuple(units[p][0][f] for f in hier.fanouts_between(parent, level) if not fans[f].shares(tensor))

    # storage: store[level][instance][tensor] = (key, {word: value}); DRAM keyed by None
    store = [dict() for _ in range(K + 1)]
    for l in range(K + 1):
        for p in range(n_pe):
            store[l].setdefault(instance(l, p), {})
    dram_out: dict[tuple, float] = {}
    visited = [{i: set() for i in store[l]} for l in range(K + 1)]  # output tiles seen
    reads = [dict.fromkeys(TENSORS, 0) for _ in range(K)]
    writes = [dict.fromkeys(TENSORS, 0) for _ in range(K)]

    def dram_value(tensor: str, word: tuple) -> float:
        if tensor == "inputs":
            return inputs[word]
        if tensor == "weights":
            return weights[word]
        return dram_out.get(word, 0.0)

    levels_of = {t: [l for l in range(1, K) if t in hier.levels[l].holds] + [K] for t in TENSORS}

    def parent_of(level: int, tensor: str) -> int:
        return hier.holder_above(level, tensor)

    def drain(l: int, a: int, leaving: list[int]) -> None:
        """Drain the output tiles of the instances of ``l`` that serve units
        ``leaving`` into ``a``: summed across instances that meet in one
        reduction network (one write per word and group), each group written
        separately across fan-outs that cannot reduce (the parent adds them)."""
        groups: dict[tuple, dict[tuple, float]] = {}
        for p in leaving:
            slot = store[l][instance(l, p)]
            if "outputs" not in slot:
                continue  # drained for another unit of the same instance
            held = slot.pop("outputs")
            if l < K:
                reads[l]["outputs"] += len(held[1])
            into = groups.setdefault((instance(a, p), copy_of(a, l, "outputs", p)), {})
            for word, value in held[1].items():
                into[word] = into.get(word, 0.0) + value
        totals: dict[tuple, dict[tuple, float]] = {}
        for (target, _), drained in groups.items():
            writes[a]["outputs"] += len(drained)
            total = totals.setdefault(target, {})
            for word, value in drained.items():
                total[word] = total.get(word, 0.0) + value
        for target, total in totals.items():
            for word, value in total.items():
                if a == 0:
                    dram_out[word] = value
                else:
                    store[a][target]["outputs"][1][word] = value

    cycles = 0
    for step in range(steps):
        # decode the temporal index of this cycle
        base = dict.fromkeys(DIMS, 0)
        rest = step
        counters = [0] * len(loops)
        for i in range(len(loops) - 1, -1, -1):
            d, f, stride = loops[i]
            counters[i] = rest % f
            base[d] += counters[i] * stride
            rest //= f
        # the active units and their indices; a unit outside the layer in some dimension is idle
        needs = {}
        for p, off in enumerate(pe_offsets):
            index = {d: base[d] + off[d] for d in DIMS}
            if all(index[d] < size[d] for d in DIMS):
                needs[p] = index
        if not needs:
            continue  # every unit is idle: no cycle
        cycles += 1

        # drain output tiles that change, innermost first: a tile leaves when an
        # active unit needs another one, and it takes along the tiles below it
        # (those of idle units too), whose partial sums belong to it
        leaving: dict[int, set[tuple]] = {0: set()}  # per level, the instances whose output tile leaves
        for l in levels_of["outputs"]:
            a = parent_of(l, "outputs")
            leaving[l] = set()
            for p in range(n_pe):
                held = store[l][instance(l, p)].get("outputs")
                if held is not None and (instance(a, p) in leaving[a] or hier.fetches_every_trip(l)
                                         or (p in needs and held[0] != key("outputs", l, needs[p]))):
                    leaving[l].add(instance(l, p))
        for l in reversed(levels_of["outputs"]):
            drain(l, parent_of(l, "outputs"), [p for p in range(n_pe) if instance(l, p) in leaving[l]])

        # fill what is missing, outermost first
        for tensor in TENSORS:
            for l in levels_of[tensor]:
                a = parent_of(l, tensor)
                served: set[tuple] = set()  # (parent instance, copy, word) read this cycle
                received: set[tuple] = set()  # (parent instance, word) whose partial sum went out
                for p, index in needs.items():
                    i = instance(l, p)
                    k = key(tensor, l, index)
                    held = store[l][i].get(tensor)
                    if held is not None and held[0] == k and not hier.fetches_every_trip(l):
                        continue  # resident, or already filled for another unit of this instance
                    tile = words(tensor, l, index)
                    content = {}
                    if tensor == "inputs" and l in sweep:
                        at, previous = sweep[l], filled_at.get((l, i))
                        filled_at[l, i] = tuple(counters)
                        if (held is not None and previous is not None and previous[:at] == tuple(counters[:at])
                                and counters[at] == previous[at] + 1):
                            # a step of the sweep: the rows both tiles hold stay, only the new ones come
                            content = {w: held[1][w] for w in tile if w in held[1]}
                            tile = [w for w in tile if w not in content]
                    fresh = tensor == "outputs" and k not in visited[l][i]
                    if tensor == "outputs":
                        visited[l][i].add(k)
                    parent_store = store[a][instance(a, p)] if a > 0 else None
                    for word in tile:
                        if tensor == "outputs" and fresh:
                            content[word] = 0.0
                            continue
                        value = dram_value(tensor, word) if a == 0 else parent_store[tensor][1][word]
                        if tensor == "outputs":
                            first_receiver = (instance(a, p), word) not in received
                            received.add((instance(a, p), word))
                            served.add((instance(a, p), (), word))
                            # a reduction group gets the partial sum once; the others start from zero
                            content[word] = value if first_receiver else 0.0
                            if first_receiver and l < K:
                                writes[l][tensor] += 1
                        else:
                            served.add((instance(a, p), copy_of(a, l, tensor, p), word))
                            content[word] = value
                            if l < K:
                                writes[l][tensor] += 1
                    store[l][i][tensor] = (k, content)
                reads[a][tensor] += len(served)

        # one MAC per active unit
        for p in needs:
            mac = store[K][instance(K, p)]
            x = next(iter(mac["inputs"][1].values()))
            w = next(iter(mac["weights"][1].values()))
            out_word = next(iter(mac["outputs"][1]))
            mac["outputs"][1][out_word] += x * w

    # drain everything still on chip, innermost first
    for l in reversed(levels_of["outputs"]):
        drain(l, parent_of(l, "outputs"), list(range(n_pe)))

    reference = reference_conv(layer, inputs, weights)
    result = np.full(reference.shape, np.nan)
    for word, value in dram_out.items():
        result[word] = value
    error = float(np.nanmax(np.abs(result - reference))) if not np.isnan(result).any() else float("inf")
    return MultiLevelReport(
        outputs_match=bool(np.array_equal(result, reference)),
        reads=reads, writes=writes, cycles=cycles, max_abs_error=error,
        wall_time_s=time.perf_counter() - start,
    )
