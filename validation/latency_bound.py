"""A lower bound on the cycles of every multi-level mapping (derived in
docs/tiling-multilevel.md, "Bounds", latency).

The cost model's latency is the largest of the compute cycles and, for
each level with a declared bandwidth, the cycles it needs to move its
words: ``ceil(words / busy instances / bandwidth)``. So a floor on the
words each level moves, over all its instances, gives a floor on its
cycles. Two kinds of words are certain:

* every element passes through every level that always keeps its tensor
  (and through DRAM): each used input and each weight is written into
  such a level once and read out of it once, each output is written into
  it once (its value arrives) and read out once (its value leaves); DRAM
  moves at least the room segment bound's accesses (docs/bounds.md);
* when one level is the only one that can change a tensor's MAC latch, it
  makes those changes (``latch_changes``), one access serving at most the
  units below it whose network shares the tensor.
"""

from __future__ import annotations

from math import ceil

from ..formulations.tiling.multilevel.cost import busy_cycles
from ..formulations.tiling.multilevel.problem import MultiLevelProblem
from .multilevel_bounds import latch_changes, latch_servers, mac_units, room_instance
from .room_segment import room_segment_cost


COMPUTE_FLOOR = "all PEs busy every cycle"


def _elements(problem: MultiLevelProblem) -> dict[str, int]:
    layer = problem.layer
    return {"inputs": layer.input_elements_used, "weights": layer.weight_elements,
            "outputs": layer.output_elements}


def sole_servers(problem: MultiLevelProblem) -> dict[str, tuple[int, int]]:
    """``tensor -> (level, shared)`` for each tensor whose MAC latches only
    one level can feed: the innermost level that always keeps it, with no
    level below it that may keep it."""
    out = {}
    for tensor in ("inputs", "weights", "outputs"):
        servers = latch_servers(problem, tensor)
        if len(servers) == 1:
            out[tensor] = servers[0]
    return out


def latch_accesses(problem: MultiLevelProblem, level: int) -> float:
    """The fewest accesses ``level`` makes to change the latches it alone feeds.

    With latches, the changes ``x_t`` of the three tensors add up to at
    least ``2 (MACs - units)`` and each is at most ``MACs - units``
    (``latch_changes``); the tensors ``level`` does not feed take the most
    they can, the rest falls on those it feeds, the ones whose access
    serves the most units first (the cheapest in accesses). Without
    latches every MAC fetches each operand and drains its sum."""
    served = {t: shared for t, (index, shared) in sole_servers(problem).items() if index == level}
    if not served:
        return 0.0
    macs = problem.layer.macs
    if not problem.hierarchy.latches:
        return sum(macs / shared for shared in served.values())
    each = max(0, macs - mac_units(problem))
    rest = max(0, latch_changes(problem) - (3 - len(served)) * each)
    accesses = 0.0
    for shared in sorted(served.values(), reverse=True):
        take = min(each, rest)
        accesses += take / shared
        rest -= take
    return accesses


def level_words(problem: MultiLevelProblem, index: int) -> float:
    """Words (reads and writes, all instances) level ``index`` moves in
    every mapping: the compulsory passes of the tensors it always keeps
    (DRAM: each used input and weight read, each output written, or the
    room segment bound on its accesses when more) and, on the side that
    feeds the MACs, the larger of those and ``latch_accesses``."""
    level = problem.hierarchy.levels[index]
    elements = _elements(problem)
    kept = ("inputs", "weights", "outputs") if index == 0 else level.always_holds
    served = [t for t, (server, _) in sole_servers(problem).items() if server == index]
    # the feeding side (reads of inputs and weights, writes of outputs): each tensor's own
    # events, so the latch changes replace the compulsory count of the tensors they concern only
    feed = (sum(elements[t] for t in kept if t not in served)
            + max(sum(elements[t] for t in served), latch_accesses(problem, index)))
    if index == 0:
        # every DRAM access is one word: the room segment bound with each read weighing one and
        # each partial sum read back two (its read and the write that spilled it)
        return max(feed, room_segment_cost(room_instance(problem, 1, 1, 2, 1)))
    # the other side on chip: inputs and weights written in, outputs read out
    return sum(elements[t] for t in kept) + feed


def latency_floor(problem: MultiLevelProblem) -> tuple[int, str]:
    """``(cycles, reason)``: the compute floor ``ceil(MACs / PEs)``, or a
    bandwidth-limited level's floor ``ceil(level_words / instances /
    bandwidth)`` when that is larger."""
    hier = problem.hierarchy
    best = ceil(problem.layer.macs / hier.pes)
    reason = COMPUTE_FLOOR
    for index, level in enumerate(hier.levels):
        if not level.bandwidth:
            continue
        words, count = level_words(problem, index), hier.instances(index)
        # the words are whole: at least the float floor less its rounding
        cycles = busy_cycles(ceil(words * (1 - 1e-9)), count, level.bandwidth)
        if cycles > best:
            best = cycles
            reason = (f"{level.name} moves at least {words:,.0f} words at {level.bandwidth:g} per cycle"
                      + (f" on each of {count:,} instances" if count > 1 else ""))
    return best, reason
