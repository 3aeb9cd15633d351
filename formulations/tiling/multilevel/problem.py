"""Loop tiling of one layer on a memory hierarchy with spatial fan-outs.

The loop nest has the eight dimensions N, G, M, C, P, Q, R, S (M and C per
group, as in the two-level family).  Every memory level owns a block of
temporal loops, one per dimension with a trip count (``factors``) in an
order of its own; every spatial fan-out (the PE array between the last
shared level and the first per-PE level, and any further one) unrolls
chosen dimensions onto its rows and columns.  For every dimension the product of all its factors, temporal and
spatial, is its extent (the ``divisors`` space).  DRAM never splits R and S
(as in the two-level family).

A level's loops iterate over tiles of the levels below; the tile a level
holds is the product of the factors below it.  The MAC units are the
innermost "level": each keeps one word of each operand while the loops
around it do not change that word.
"""

from __future__ import annotations

from ....instances import field_hint
from ....units import whole_number

from dataclasses import dataclass, field, replace
from math import prod

from ....hardware.hierarchy import Hierarchy, SortedFrozenset
from ..problem import ConvLayer, SolverSettings
from .constraints import NO_CONSTRAINTS, MappingConstraints

DIMS: tuple[str, ...] = ("N", "G", "M", "C", "P", "Q", "R", "S")

RELEVANT: dict[str, frozenset[str]] = {
    "inputs": SortedFrozenset({"N", "G", "C", "P", "Q", "R", "S"}),
    "weights": SortedFrozenset({"G", "M", "C", "R", "S"}),
    "outputs": SortedFrozenset({"N", "G", "M", "P", "Q"}),
}
"""Dimensions that index each tensor (R and S index inputs through the
window), iterated in one order in every process (``SortedFrozenset``)."""

REUSE_GROUPS: dict[str, tuple[str, ...]] = {
    "weights": ("N", "P", "Q"),
    "inputs": ("M",),
    "outputs": ("C", "R", "S"),
}
"""Every dimension but G indexes all tensors except one; ``REUSE_GROUPS[t]``
lists the dimensions whose loops can reuse a resident tile of ``t``."""

MULTILEVEL_OBJECTIVES = ("offchip_traffic", "energy", "latency", "edp")


@dataclass(frozen=True)
class LevelLoops:
    """Trip counts of one level's temporal loops and their order (outermost first)."""

    factors: dict[str, int]
    order: tuple[str, ...] = DIMS


@dataclass(frozen=True)
class SpatialLoops:
    """Factors one fan-out unrolls on its rows and on its columns."""

    rows: dict[str, int] = field(default_factory=dict)
    cols: dict[str, int] = field(default_factory=dict)

    def factor(self, dim: str) -> int:
        return self.rows.get(dim, 1) * self.cols.get(dim, 1)

    def to_dict(self) -> dict:
        return {"rows": {d: int(f) for d, f in self.rows.items() if f > 1},
                "cols": {d: int(f) for d, f in self.cols.items() if f > 1}}

    @classmethod
    def from_dict(cls, data, where: str) -> "SpatialLoops":
        if not isinstance(data, dict) or set(data) - {"rows", "cols"}:
            raise ValueError(f"{where}: give 'rows' and 'cols', each mapping dimensions to factors")
        out = {}
        for axis in ("rows", "cols"):
            raw = data.get(axis) or {}
            if not isinstance(raw, dict):
                raise ValueError(f"{where}: {axis} must map dimensions to factors")
            unknown = set(raw) - set(DIMS)
            if unknown:
                raise ValueError(f"{where}: unknown dimension(s) {sorted(unknown)} on the {axis}")
            out[axis] = {d: whole_number(f, f"{where}: spatial factor of {d} on the {axis}") for d, f in raw.items()}
        return cls(out["rows"], out["cols"])


