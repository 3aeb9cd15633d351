"""Loop-order constraints, solved exactly by splitting a level into sub-levels.

The exact methods search six group orders per level (``space.py``): the
exchange argument behind them moves loops freely inside a level, which an
order constraint forbids. But the cost model reads a level's loops only as
part of the concatenated loop nest above each level below it
(``cost.py``): a level whose order ends with the loops ``d_1, ..., d_m``
(outermost first), the other loops outside them in any order, has the
loop nest of

* the level itself, with the other loops (its *free* block), followed by
* ``m`` pass-through levels, the ``i``-th with the single loop ``d_i``,
  holding no tensor (capacity zero, no accesses, no energy); over divisor
  factors without halo reuse, a run of ordered loops of one reuse group
  shares one (the order inside a group changes no count there).

The level's tile is its loops' and everything below them, so the storage
stays on the first of the split levels and the fills, the multicasts and
the halo sweeps of every level see the same loops in the same order. A
pass-through level has the loops of one reuse group, so its order is
settled (``space.settled_rankings``); the free block
is a level like any other, so the group-order reduction holds there as
proved, and a row of the split problem is a row of the original one with
each dimension's trips at a level placed on the one split level that may
carry them. So every exact method solves the split problem unchanged, and
:meth:`SplitLevels.fold` puts each level's loops back together: the
mapping ``evaluate`` scores on the original hierarchy (derivation:
docs/tiling-multilevel.md, "Loop-order constraints").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod

from ....hardware.hierarchy import Hierarchy, MemoryLevel
from .constraints import LevelConstraint, MappingConstraints
from .problem import DIMS, REUSE_GROUPS, LevelLoops, MultiLevelMapping, MultiLevelProblem, layer_extent

PASS_THROUGH = "/"
"""Joins a level's name and its loops' in a pass-through level's name (``GLB/QP``)."""


@dataclass(frozen=True)
class SplitLevels:
    """An ordered problem and its split form: per original level, the
    indices of its split levels (the storage first) and which dimensions
    each may carry."""

    original: MultiLevelProblem
    problem: MultiLevelProblem
    parts: tuple[tuple[int, ...], ...]
    carries: tuple[frozenset[str], ...]

    def fold(self, mapping: MultiLevelMapping) -> MultiLevelMapping:
        """The split problem's mapping on the original hierarchy: each
        level's trips the product of its split levels', its order the free
        block's (without the ordered loops) and then the ordered loops."""
        fixed = self.original.constraints.orders
        levels = []
        for j, parts in enumerate(self.parts):
            factors = {d: prod(mapping.levels[v].factors.get(d, 1) for v in parts) for d in DIMS}
            ordered = fixed.get(j, ())
            free = tuple(d for d in mapping.levels[parts[0]].order if d not in ordered)
            levels.append(LevelLoops(factors, free + ordered))
        keep = None if mapping.keep is None else tuple(mapping.keep[parts[0]] for parts in self.parts)
        return MultiLevelMapping(levels=tuple(levels), fanouts=mapping.fanouts, keep=keep)

    def unfold(self, mapping: MultiLevelMapping) -> MultiLevelMapping:
        """A mapping of the original hierarchy that obeys the orders, on the
        split one (each loop on the split level that carries it)."""
        levels = []
        for j, parts in enumerate(self.parts):
            loops = mapping.levels[j]
            for v in parts:
                levels.append(LevelLoops({d: loops.factors.get(d, 1) if d in self.carries[v] else 1 for d in DIMS},
                                         loops.order))
        keep = None
        if mapping.keep is not None:
            keep = tuple(mapping.keep[j] if v == parts[0] else frozenset()
                         for j, parts in enumerate(self.parts) for v in parts)
        return MultiLevelMapping(levels=tuple(levels), fanouts=mapping.fanouts, keep=keep)


