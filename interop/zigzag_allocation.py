"""ZigZag's own allocation of a temporal ordering to its memories.

ZigZag's mapper (LOMA's ``MemoryAllocator``, uneven mappings) walks the
memories from the innermost up.  At each memory, each operand it serves may
take any prefix of its remaining loops whose tile fits the memory alone; of
the combinations whose tiles fit together, it keeps the one with the fewest
accesses to the memory above (remaining iterations x tile bits; the last of
equal ones), and the top memory takes everything.  Operands are cut
independently, so two operands of one memory may be cut at different loops,
and an operand's register may run loops its neighbour's register above it
does not.

mapcert's chain cuts every operand of a level at one loop, and a level's
loops lie inside every level above it.  This module replays ZigZag's
allocation to say, when mapcert reads an ordering, whether ZigZag would
have allocated it the same way.  Tile sizes are mapcert's (an input tile
counts the rows its windows read, ZigZag the bounding rows); outputs count
at the final precision once no loop that sums into them is left above, as
ZigZag does.
"""

from __future__ import annotations

from itertools import product
from math import prod

import numpy as np

from ..formulations.tiling.multilevel.cost import tile_elements
from ..formulations.tiling.multilevel.problem import DIMS, MultiLevelProblem, SpatialLoops

SUMMED = ("C", "R", "S")
"""Dimensions whose loops sum into an output word (irrelevant to outputs)."""


def _tile_bits(problem: MultiLevelProblem, level: int, tensor: str, below: list[tuple[str, int]],
               above: list[tuple[str, int]], spatial: tuple[SpatialLoops, ...]) -> int:
    layer, hier = problem.layer, problem.hierarchy
    t = {d: 1 for d in DIMS}
    for dim, size in below:
        t[dim] *= size
    summed_above = any(d in SUMMED for d, _ in above)
    for f, fan in enumerate(hier.fanouts):
        for d in DIMS:
            factor = spatial[f].factor(d)
            if fan.level > level:
                t[d] *= factor
            elif factor > 1 and d in SUMMED:
                summed_above = True
    elements = int(tile_elements(layer, tensor, {d: np.asarray(v, dtype=np.int64) for d, v in t.items()}))
    p = layer.precision
    bits = {"inputs": p.inputs, "weights": p.weights,
            "outputs": p.psums if summed_above else p.outputs}[tensor]
    return elements * bits


def zigzag_cuts(problem: MultiLevelProblem, loops: list[tuple[str, int]],
                spatial: tuple[SpatialLoops, ...]) -> dict[int, dict[str, int]] | str:
    """Per level, per tensor it holds, how many of ``loops`` (innermost first)
    lie below the level's cut in ZigZag's allocation; or why ZigZag would
    refuse the ordering (a memory too small)."""
    hier = problem.hierarchy
    n = len(loops)
    cut = {"inputs": 0, "weights": 0, "outputs": 0}
    out: dict[int, dict[str, int]] = {}
    for level in range(len(hier.levels) - 1, -1, -1):
        memory = hier.levels[level]
        ops = [x for x in ("inputs", "weights", "outputs") if x in memory.holds]
        capacity = memory.capacity_bits
        top = level == 0
        options: dict[str, list[tuple[int, int, int]]] = {}  # tensor -> [(cut, bits, accesses)]
        for x in ops:
            choices = []
            for c in range(cut[x], n + 1):
                bits = _tile_bits(problem, level, x, loops[:c], loops[c:], spatial)
                limit = memory.partition_bits.get(x, 0) if memory.partition_bits else capacity
                if limit is not None and bits > limit:
                    if c == cut[x]:
                        return f"memory {memory.name} cannot hold the {x} tile of the loops below it"
                    break
                choices.append((c, bits, 0 if top else prod(s for _, s in loops[c:]) * bits))
            if top:
                if choices[-1][0] != n:
                    return f"memory {memory.name}, the top one, cannot hold all {x}"
                choices = [choices[-1]]
            options[x] = choices
        best, best_accesses = None, None
        for combo in product(*(options[x] for x in ops)):
            if capacity is not None and memory.partition_bits is None and sum(b for _, b, _ in combo) > capacity:
                continue
            accesses = sum(a for _, _, a in combo)
            if best_accesses is None or accesses <= best_accesses:
                best, best_accesses = combo, accesses
        if best is None:
            return f"memory {memory.name} cannot hold its operands' tiles together"
        out[level] = {}
        for x, (c, _, _) in zip(ops, best):
            cut[x] = c
            out[level][x] = c
    return out


def difference(problem: MultiLevelProblem, loops: list[tuple[str, int]], spatial: tuple[SpatialLoops, ...],
               cuts: dict[int, int]) -> str | None:
    """Why ZigZag would allocate ``loops`` otherwise than mapcert's chain
    (``cuts[level]``: loops below that level's cut), or None when it agrees."""
    from .zigzag_common import MAPCERT_TO_ZIGZAG

    theirs = zigzag_cuts(problem, loops, spatial)
    if isinstance(theirs, str):
        return f"ZigZag's allocator would refuse this ordering ({theirs})"
    names = {"inputs": "I", "weights": "W", "outputs": "O"}
    for level in range(len(problem.hierarchy.levels) - 1, 0, -1):
        for x, c in theirs[level].items():
            if c != cuts[level]:
                def upto(k):
                    return "no loop" if k == 0 else f"{k} loop{'s' if k > 1 else ''} (up to {MAPCERT_TO_ZIGZAG[loops[k - 1][0]]})"
                return (f"ZigZag's allocator would give memory {problem.hierarchy.levels[level].name} "
                        f"{upto(c)} of {names[x]}, mapcert's chain {upto(cuts[level])}")
    return None
