"""ZigZag mappings <-> mapcert multi-level mappings.

A ZigZag mapping file is a list of entries, each named after a layer, an
operator type or ``default`` (ZigZag takes the first that applies, in that
order).  An entry gives ``spatial_mapping`` (per array dimension, the
loops it unrolls: ``D1: [K, 32]``), ``temporal_ordering`` (the temporal
loops, innermost first: ``[[OX, 112], [OY, 112], ...]``, a size ``*``
standing for what remains of that loop) and ``memory_operand_links``.

The file does not say which memory each temporal loop belongs to: ZigZag's
own mapper allocates them, filling its memories from the bottom up.
mapcert does the same on its chain of levels, innermost first: each level
takes as many of the remaining innermost loops as fit in it while every
level above can still hold its tiles, and stops before a second loop of a
dimension it already runs with other loops between (mapcert runs one loop
per dimension at each level).  This gives the one mapping of mapcert's
space the file describes.

Writing a mapping the other way loses where its loops sit, so a loop that
runs above the array in mapcert's mapping but fits below it comes back
below the array's unrolling, a different mapping.  The exporter reads its
own file back, tries other orders of one memory's loops with the same
objective when that costs more, writes the mapping as read back (a fixed
point), and says whether it reads back to the objective it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

from ..formulations.tiling.multilevel.cost import evaluate_multilevel, tile_elements
from ..formulations.tiling.multilevel.problem import (DIMS, LevelLoops, MultiLevelMapping, MultiLevelProblem,
                                                      SpatialLoops, layer_extent, mapping_problems)
from .zigzag_common import DEFAULT_LINKS, MAPCERT_TO_ZIGZAG, ZIGZAG_DIMS
from .zigzag_hardware import fanout_dims

ENTRY_FIELDS = {"name", "spatial_mapping", "temporal_ordering", "memory_operand_links", "spatial_mapping_hint",
                "core_allocation"}


class MappingError(ValueError):
    """A ZigZag mapping that is not a mapping of the problem; ``field`` names
    where in the file (a path of keys and indices)."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path


def is_zigzag_mapping(data: Any) -> bool:
    """Whether ``data`` looks like a ZigZag mapping file (a list of entries
    with a name and a spatial mapping or a temporal ordering)."""
    return isinstance(data, list) and bool(data) and all(isinstance(x, dict) for x in data) and any(
        "spatial_mapping" in x or "temporal_ordering" in x or "memory_operand_links" in x for x in data)


def pick_entry(entries: list[dict], layer_name: str, operator_types: tuple[str, ...] = ()) -> tuple[int, dict]:
    """The entry ZigZag would use for the layer: by name, operator type, then ``default``."""
    for wanted in (layer_name, *operator_types, "default"):
        for i, entry in enumerate(entries):
            if entry.get("name") == wanted:
                return i, entry
    if len(entries) == 1:
        return 0, entries[0]
    names = ", ".join(str(e.get("name")) for e in entries)
    raise MappingError((), f"no entry named {layer_name!r} or default (the entries are {names})")


def _operator_types(problem: MultiLevelProblem) -> tuple[str, ...]:
    return ("Conv", "Conv_downsample") if problem.layer.op == "conv2d" else ("Gemm",)


def _fanout_axes(problem: MultiLevelProblem) -> dict[str, tuple[int, str, int]]:
    """ZigZag array dimension -> (fan-out index, rows or cols, its size)."""
    out = {}
    for f, fan in enumerate(problem.hierarchy.fanouts):
        if fan.rows * fan.cols == 1:
            continue
        dims = fanout_dims(fan.name)
        if dims is None:
            raise MappingError((), f"fan-out {fan.name} is not named after ZigZag array dimensions (D1, D1xD2); "
                                   "import the hardware with `mapcert import zigzag`")
        out[dims[0]] = (f, "rows", fan.rows)
        if len(dims) > 1:
            out[dims[1]] = (f, "cols", fan.cols)
    return out


def _dim(name: Any, path: tuple, names: dict[str, str] | None = None) -> str:
    if str(name).strip() == "*":
        raise MappingError(path, "'*' leaves this loop to ZigZag's mapper: a partial (constrained) mapping is not "
                                 "one mapping to score; give a complete temporal_ordering, or `mapcert solve` the "
                                 "files without it for the optimum over every mapping")
    known = {**ZIGZAG_DIMS, **(names or {})}  # the workload's own names, when the import kept them, come first
    ours = known.get(str(name).strip())
    if ours is None:
        raise MappingError(path, f"unknown loop dimension {name!r}; the workload's loops are "
                                 f"{', '.join(known)}")
    return ours