@dataclass(frozen=True)
class MultiLevelMapping:
    """Temporal loops per memory level (outermost level first) and, per
    fan-out of the hierarchy (outermost first), the spatial unrolling onto
    its rows and columns (fan-outs not listed unroll nothing)."""

    levels: tuple[LevelLoops, ...]
    fanouts: tuple[SpatialLoops, ...] = ()
    keep: tuple[frozenset[str], ...] | None = None
    """Per level, the tensors it keeps (the others bypass it); None keeps
    everything each level may hold. Only levels whose bypass is chosen
    (``MemoryLevel.chosen``) have a choice."""

    @classmethod
    def on_array(cls, levels, rows: dict | None = None, cols: dict | None = None, keep=None) -> "MultiLevelMapping":
        """A mapping of a hierarchy with one fan-out (the PE array)."""
        return cls(levels=tuple(levels), fanouts=(SpatialLoops(dict(rows or {}), dict(cols or {})),), keep=keep)

    def keep_sets(self, hierarchy: Hierarchy) -> tuple[frozenset[str], ...]:
        """The tensors each level keeps under this mapping."""
        return hierarchy.default_keep() if self.keep is None else self.keep

    def fanout(self, f: int) -> SpatialLoops:
        return self.fanouts[f] if f < len(self.fanouts) else SpatialLoops()

    def spatial(self, dim: str) -> int:
        """The factor of ``dim`` all fan-outs unroll together."""
        return prod(loops.factor(dim) for loops in self.fanouts)

    def factor(self, level: int, dim: str) -> int:
        return self.levels[level].factors.get(dim, 1)

    def row(self, dim: str, fanouts: int) -> tuple[int, ...]:
        """``dim``'s factor row (``rows.py``) for a hierarchy with ``fanouts`` fan-outs."""
        out = tuple(loops.factors.get(dim, 1) for loops in self.levels)
        for f in range(fanouts):
            loops = self.fanout(f)
            out += (loops.rows.get(dim, 1), loops.cols.get(dim, 1))
        return out

    def divides(self, layer: ConvLayer, fanouts: int) -> bool:
        """Whether every dimension's factors multiply to exactly its extent (no partial tile)."""
        return all(prod(self.row(d, fanouts)) == layer_extent(layer, d) for d in DIMS)

    def to_dict(self, hierarchy: Hierarchy) -> dict:
        out = {"levels": []}
        kept = self.keep_sets(hierarchy)
        for level, loops in zip(hierarchy.levels, self.levels, strict=True):
            factors = {d: int(f) for d, f in loops.factors.items() if f > 1}
            order = [d for d in loops.order if loops.factors.get(d, 1) > 1]
            entry = {"name": level.name, "factors": factors, "order": order}
            if level.chosen:  # the keep choice is the mapping's
                entry["keep"] = [t for t in ("inputs", "weights", "outputs") if t in kept[len(out["levels"])]]
            out["levels"].append(entry)
        if len(hierarchy.fanouts) == 1:
            out["spatial"] = self.fanout(0).to_dict()
        else:
            out["spatial"] = {fan.name: self.fanout(f).to_dict() for f, fan in enumerate(hierarchy.fanouts)}
        return out

    @classmethod
    def from_dict(cls, data: dict, hierarchy: Hierarchy, layer: ConvLayer) -> "MultiLevelMapping":
        """Inverse of :meth:`to_dict`; raises :class:`MappingProblems` (a
        ValueError) with a sentence per problem, every level and the spatial
        block read, or ValueError when the levels themselves are missing."""
        if not isinstance(data, dict) or "levels" not in data:
            raise ValueError("a mapping needs 'levels' (one entry per memory level) and optionally 'spatial'")
        raw_levels = data["levels"]
        if not isinstance(raw_levels, list) or len(raw_levels) != len(hierarchy.levels):
            count = len(raw_levels) if isinstance(raw_levels, list) else "no list of"
            raise ValueError(f"the hierarchy has {len(hierarchy.levels)} levels, the mapping {count}")
        levels, keep, problems = [], [], []
        problems += [f"unknown field {key!r}{field_hint(str(key), list(MAPPING_FIELDS))}" for key in data
                     if key not in MAPPING_FIELDS]
        for level, raw in zip(hierarchy.levels, raw_levels, strict=True):
            try:
                loops, kept = _level_from_dict(level, raw)
            except ValueError as exc:  # every level is read, so one message names every problem
                problems.append(str(exc))
                continue
            levels.append(loops)
            keep.append(level.holds if kept is None else kept)
        try:
            fanouts = _spatial_from_dict(data.get("spatial") or {}, hierarchy)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise MappingProblems(problems)
        keep_sets = tuple(keep)
        mapping = cls(levels=tuple(levels), fanouts=fanouts,
                      keep=None if keep_sets == hierarchy.default_keep() else keep_sets)
        problems = mapping_problems(layer, hierarchy, mapping, countable=False)
        if problems:
            raise MappingProblems(problems)
        return mapping


