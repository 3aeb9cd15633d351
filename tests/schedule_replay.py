"""Replay any MAC order of a small conv layer on a buffer and count DRAM bits.

The enlarged schedule space the rigorous bounds are tested against: it is
wider than any mapping space of mapcert.  A schedule is just an order of
all MACs (each once): loop nests over the seven dimensions, each split at
an arbitrary (non-dividing) tile into an outer and an inner loop, R and S
included, in any of the orders of the fourteen loops, or a random
permutation of the MACs.  The buffer keeps individual elements, so halo
reuse between tiles, and any other reuse, happens whenever the data is
still there; it evicts by Belady's rule (farthest next use first), which
makes the counted traffic small without being a claim of optimality.  A
bound that holds here holds for these schedules.

Costs follow the machine model of docs/bounds.md: an input or weight read
costs its precision; an output is created on chip by its first MAC (no
read) as a partial sum of ``psums`` bits; evicting an unfinished one writes
it (psums bits) and touching it again reads it back (psums bits); a
finished output is written once at ``outputs`` bits and leaves.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np

from mapcert.formulations.tiling.problem import ConvLayer

DIMS = ("N", "M", "C", "P", "Q", "R", "S")


def all_macs(layer: ConvLayer) -> np.ndarray:
    """Every MAC as a row (n, m, c, p, q, r, s), groups = 1."""
    ranges = [range(layer.N), range(layer.M), range(layer.C), range(layer.P), range(layer.Q),
              range(layer.R), range(layer.S)]
    return np.array(list(itertools.product(*ranges)), dtype=np.int64)


def loop_nest_order(layer: ConvLayer, rng: np.random.Generator) -> np.ndarray:
    """The MACs in the order of a random two-level loop nest: every dimension
    split at a random tile (dividing or not), the fourteen loops permuted at
    random, partial edge tiles skipped past the extent."""
    extents = [getattr(layer, d) for d in DIMS]
    tiles = [int(rng.integers(1, e + 1)) for e in extents]
    loops = [(k, "outer", -(-e // t)) for k, (e, t) in enumerate(zip(extents, tiles))]
    loops += [(k, "inner", t) for k, t in enumerate(tiles)]
    order = rng.permutation(len(loops))
    loops = [loops[i] for i in order]
    grids = np.array(list(itertools.product(*[range(n) for _, _, n in loops])), dtype=np.int64)
    index = np.zeros((len(grids), len(DIMS)), dtype=np.int64)
    for column, (k, kind, _) in enumerate(loops):
        index[:, k] += grids[:, column] * (tiles[k] if kind == "outer" else 1)
    keep = np.all(index < np.array(extents), axis=1)
    return index[keep]


def replay_bits(layer: ConvLayer, macs: np.ndarray, capacity_bits: int | None = None,
                rooms_bits: dict[str, int] | None = None) -> int:
    """DRAM bits (reads and writes) of executing ``macs`` in that order on a
    buffer of ``capacity_bits``, with Belady eviction; or, with
    ``rooms_bits`` (``{"i": ..., "w": ..., "o": ...}``), on a buffer split
    into one part per tensor, each evicting by Belady's rule among its own
    elements."""
    prec = layer.precision
    sh, sw = layer.stride
    dh, dw = layer.dilation
    n, m, c, p, q, r, s = (column.tolist() for column in macs.T)
    keys = [
        ("i",) + k
        for k in zip(n, c, [a * sh + b * dh for a, b in zip(p, r)], [a * sw + b * dw for a, b in zip(q, s)])
    ], [("w",) + k for k in zip(m, c, r, s)], [("o",) + k for k in zip(n, m, p, q)]
    size = {"i": prec.inputs, "w": prec.weights, "o": prec.psums}
    accesses = [key for triple in zip(*keys) for key in triple]
    never = len(accesses)
    next_use = [never] * len(accesses)
    last: dict = {}
    for pos in range(len(accesses) - 1, -1, -1):
        next_use[pos] = last.get(accesses[pos], never)
        last[accesses[pos]] = pos
    remaining = {}
    for key in keys[2]:
        remaining[key] = remaining.get(key, 0) + 1
    resident: dict = {}  # key -> next use
    # one pool (its used bits, its capacity, its heap) for the whole buffer, or one per tensor
    pools = ({kind: [0, rooms_bits[kind], []] for kind in "iwo"} if rooms_bits is not None
             else dict.fromkeys("iwo", [0, capacity_bits, []]))
    spilled: set = set()
    traffic = 0
    for pos, key in enumerate(accesses):
        kind = key[0]
        pool = pools[kind]
        if key not in resident:
            if kind == "o" and key in spilled:
                traffic += prec.psums
                spilled.discard(key)
            elif kind != "o":
                traffic += size[kind]
            pool[0] += size[kind]
            pinned = set(accesses[pos - pos % 3: pos - pos % 3 + 3])
            held = []
            while pool[0] > pool[1]:
                if not pool[2]:
                    raise ValueError("buffer smaller than one MAC's operands")
                entry = heapq.heappop(pool[2])
                victim = entry[1]
                if resident.get(victim) != -entry[0]:
                    continue  # stale: the element left or was used again since
                if victim in pinned:
                    held.append(entry)
                    continue
                del resident[victim]
                pool[0] -= size[victim[0]]
                if victim[0] == "o":  # an unfinished output: spill its partial sum
                    traffic += prec.psums
                    spilled.add(victim)
            for entry in held:
                heapq.heappush(pool[2], entry)
        resident[key] = next_use[pos]
        heapq.heappush(pool[2], (-next_use[pos], key))
        if kind == "o":
            remaining[key] -= 1
            if remaining[key] == 0:  # finished: written once at output precision
                traffic += prec.outputs
                del resident[key]
                pool[0] -= size["o"]
    return traffic


def schedules(layer: ConvLayer, rng: np.random.Generator, count: int):
    """``count`` random loop nests, a random MAC order, and the orders good
    schedules use: output-stationary (the reduction innermost), outputs
    revisited per input channel, and weight-stationary (pixels innermost)."""
    for _ in range(count):
        yield loop_nest_order(layer, rng)
    macs = all_macs(layer)
    yield macs[rng.permutation(len(macs))]
    yield macs  # N, M, C, P, Q, R, S: outputs revisited per input channel
    yield macs[np.lexsort((macs[:, 2], macs[:, 6], macs[:, 5]))]  # reduction innermost
    yield macs[np.lexsort((macs[:, 4], macs[:, 3], macs[:, 0]))]  # pixels innermost: weight stationary
