"""Functional model of a memory hierarchy with a PE array.

It runs a multi-level mapping one MAC cycle at a time, on random integers.
All PEs step through the same temporal loops together; each PE works on its
own spatial slice. Every level instance keeps one tile per tensor it holds,
as a dictionary from words to values, and knows which tile that is.

When a MAC needs a word that its level does not hold, the level is filled,
after its parent has been filled if the parent lacks it too.

- A shared parent that fills several PEs in the same cycle reads each
  distinct word once (multicast).
- Output tiles are drained before a new tile is filled: bottom-up, with the
  partial sums of PEs that share a word added on the way (reduction).
- A tile visited before is filled with its partial sums; a first visit
  starts from zero.

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

from ...formulations.tiling.multilevel.problem import DIMS, RELEVANT, MultiLevelMapping, MultiLevelProblem, kept_problem
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
    K, pe = len(hier.levels), hier.pe_level
    inputs, weights = random_operands(layer, seed)
    (sh, sw), (dh, dw) = layer.stride, layer.dilation

    # tile extents per level (K = the MAC), as in the mapping's definition
    s = {d: mapping.spatial(d) for d in DIMS}
    T = [dict.fromkeys(DIMS, 1) for _ in range(K + 1)]
    for l in range(K - 1, -1, -1):
        T[l] = {d: mapping.factor(l, d) * T[l + 1][d] * (s[d] if l + 1 == pe else 1) for d in DIMS}

    # temporal loops, outermost first: (dim, trips, stride); spatial slices per PE
    loops = []
    for l in range(K):
        for d in mapping.levels[l].order:
            f = mapping.factor(l, d)
            if f > 1:
                loops.append((d, f, T[l][d] // f))
    pe_offsets = [dict(zip(DIMS, combo, strict=True))
                  for combo in itertools.product(*(range(0, s[d] * T[pe][d], T[pe][d]) for d in DIMS))]
    n_pe = len(pe_offsets)
    steps = int(np.prod([f for _, f, _ in loops])) if loops else 1
    if steps * n_pe > max_steps:
        raise ValueError(f"{steps * n_pe:,} MAC steps; the functional model stops at {max_steps:,}")

    def words(tensor: str, level: int, index: dict[str, int]) -> list[tuple]:
        """All words of the tile of ``level`` that contains ``index``."""
        span = {d: range(index[d] // T[level][d] * T[level][d], index[d] // T[level][d] * T[level][d] + T[level][d])
                for d in DIMS}
        if tensor == "weights":
            return list(itertools.product(span["G"], span["M"], span["C"], span["R"], span["S"]))
        if tensor == "outputs":
            return list(itertools.product(span["N"], span["G"], span["M"], span["P"], span["Q"]))
        rows = sorted({p * sh + r * dh for p in span["P"] for r in span["R"]})
        cols = sorted({q * sw + t * dw for q in span["Q"] for t in span["S"]})
        return list(itertools.product(span["N"], span["G"], span["C"], rows, cols))

    def key(tensor: str, level: int, index: dict[str, int]) -> tuple:
        return tuple(index[d] // T[level][d] for d in DIMS if d in RELEVANT[tensor])

    def instance(level: int, p: int) -> int:
        return p if level >= pe else 0

    # storage: store[level][instance][tensor] = (key, {word: value}); DRAM keyed by None
    store = [[dict() for _ in range(n_pe if l >= pe else 1)] for l in range(K + 1)]
    dram_out: dict[tuple, float] = {}
    visited = [[set() for _ in range(n_pe if l >= pe else 1)] for l in range(K + 1)]  # output tiles seen
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
        """Drain the output tiles of instances ``leaving`` of level ``l`` into
        ``a``: summed across PEs that share a shared parent (reduction tree),
        each into its own instance when the parent is private too."""
        groups: dict[int, dict[tuple, float]] = {}
        for p in leaving:
            slot = store[l][instance(l, p)]
            held = slot.pop("outputs")
            if l < K:
                reads[l]["outputs"] += len(held[1])
            into = groups.setdefault(instance(a, p), {})
            for word, value in held[1].items():
                into[word] = into.get(word, 0.0) + value
        for target, drained in groups.items():
            writes[a]["outputs"] += len(drained)
            for word, value in drained.items():
                if a == 0:
                    dram_out[word] = value
                else:
                    store[a][target]["outputs"][1][word] = value

    for step in range(steps):
        # decode the temporal index of this cycle
        base = dict.fromkeys(DIMS, 0)
        rest = step
        for d, f, stride in reversed(loops):
            base[d] += (rest % f) * stride
            rest //= f
        needs = [{d: base[d] + off[d] for d in DIMS} for off in pe_offsets]

        # drain output tiles that change, innermost first
        for l in reversed(levels_of["outputs"]):
            a = parent_of(l, "outputs")
            leaving = [p for p, index in enumerate(needs)
                       if not (l < pe and p > 0)
                       and store[l][instance(l, p)].get("outputs") is not None
                       and store[l][instance(l, p)]["outputs"][0] != key("outputs", l, index)]
            drain(l, a, leaving)

        # fill what is missing, outermost first
        for tensor in TENSORS:
            for l in levels_of[tensor]:
                a = parent_of(l, tensor)
                served: set[tuple] = set()  # (parent instance, word) read this cycle
                for p, index in enumerate(needs):
                    i = instance(l, p)
                    k = key(tensor, l, index)
                    held = store[l][i].get(tensor)
                    if held is not None and held[0] == k:
                        continue
                    if l < pe and p > 0:
                        continue  # one shared instance, filled for PE 0
                    tile = words(tensor, l, index)
                    fresh = tensor == "outputs" and k not in visited[l][i]
                    if tensor == "outputs":
                        visited[l][i].add(k)
                    content = {}
                    parent_store = store[a][instance(a, p)] if a > 0 else None
                    for word in tile:
                        if tensor == "outputs" and fresh:
                            content[word] = 0.0
                            continue
                        value = dram_value(tensor, word) if a == 0 else parent_store[tensor][1][word]
                        first_receiver = (instance(a, p), word) not in served
                        served.add((instance(a, p), word))
                        if tensor == "outputs":
                            # a reduction group gets the partial sum once; the others start from zero
                            content[word] = value if first_receiver else 0.0
                            if first_receiver and l < K:
                                writes[l][tensor] += 1
                        else:
                            content[word] = value
                            if l < K:
                                writes[l][tensor] += 1
                    store[l][i][tensor] = (k, content)
                reads[a][tensor] += len(served)

        # one MAC per PE
        for p, index in enumerate(needs):
            mac = store[K][p]
            x = next(iter(mac["inputs"][1].values()))
            w = next(iter(mac["weights"][1].values()))
            out_word = next(iter(mac["outputs"][1]))
            mac["outputs"][1][out_word] += x * w

    # drain everything still on chip, innermost first
    for l in reversed(levels_of["outputs"]):
        drain(l, parent_of(l, "outputs"), [p for p in range(len(store[l])) if store[l][p].get("outputs") is not None])

    reference = reference_conv(layer, inputs, weights)
    result = np.full(reference.shape, np.nan)
    for word, value in dram_out.items():
        result[word] = value
    error = float(np.nanmax(np.abs(result - reference))) if not np.isnan(result).any() else float("inf")
    return MultiLevelReport(
        outputs_match=bool(np.array_equal(result, reference)),
        reads=reads, writes=writes, cycles=steps, max_abs_error=error,
        wall_time_s=time.perf_counter() - start,
    )