class MappingProblems(ValueError):
    """Every problem found in a written mapping, each a sentence of its own
    (``str`` joins them), so that a user sees them all in one run."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


LEVEL_FIELDS = ("name", "factors", "order", "keep")
"""What a level of a written mapping gives."""
MAPPING_FIELDS = ("levels", "spatial")
"""What a written mapping gives."""


def _level_from_dict(level, raw) -> tuple[LevelLoops, frozenset[str] | None]:
    """One level's loops and keep set (None: what the level may hold) from a
    written mapping; raises ValueError naming the level."""
    if not isinstance(raw, dict):
        raise ValueError(f"mapping level for {level.name!r} must be a mapping with factors and order")
    for key in raw:  # a misspelt field would silently leave its loops in the default order, say
        if key not in LEVEL_FIELDS:
            raise ValueError(f"level {level.name}: unknown field {key!r}{field_hint(str(key), list(LEVEL_FIELDS))}")
    if raw.get("name", level.name) != level.name:
        raise ValueError(f"mapping level {raw.get('name')!r} where the hierarchy has {level.name!r}")
    written = raw.get("factors") or {}
    if not isinstance(written, dict):
        raise ValueError(f"level {level.name}: factors must map dimensions to trip counts, e.g. {{P: 7, C: 4}}")
    factors = {d: whole_number(f, f"level {level.name}: factor of {d}") for d, f in written.items()}
    unknown = set(factors) - set(DIMS)
    if unknown:
        raise ValueError(f"level {level.name}: unknown dimension(s) {sorted(unknown)}")
    order = [d for d in raw.get("order", [])]
    if set(order) - set(DIMS) or len(set(order)) != len(order):
        raise ValueError(f"level {level.name}: order must name distinct dimensions of {', '.join(DIMS)}")
    order = [d for d in DIMS if d not in order] + order  # unnamed loops outermost
    loops = LevelLoops(factors={d: factors.get(d, 1) for d in DIMS}, order=tuple(order))
    kept = raw.get("keep")
    if kept is None:
        return loops, None
    if not isinstance(kept, list) or not set(kept) <= set(RELEVANT):
        raise ValueError(f"level {level.name}: keep must list tensors of {', '.join(RELEVANT)}")
    return loops, frozenset(kept)


def _spatial_from_dict(spatial, hierarchy: Hierarchy) -> tuple[SpatialLoops, ...]:
    """The ``spatial`` entry of a mapping: ``{rows, cols}`` for a hierarchy
    with one fan-out, else one such entry per fan-out name."""
    names = [fan.name for fan in hierarchy.fanouts]
    if not isinstance(spatial, dict):
        raise ValueError("spatial must map each fan-out to its rows and cols")
    if len(names) == 1 and set(spatial) <= {"rows", "cols"}:
        return (SpatialLoops.from_dict(spatial, "spatial"),)
    unknown = set(spatial) - set(names)
    if unknown:
        raise ValueError(f"spatial names {', '.join(sorted(map(str, unknown)))}; the fan-outs are {', '.join(names)}"
                         + (" (or give rows and cols directly)" if len(names) == 1 else ""))
    return tuple(SpatialLoops.from_dict(spatial.get(name) or {}, f"spatial {name}") for name in names)


def mapping_problems(layer: ConvLayer, hierarchy: Hierarchy, mapping: MultiLevelMapping,
                     countable: bool = True) -> list[str]:
    """Why ``mapping`` is not a mapping of ``layer`` (empty when it is).
    Capacity is not checked here: an overfull mapping is a mapping that does
    not fit, reported by ``evaluate``. ``countable=False`` leaves out the
    partial tiles the cost model cannot count exactly (``uncountable``): a
    written mapping with one is still a mapping of the layer, which the
    family scores as outside its space."""
    out = []
    if len(mapping.levels) != len(hierarchy.levels):
        out.append(f"{len(mapping.levels)} loop blocks for {len(hierarchy.levels)} levels")
        return out
    positive = all(f >= 1 for loops in mapping.levels for f in loops.factors.values()) and all(
        f >= 1 for loops in mapping.fanouts for f in (*loops.rows.values(), *loops.cols.values()))
    for dim in DIMS if positive else ():  # a factor below 1 is named below; a product of it says nothing more
        total = prod(mapping.factor(l, dim) for l in range(len(mapping.levels))) * mapping.spatial(dim)
        extent = layer_extent(layer, dim)
        if total < extent:
            out.append(f"factors of {dim} multiply to {_factor_product_text(hierarchy, mapping, dim)}, less than its "
                       f"extent {extent}: part of the layer would never be computed")
    if countable and positive:
        out.extend(uncountable(layer, hierarchy, mapping))
    for dim in ("R", "S"):
        if mapping.factor(0, dim) != 1:
            out.append(f"{hierarchy.levels[0].name} cannot split the filter window ({dim})")
    for level, loops in zip(hierarchy.levels, mapping.levels):
        if sorted(loops.order) != sorted(DIMS):
            out.append(f"order {list(loops.order)} must list each of {', '.join(DIMS)} once")
        low = {d: f for d, f in loops.factors.items() if f < 1}
        if low:
            out.append(f"level {level.name}: factors must be positive, got "
                       + ", ".join(f"{d}: {f}" for d, f in low.items()))
    if mapping.keep is not None:
        out.extend(hierarchy.keep_problems(mapping.keep))
    if len(mapping.fanouts) > len(hierarchy.fanouts):
        out.append(f"spatial unrolling on {len(mapping.fanouts)} fan-outs, the hierarchy has {len(hierarchy.fanouts)}")
        return out
    for f, fan in enumerate(hierarchy.fanouts):
        loops = mapping.fanout(f)
        used_rows, used_cols = prod(loops.rows.values()), prod(loops.cols.values())
        if used_rows > fan.rows or used_cols > fan.cols:
            where = "the array" if len(hierarchy.fanouts) == 1 else f"fan-out {fan.name}"
            out.append(f"spatial unrolling uses {used_rows} x {used_cols} PEs, {where} has {fan.rows} x {fan.cols}")
        if any(v < 1 for v in (*loops.rows.values(), *loops.cols.values())):
            out.append("spatial factors must be positive")
    return out


def _factor_product_text(hierarchy: Hierarchy, mapping: MultiLevelMapping, dim: str) -> str:
    """``dim``'s factors where they are written and their product ("GLB 4 x
    SPAD 5 = 20"), so that a user sees which level is short."""
    parts = [f"{level.name} {mapping.factor(i, dim)}" for i, level in enumerate(hierarchy.levels)
             if mapping.factor(i, dim) > 1]
    parts += [f"{fan.name} {loops.factor(dim)}" for fan, loops in zip(hierarchy.fanouts, mapping.fanouts)
              if loops.factor(dim) > 1]
    total = prod(mapping.factor(i, dim) for i in range(len(mapping.levels))) * mapping.spatial(dim)
    return f"{' x '.join(parts)} = {total}" if len(parts) > 1 else str(total)