def split_ordered(problem: MultiLevelProblem) -> SplitLevels | None:
    """The split form of ``problem`` (None when no level's order is constrained)."""
    orders = problem.constraints.orders
    if not orders:
        return None
    hier = problem.hierarchy
    levels: list[MemoryLevel] = []
    parts: list[tuple[int, ...]] = []
    carries: list[frozenset[str]] = []
    for j, level in enumerate(hier.levels):
        ordered = tuple(d for d in orders.get(j, ()) if not _runs_once(problem, j, d))
        free = frozenset(DIMS) - set(ordered)
        runs = _runs(ordered, merge=problem.factors == "divisors" and not problem.halo)
        blocks = ([free] if free else []) + [frozenset(run) for run in runs]
        start = len(levels)
        for k, block in enumerate(blocks):
            if k == 0:
                levels.append(level)
            else:
                name = level.name + PASS_THROUGH + "".join(runs[k - (1 if free else 0)])
                levels.append(MemoryLevel(name=name, capacity_bits=0, holds=frozenset(), per_pe=level.per_pe))
            carries.append(block)
        parts.append(tuple(range(start, len(levels))))
    if len(levels) == len(hier.levels):  # every ordered loop runs once: nothing to order
        return None
    index = {j: p[0] for j, p in enumerate(parts)}
    index[len(hier.levels)] = len(levels)
    fanouts = tuple(replace(fan, level=index[fan.level]) for fan in hier.fanouts)
    split_hier = Hierarchy(name=hier.name, levels=tuple(levels), rows=hier.rows, cols=hier.cols,
                           mac_energy=hier.mac_energy, energy_unit=hier.energy_unit, source=hier.source,
                           fanouts=fanouts, latches=hier.latches)
    constraints = _split_constraints(problem.constraints, parts, carries)
    return SplitLevels(problem, replace(problem, hierarchy=split_hier, constraints=constraints),
                       tuple(parts), tuple(carries))


def _runs(ordered: tuple[str, ...], merge: bool) -> list[tuple[str, ...]]:
    """The ordered loops in the blocks the split gives a level each: one
    loop per block, or, with ``merge``, each run of consecutive loops of one
    reuse group together. Over divisor factors without halo reuse the order
    inside a reuse group changes no access count (every tensor sees all of
    a group's loops alike: ``space.py``), so a run needs one level, not one
    per loop; the partial-tile rule and the halo sweep read the order inside
    a group, so there every loop keeps its own."""
    out: list[list[str]] = []
    for d in ordered:
        group = _group_of(d)
        if merge and out and group is not None and group == _group_of(out[-1][-1]):
            out[-1].append(d)
        else:
            out.append([d])
    return [tuple(run) for run in out]


def _group_of(dim: str) -> str | None:
    """The tensor ``dim`` does not index (None for G, which indexes all three)."""
    return next((X for X, group in REUSE_GROUPS.items() if dim in group), None)


def _runs_once(problem: MultiLevelProblem, level: int, dim: str) -> bool:
    """Whether ``dim``'s loop at ``level`` has one trip in every mapping:
    an extent of 1, a trip count fixed to 1 there, or ``dim`` whole at this
    level or one below it. Such a loop needs no level of its own."""
    if layer_extent(problem.layer, dim) == 1:
        return True
    for index, constraint in problem.constraints.levels:
        if index == level and dict(constraint.factors).get(dim) == 1:
            return True
        if index >= level and dim in constraint.whole:
            return True
    return level == 0 and dim in ("R", "S")


def _split_constraints(constraints: MappingConstraints, parts, carries) -> MappingConstraints:
    """The constraints on the split levels: each carries only its
    dimensions (DRAM's never R or S), a fixed trip count goes where its
    dimension is carried, and a whole dimension is whole down to the
    level's last split level."""
    given = dict(constraints.levels)
    out = []
    for j, level_parts in enumerate(parts):
        own = given.get(j, LevelConstraint())
        for v in level_parts:
            fixed = {d: 1 for d in DIMS if d not in carries[v] or (j == 0 and v != 0 and d in ("R", "S"))}
            fixed.update({d: f for d, f in own.factors if d in carries[v]})
            whole = own.whole if v == level_parts[-1] else ()
            out.append((v, LevelConstraint(factors=tuple(sorted(fixed.items())), whole=whole)))
    return MappingConstraints(levels=tuple(out), fanouts=constraints.fanouts)