def mapping_from_zigzag(problem: MultiLevelProblem, entries: Any, notes: list[str] | None = None,
                        names: dict[str, str] | None = None) -> MultiLevelMapping:
    """The mapcert mapping a ZigZag mapping file gives ``problem``.

    Parameters
    ----------
    problem
        A problem imported from ZigZag files (its fan-outs are named after
        the array dimensions, ``D1xD2``).
    entries
        The parsed mapping file.
    notes
        Where to say that ZigZag's own allocator would place the loops
        otherwise (``zigzag_allocation``), when given.
    names
        The workload's own loop names (ZigZag name -> mapcert dimension)
        when they are not ZigZag's usual ones (the import keeps them in the
        instance's header); ZigZag's usual names otherwise.

    Raises
    ------
    MappingError
        With the path of the offending field and one sentence naming the
        array dimension, loop or memory at fault.
    """
    if not is_zigzag_mapping(entries):
        raise MappingError((), "a ZigZag mapping is a list of entries with name, spatial_mapping and "
                               "temporal_ordering")
    index, entry = pick_entry(entries, problem.layer.name, _operator_types(problem))
    base = (index,)
    for key in entry:
        if key not in ENTRY_FIELDS:
            raise MappingError(base + (key,), f"unknown field; a ZigZag mapping entry has "
                                              f"{', '.join(sorted(ENTRY_FIELDS))}")
    layer, hier = problem.layer, problem.hierarchy
    extent = {d: layer_extent(layer, d) for d in DIMS}
    axes = _fanout_axes(problem)
    spatial = [SpatialLoops({}, {}) for _ in hier.fanouts]
    for array_dim, unrolls in (entry.get("spatial_mapping") or {}).items():
        path = base + ("spatial_mapping", array_dim)
        loops = _unrollings(unrolls, path, names)
        used = prod(f for _, f in loops)
        if used == 1:
            continue
        if str(array_dim) not in axes:
            known = ", ".join(f"{d} ({axes[d][2]})" for d in axes) or "none"
            raise MappingError(path, f"the hardware has no array dimension {array_dim} of size above 1 "
                                     f"(it has {known}); is this a mapping for another hardware?")
        f, axis, size = axes[str(array_dim)]
        if used > size:
            raise MappingError(path, f"unrolls {used} loop iterations on {array_dim}, which has {size}")
        target = getattr(spatial[f], axis)
        for dim, factor in loops:
            # ZigZag clips an unrolling to what remains of the loop (C = 3 on a D of 32 unrolls 3)
            left = extent[dim] // prod(loops_.factor(dim) for loops_ in spatial)
            target[dim] = target.get(dim, 1) * (left if factor > left else factor)
    s = {d: prod(loops.factor(d) for loops in spatial) for d in DIMS}
    temporal = _temporal(entry.get("temporal_ordering"), extent, s, base + ("temporal_ordering",), names)
    mapping, cuts = _allocate(problem, temporal, tuple(spatial), base + ("temporal_ordering",))
    if notes is not None:
        from .zigzag_allocation import difference

        note = difference(problem, temporal, tuple(spatial), cuts)
        if note:
            notes.append(note)
    problems = mapping_problems(layer, hier, mapping)
    if problems:
        raise MappingError(base, "; ".join(problems))
    return mapping


def _unrollings(raw: Any, path: tuple, names: dict[str, str] | None = None) -> list[tuple[str, int]]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        parts = [p.strip() for p in str(item).split(",")] if not isinstance(item, list) else [str(p) for p in item]
        if len(parts) != 2 or not parts[1].strip().isdigit() or int(parts[1]) < 1:
            raise MappingError(path + (i,), f"not 'DIM, FACTOR' (such as 'K, 32'), got {item!r}")
        out.append((_dim(parts[0], path + (i,), names), int(parts[1])))
    return out