def uncountable(layer: ConvLayer, hierarchy: Hierarchy, mapping: MultiLevelMapping) -> list[str]:
    """The partial tiles of a mapping of ``layer`` that the cost model cannot
    count exactly (``_collapse_problems``), one sentence each."""
    if len(mapping.fanouts) > len(hierarchy.fanouts) or len(mapping.levels) != len(hierarchy.levels):
        return []
    out = []
    for dim in DIMS:
        extent = layer_extent(layer, dim)
        if prod(mapping.factor(l, dim) for l in range(len(mapping.levels))) * mapping.spatial(dim) > extent:
            out.extend(_collapse_problems(hierarchy, mapping, dim, extent))
    return out


def _collapse_problems(hierarchy: Hierarchy, mapping: MultiLevelMapping, dim: str, extent: int) -> list[str]:
    """Why ``dim``'s partial tile cannot be counted exactly: a loop of another
    dimension outside a loop of ``dim`` that the partial tile leaves a single
    trip for some instance (``clipping.py``)."""
    from .clipping import collapsed_levels

    names = [level.name for level in hierarchy.levels]
    out = []
    for j in collapsed_levels(mapping.row(dim, len(hierarchy.fanouts)), hierarchy, extent):
        order = mapping.levels[j].order
        outside = [(i, e) for i in range(j) for e in DIMS if e not in (dim, "G") and mapping.factor(i, e) > 1]
        before = order[:list(order).index(dim)] if dim in order else ()
        outside += [(j, e) for e in before if e not in (dim, "G") and mapping.factor(j, e) > 1]
        if outside:
            i, e = outside[0]
            out.append(f"the partial last tile of {dim} leaves its loop at {names[j]} a single trip on some "
                       f"instances, with the loop of {e} at {names[i]} outside it; mapcert counts a partial tile "
                       f"exactly when such a loop lies outside every loop of another dimension")
    return out


def layer_extent(layer: ConvLayer, dim: str) -> int:
    if dim == "R":
        return layer.R
    if dim == "S":
        return layer.S
    return layer.extent(dim)


def kept_problem(problem: "MultiLevelProblem", mapping: MultiLevelMapping) -> "MultiLevelProblem":
    """``problem`` on the hierarchy with ``mapping``'s keep choices fixed:
    what the cost model and the functional model execute."""
    if mapping.keep is None and not problem.hierarchy.chooses_bypass:
        return problem
    return problem.kept(mapping.keep_sets(problem.hierarchy))


@dataclass(frozen=True)
class MultiLevelProblem:
    """A layer, a hierarchy with its array, and the objective to minimize."""

    layer: ConvLayer
    hierarchy: Hierarchy
    objective: str = "energy"
    solver: SolverSettings = field(default_factory=SolverSettings)
    source: str = "<memory>"
    constraints: MappingConstraints = NO_CONSTRAINTS
    factors: str = "divisors"
    """``divisors``: every dimension's factors multiply to its extent; ``any``:
    to at least its extent, the last tile along it partial (``clipping.py``)."""
    halo: bool = False
    """Halo reuse: an input tile the innermost input loop above its level
    moves one step keeps the rows it shares with the previous one (``halo.py``)."""
    secondary: tuple[str, ...] = ()
    """Objectives minimized after ``objective``, in order: each among the
    optima of the ones before it (lexicographic; never ``edp``)."""

    @property
    def objectives(self) -> tuple[str, ...]:
        """``objective`` and then the secondary objectives."""
        return (self.objective, *self.secondary)

    def kept(self, keep: tuple[frozenset[str], ...]) -> "MultiLevelProblem":
        """This problem with every level's keep set fixed to ``keep``."""
        return replace(self, hierarchy=self.hierarchy.kept(keep))

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.hierarchy.levels)

    @property
    def space_description(self) -> str:
        spatial = ("the array rows and columns" if len(self.hierarchy.fanouts) == 1 else
                   "the rows and columns of fan-outs " + ", ".join(f.name for f in self.hierarchy.fanouts))
        if all(f.size <= 1 for f in self.hierarchy.fanouts):  # one MAC unit: nothing to spread
            spatial = ""
        text = (
            "temporal trip counts at every level " + (f"and spatial factors on {spatial} " if spatial else "")
            + ("that multiply to each dimension's extent; " if self.factors == "divisors" else
               "that cover each dimension's extent, with at most one loop per dimension whose last iteration is "
               "partial (whole tiles inside it); ")
            + ("any loop order per level; " if not self.constraints.orders else
               "any loop order per level within the order constraints; ")
            + ("halo reuse along the innermost input loop above every level; " if self.halo else "")
            + f"{self.hierarchy.levels[0].name} never splits R or S; one resident tile per tensor and level"
        )
        chosen = [f"{level.name} ({', '.join(t for t in RELEVANT if t in level.chosen)})"
                  for level in self.hierarchy.levels if level.chosen]
        if chosen:
            text += "; keep or bypass chosen at " + ", ".join(chosen)
        if not self.hierarchy.latches:
            text += "; MAC units without operand latches (every MAC fetches its operands, as Timeloop and ZigZag count)"
        if not self.constraints.empty:
            text += f"; constraints: {self.constraints.describe(self.hierarchy)}"
        return text


@dataclass(frozen=True)
class Restriction:
    """Extra conditions a parametric search puts on one exact solve.

    EDP, and latency under per-PE bandwidth limits, are not sums of access
    counts, but with the number of busy PEs fixed the compute cycles are a
    constant, and with a cap on the cycles every bandwidth limit is linear in
    the accesses. ``multilevel_parametric.py`` walks these pieces. ``below``
    asks only for mappings whose objective is strictly smaller: "infeasible"
    then means that the piece holds none. ``caps`` holds other objectives at
    values some mapping attains, ``(name, value)`` in the objective's units:
    each at most its value (CP-SAT only; the lexicographic steps of
    ``solve.py`` hold the earlier objectives at their proved optima)."""

    pes: int | None = None
    latency_cap: int | None = None
    below: float | None = None
    caps: tuple[tuple[str, float], ...] = ()

    def admits(self, metrics) -> bool:
        """Whether an evaluated mapping satisfies the restriction."""
        return ((self.pes is None or metrics.macs // metrics.compute_cycles == self.pes)
                and (self.latency_cap is None or metrics.latency <= self.latency_cap)
                and all(metrics.objective(name) <= cap + 1e-9 * max(1.0, abs(cap)) for name, cap in self.caps))