def _temporal(raw: Any, extent: dict, s: dict, path: tuple,
              names: dict[str, str] | None = None) -> list[tuple[str, int]]:
    """The temporal loops innermost first, ``*`` resolved; checks that every
    dimension multiplies out to its size."""
    if not raw:
        raise MappingError(path, "no temporal_ordering: this entry leaves the temporal mapping to ZigZag's "
                                 "mapper; mapcert scores complete mappings, so give the loops innermost first")
    if not isinstance(raw, list):
        raise MappingError(path, "must list [DIM, SIZE] loops, innermost first")
    loops: list[tuple[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise MappingError(path + (i,), f"a loop is [DIM, SIZE], got {item!r}")
        dim = _dim(item[0], path + (i,), names)
        size = item[1]
        if size != "*" and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise MappingError(path + (i,), f"size of {item[0]} must be a positive integer or '*', got {size!r}")
        loops.append((dim, size))
    out = []
    for i, (dim, size) in enumerate(loops):
        if size == "*":
            if sum(1 for d, v in loops if d == dim and v == "*") > 1:
                raise MappingError(path + (i,), f"{MAPCERT_TO_ZIGZAG[dim]} has more than one '*' loop")
            given = prod(v for d, v in loops if d == dim and v != "*") * s[dim]
            if extent[dim] % given:
                raise MappingError(path + (i,), f"{MAPCERT_TO_ZIGZAG[dim]}: the other loops and the unrolling "
                                                f"give {given}, which does not divide its size {extent[dim]}")
            size = extent[dim] // given
        out.append((dim, int(size)))
    for dim in DIMS:
        total = prod(v for d, v in out if d == dim) * s[dim]
        if total != extent[dim]:
            name = MAPCERT_TO_ZIGZAG[dim]
            raise MappingError(path, f"the loops of {name} multiply to {total} (with the spatial unrolling "
                                     f"{s[dim]}); {name} is {extent[dim]}")
    return [(d, v) for d, v in out if v > 1]


def _tile_bits(problem: MultiLevelProblem, level: int, below: list[tuple[str, int]],
               spatial: tuple[SpatialLoops, ...]) -> dict[str, int]:
    """Bits of each tensor's tile at ``level`` when the temporal loops ``below``
    lie under it."""
    hier, layer = problem.hierarchy, problem.layer
    t = {d: 1 for d in DIMS}
    for dim, size in below:
        t[dim] *= size
    for f, fan in enumerate(hier.fanouts):
        if fan.level > level:
            for d in DIMS:
                t[d] *= spatial[f].factor(d)
    arrays = {d: np.asarray(v, dtype=np.int64) for d, v in t.items()}
    p = layer.precision
    bits = {"inputs": p.inputs, "weights": p.weights, "outputs": p.psums}
    return {x: int(tile_elements(layer, x, arrays)) * bits[x] for x in bits}


def _allocate(problem: MultiLevelProblem, loops: list[tuple[str, int]], spatial: tuple[SpatialLoops, ...],
              path: tuple) -> tuple[MultiLevelMapping, dict[int, int]]:
    """Per level, the loops it runs: each level from the bottom takes the most
    remaining loops that still leave every level above room for its tile."""
    hier = problem.hierarchy
    K, n = len(hier.levels), len(loops)
    most = {}
    for level in range(1, K):
        fitting = -1
        for cut in range(n + 1):
            if hier.levels[level].fits(_tile_bits(problem, level, loops[:cut], spatial)):
                fitting = cut
            else:
                break
        if fitting < 0:
            raise MappingError(path, f"memory {hier.levels[level].name} overflows with the spatial unrolling "
                                     "alone (its tile of the loops unrolled below it does not fit)")
        most[level] = fitting
    cuts = {K: 0}
    for level in range(K - 1, 0, -1):
        cut, limit = cuts[level + 1], min(most[j] for j in range(1, level + 1))
        named: list[str] = []
        while cut < limit:  # a level runs one loop per dimension: stop before a second one
            dim = loops[cut][0]
            if dim in named and named[-1] != dim:
                break
            if dim not in named:
                named.append(dim)
            cut += 1
        cuts[level] = cut
    cuts[0] = n
    window = [MAPCERT_TO_ZIGZAG[d] for d, _ in loops[cuts[1]:] if d in ("R", "S")]
    if window:
        last = max(i + 1 for i, (d, _) in enumerate(loops) if d in ("R", "S"))
        why = (f"{hier.levels[1].name} overflows with them" if most[1] < last else
               f"{hier.levels[1].name} would run two loops of one dimension with others between them")
        raise MappingError(path, f"the filter loops ({', '.join(window)}) must all lie below "
                                 f"{hier.levels[0].name} (mapcert's off-chip memory never splits the window), "
                                 f"but {why}")
    blocks = []
    for level in range(K):
        block = loops[cuts[level + 1]:cuts[level]]
        factors = {d: 1 for d in DIMS}
        named = []  # innermost first
        for dim, size in block:
            if named and named[-1] == dim:
                factors[dim] *= size
                continue
            if dim in named:
                zz = MAPCERT_TO_ZIGZAG[dim]
                raise MappingError(path, f"memory {hier.levels[level].name} gets two {zz} loops with other loops "
                                         f"between them; mapcert runs one loop per dimension at each memory")
            named.append(dim)
            factors[dim] *= size
        order = tuple([d for d in DIMS if d not in named] + named[::-1])
        blocks.append(LevelLoops(factors=factors, order=order))
    return MultiLevelMapping(levels=tuple(blocks), fanouts=spatial), cuts


@dataclass(frozen=True)
class Exported:
    """A ZigZag mapping file's entries, and the objective the file reads back to."""

    entries: list[dict]
    objective: float
    reads_back: bool
    """Whether the file reads back to a mapping of the same objective."""
    note: str | None = None
    """Why ZigZag's own allocator would place the loops otherwise (None: it agrees)."""


def mapping_to_zigzag(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> list[dict]:
    """ZigZag mapping entries of ``mapping``: one ``default`` entry with its
    spatial mapping, its temporal loops innermost first and ZigZag's default
    operand links."""
    axes = _fanout_axes(problem)
    spatial: dict[str, list[str]] = {}
    for array_dim in sorted(axes, key=lambda d: int(d[1:])):
        f, axis, _ = axes[array_dim]
        loops = getattr(mapping.fanout(f), axis)
        items = [f"{MAPCERT_TO_ZIGZAG[d]}, {int(v)}" for d, v in loops.items() if v > 1]
        if items:
            spatial[array_dim] = items
    ordering = []
    for level in reversed(mapping.levels):
        for dim in reversed(level.order):
            factor = level.factors.get(dim, 1)
            if factor > 1:
                ordering.append([MAPCERT_TO_ZIGZAG[dim], int(factor)])
    entry: dict[str, Any] = {"name": "default", "spatial_mapping": spatial or None,
                             "temporal_ordering": ordering, "memory_operand_links": dict(DEFAULT_LINKS)}
    return [entry]


def _read_back(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> MultiLevelMapping | None:
    try:
        return mapping_from_zigzag(problem, mapping_to_zigzag(problem, mapping))
    except MappingError:
        return None


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def _stopping_orders(problem: MultiLevelProblem, mapping: MultiLevelMapping, objective: str, own: float):
    """Mappings equal to ``mapping`` but for the order of one level's loops,
    with the same objective: another loop innermost in a block may stop the
    level below from taking it when the file is read."""
    for level in range(len(mapping.levels) - 1, -1, -1):
        loops = mapping.levels[level]
        named = [d for d in loops.order if loops.factors.get(d, 1) > 1]
        for dim in named[:-1]:  # make ``dim`` the innermost loop of this level
            order = tuple([d for d in loops.order if d != dim] + [dim])
            levels = list(mapping.levels)
            levels[level] = LevelLoops(factors=loops.factors, order=order)
            candidate = MultiLevelMapping(levels=tuple(levels), fanouts=mapping.fanouts, keep=mapping.keep)
            if _same(evaluate_multilevel(problem, candidate).objective(objective), own):
                yield candidate


def export(problem: MultiLevelProblem, mapping: MultiLevelMapping, objective: str) -> Exported:
    """The entries of ``mapping`` and what they read back to.

    The file gives no memory per loop, so reading it lets each memory take
    every loop that fits (as ZigZag's allocator does), and a loop that fits
    below the array but runs above it in ``mapping`` would move below the
    array's unrolling, which can cost more.  When it does, the loops of one
    memory are tried in other orders of the same objective, innermost loop
    first, until the file reads back to ``mapping``'s objective.  The entries
    are those of the mapping read back (a fixed point: reading them again
    gives the same mapping)."""
    own = evaluate_multilevel(problem, mapping).objective(objective)
    frontier, tried = [mapping], 0
    best = None
    while frontier and tried < 200:
        current = frontier.pop(0)
        tried += 1
        back = _read_back(problem, current)
        if back is None:
            continue
        value = evaluate_multilevel(problem, back).objective(objective)
        if best is None or value < best[1]:
            best = (back, value)
        if _same(value, own):
            break
        if tried == 1:
            frontier.extend(_stopping_orders(problem, current, objective, own))
    if best is None:
        raise MappingError((), "the mapping cannot be written as a ZigZag temporal ordering that reads back")
    back, value = best
    entries = mapping_to_zigzag(problem, back)
    notes: list[str] = []
    mapping_from_zigzag(problem, entries, notes)
    return Exported(entries, value, _same(value, own), notes[0] if notes else None)
