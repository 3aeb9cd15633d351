"""Memory hierarchies with a PE array, for multi-level loop tiling.

A hierarchy lists its memory levels outermost first.  Level 0 is off-chip
DRAM: unbounded, it holds every tensor.  Each on-chip level has a capacity
(shared by the tensors it holds, or partitioned per tensor), may hold only
some tensors (the others bypass it), and is either shared by the whole
array or private to each PE (``per_pe``).  Whether a level keeps a
tensor is either fixed by the hardware (``holds``) or a decision of the
mapping (``chosen``: the tensors the level may keep or bypass, as
Timeloop's mapper explores bypass); a mapping's keep sets turn the
hierarchy into a fixed one (``Hierarchy.kept``).

Spatial fan-outs (``Fanout``) sit between two levels, each a ``rows x cols``
mesh (Timeloop's meshY x meshX; a 1-D fan-out has one row): every level
below a fan-out has one instance per point of it, and of every fan-out
above.  The simplest hierarchy has one fan-out, the PE array, between the
last shared level and the first private one (``per_pe``), or right above
the MAC units when no level is private; ``rows`` and ``cols`` describe it.
A Simba-like chip has two: the PE array, then vector lanes inside each PE.
A fan-out's network may multicast reads (one parent read feeds every
instance that needs the word) and reduce partial sums on their way up; when
it cannot, each instance reads its own copy and writes its own partial sums.

Energies are per word accessed (one tensor element, whatever its precision)
and per MAC, in the unit the preset declares; bandwidths are words per cycle
per instance of the level (``None``: not a limit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

import yaml

from ..units import format_bytes, parse_bytes

TENSORS = ("inputs", "weights", "outputs")


class SortedFrozenset(frozenset):
    """A frozenset that iterates in sorted order.

    A frozenset of strings iterates in the order of their hashes, which
    change from one Python process to the next (``PYTHONHASHSEED``). The
    exact models are built by iterating over such sets (the tensors a level
    holds, the loops that index a tensor), so their variables came in
    another order on every run, and so did the one-worker CP-SAT
    trajectory that defines the canonical optimum: two runs of one instance
    returned two optimal mappings. Sorted iteration builds the same model
    in every process; equality, hashing and membership are a frozenset's."""

    def __iter__(self):
        return iter(sorted(frozenset.__iter__(self)))

    def __repr__(self):
        return f"SortedFrozenset({sorted(self)!r})"


@dataclass(frozen=True)
class MemoryLevel:
    """One level of the hierarchy; ``capacity_bits`` None means unbounded."""

    name: str
    capacity_bits: int | None = None
    partition_bits: dict[str, int] | None = None
    holds: frozenset[str] = frozenset(TENSORS)
    per_pe: bool = False
    chosen: frozenset[str] = frozenset()
    """Tensors of ``holds`` the mapping may bypass (keep or bypass is its
    decision); the others the level always keeps."""
    read_energy: float = 0.0
    write_energy: float = 0.0
    bandwidth: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "holds", SortedFrozenset(self.holds))
        object.__setattr__(self, "chosen", SortedFrozenset(self.chosen))

    @property
    def always_holds(self) -> frozenset[str]:
        """The tensors this level keeps in every mapping."""
        return SortedFrozenset(self.holds - self.chosen)

    def fits(self, tile_bits: dict[str, int]) -> bool:
        """Whether one tile of each held tensor fits (bits per tensor)."""
        if self.partition_bits is not None:
            return all(tile_bits[t] <= self.partition_bits.get(t, 0) for t in self.holds)
        if self.capacity_bits is None:
            return True
        return sum(tile_bits[t] for t in self.holds) <= self.capacity_bits


def overflow(name: str, capacity_bits: int | None, partition_bits: dict[str, int] | None,
             tile_bits: dict[str, int], held) -> str | None:
    """Why the tiles of the ``held`` tensors do not fit a level, naming the
    tensor and its partition when the level is split per tensor (a total
    below the level's size is no explanation there), or None when they fit."""
    if partition_bits is not None:
        over = [f"the {t} tile ({format_bytes(tile_bits[t] / 8)}) exceeds its partition "
                f"({format_bytes(partition_bits.get(t, 0) / 8)})" for t in held if tile_bits[t] > partition_bits.get(t, 0)]
        return f"{name}: {'; '.join(over)}" if over else None
    total = sum(tile_bits[t] for t in held)
    if capacity_bits is None or total <= capacity_bits:
        return None
    parts = ", ".join(f"{t} {format_bytes(tile_bits[t] / 8)}" for t in held)
    return f"{name}: tiles of {format_bytes(total / 8)} ({parts}) exceed its {format_bytes(capacity_bits / 8)}"


ARRAY = "array"
"""The name of the one fan-out a hierarchy given with ``array:`` has (the
PE array above the first per-PE level); fan-outs given under ``fanouts:``
carry their own names."""


@dataclass(frozen=True)
class Fanout:
    """A spatial fan-out right above level ``level`` (``len(levels)``: right
    above the MAC units), a ``rows x cols`` mesh of instances."""

    name: str
    level: int
    rows: int = 1
    cols: int = 1
    multicast: bool = True
    """One read of the parent feeds every instance that needs the word."""
    reduction: bool = True
    """Partial sums of instances that share an output word are added on the way up."""

    @property
    def size(self) -> int:
        return self.rows * self.cols

    @property
    def is_array(self) -> bool:
        """Whether this is the PE array of an ``array:`` hierarchy."""
        return self.name == ARRAY

    def shares(self, tensor: str) -> bool:
        """Whether the network merges the transfers of ``tensor`` that instances share."""
        return self.reduction if tensor == "outputs" else self.multicast


@dataclass(frozen=True)
class Hierarchy:
    """Memory levels (outermost first), spatial fan-outs and the MAC energy.

    ``rows`` and ``cols`` describe a single fan-out, the PE array above the
    first ``per_pe`` level; ``fanouts`` lists any number of them instead
    (then the levels below the first are the private ones)."""

    name: str
    levels: tuple[MemoryLevel, ...]
    rows: int = 1
    cols: int = 1
    mac_energy: float = 0.0
    energy_unit: str = "pJ"
    source: str = ""
    fanouts: tuple[Fanout, ...] = ()
    latches: bool = True
    """Whether each MAC unit keeps its last operand of each tensor (and its
    partial sum) and accesses a level only when it changes. False: every MAC
    reads its input and weight from the innermost level that keeps them and
    reads and updates its partial sum there, as Timeloop counts."""

    def fetches_every_trip(self, level: int) -> bool:
        """Whether ``level``'s tile is fetched anew at every iteration of the
        loops above it, whatever they index: the MAC units (level ``K``, one
        below the last memory level) when they have no operand latches."""
        return level == len(self.levels) and not self.latches

    def __post_init__(self) -> None:
        if not self.fanouts:
            object.__setattr__(self, "fanouts", (Fanout(ARRAY, self.pe_level, self.rows, self.cols),))
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Everything that makes this hierarchy unusable, as sentences."""
        out = []
        if len(self.levels) < 2:
            out.append("a hierarchy needs DRAM and at least one on-chip level")
            return out
        dram = self.levels[0]
        if dram.capacity_bits is not None or dram.partition_bits is not None:
            out.append(f"level 0 ({dram.name}) is off-chip memory and must be unbounded (levels are listed "
                       "outermost first: off-chip memory, then the on-chip buffers)")
        if dram.holds != frozenset(TENSORS):
            out.append(f"level 0 ({dram.name}) must hold every tensor")
        if dram.chosen:
            out.append(f"level 0 ({dram.name}) keeps every tensor; it cannot bypass one")
        if dram.per_pe:
            out.append(f"level 0 ({dram.name}) cannot be private to a PE")
        seen_private = False
        for level in self.levels[1:]:
            if level.capacity_bits is None and level.partition_bits is None:
                out.append(f"on-chip level {level.name} needs a capacity or a partition")
            if level.capacity_bits is not None and level.partition_bits is not None \
                    and sum(level.partition_bits.values()) > level.capacity_bits:
                out.append(f"level {level.name}: its partitions add up to {sum(level.partition_bits.values()) // 8:,} B, "
                           f"more than its capacity of {level.capacity_bits // 8:,} B")
            if seen_private and not level.per_pe:
                out.append(f"level {level.name} is shared but lies below a per-PE level")
            seen_private |= level.per_pe
            unknown = set(level.holds) - set(TENSORS)
            if unknown:
                out.append(f"level {level.name} holds unknown tensors {sorted(unknown)}")
            if not level.chosen <= level.holds:
                out.append(f"level {level.name} may bypass {sorted(level.chosen - level.holds)}, "
                           "which it cannot hold")
            if level.partition_bits is not None:
                if not level.partition_bits:
                    out.append(f"level {level.name}: its partition lists no tensor")
                missing = set(level.holds) - set(level.partition_bits)
                if missing:
                    out.append(f"level {level.name} has no partition for {', '.join(sorted(missing))}")
        if self.rows < 1 or self.cols < 1:
            out.append("the PE array needs at least one row and one column")
        out.extend(self._fanout_problems())
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            out.append(f"level names must differ, got {names}")
        return out

    def _fanout_problems(self) -> list[str]:
        out = []
        K = len(self.levels)
        positions = [f.level for f in self.fanouts]
        for fan in self.fanouts:
            if fan.rows < 1 or fan.cols < 1:
                out.append(f"fan-out {fan.name} needs at least one row and one column")
            if not 1 <= fan.level <= K:
                out.append(f"fan-out {fan.name} must lie below {self.levels[0].name} and above the MAC units")
        if positions != sorted(set(positions)):
            out.append("fan-outs must be listed outermost first, at most one between two levels "
                       "(a 2-D fan-out has rows and cols)")
        if len({f.name for f in self.fanouts}) != len(self.fanouts):
            out.append(f"fan-out names must differ, got {[f.name for f in self.fanouts]}")
        flags = [level.per_pe for level in self.levels]
        if flags != sorted(flags) or out:
            return out  # "shared below a per-PE level", or the fan-out's own problem, says it already
        first = self.fanouts[0].level if self.fanouts else K
        for index, level in enumerate(self.levels):
            if index >= first and not level.per_pe:
                out.append(f"level {level.name} lies below fan-out {self.fanouts[0].name}, so it is per-PE")
            if index < first and level.per_pe:
                out.append(f"level {level.name} is per-PE but lies above the first fan-out {self.fanouts[0].name}")
        return out

    @property
    def pe_level(self) -> int:
        """Index of the first per-PE level (``len(levels)`` when none is private):
        the outermost spatial fan-out sits right above it."""
        for index, level in enumerate(self.levels):
            if level.per_pe:
                return index
        return len(self.levels)

    @property
    def pes(self) -> int:
        """MAC units in all: the product of every fan-out's size."""
        out = 1
        for fan in self.fanouts:
            out *= fan.size
        return out

    def fanouts_above(self, level: int) -> tuple[int, ...]:
        """Indices of the fan-outs above ``level`` (``len(levels)``: the MACs);
        ``level`` has one instance per point of all of them."""
        return tuple(f for f, fan in enumerate(self.fanouts) if fan.level <= level)

    def instances(self, level: int) -> int:
        """Instances of ``level``: one per point of the fan-outs above it."""
        out = 1
        for f in self.fanouts_above(level):
            out *= self.fanouts[f].size
        return out

    def fanouts_between(self, parent: int, child: int) -> tuple[int, ...]:
        """Indices of the fan-outs a transfer from ``parent`` to ``child`` crosses."""
        return tuple(f for f, fan in enumerate(self.fanouts) if parent < fan.level <= child)

    @property
    def chain_text(self) -> str:
        """The levels outermost first with each fan-out where it sits, e.g.
        ``DRAM > GLB > [12 x 14 PEs] > RF`` or ``DRAM > GlobalBuffer >
        [PEs 4 x 4] > PEBuffer > [lanes 8 x 8] > WeightReg``."""
        parts = []
        for index in range(len(self.levels) + 1):  # an ``array:`` is the PE array; a fan-out has its own name
            parts += [f"[{fan.rows} x {fan.cols} PEs]" if fan.is_array else f"[{fan.name} {fan.rows} x {fan.cols}]"
                      for fan in self.fanouts if fan.level == index and fan.size > 1]
            if index < len(self.levels):
                parts.append(self.levels[index].name)
        return " > ".join(parts)

    @property
    def chooses_bypass(self) -> bool:
        """Whether some level's keep or bypass is a decision of the mapping."""
        return any(level.chosen for level in self.levels)

    def default_keep(self) -> tuple[frozenset[str], ...]:
        """Every level keeping every tensor it may hold (the space without bypass choices)."""
        return tuple(level.holds for level in self.levels)

    def keep_problems(self, keep: tuple[frozenset[str], ...]) -> list[str]:
        """Why ``keep`` (per level, the tensors kept) is not a keep choice of this hierarchy."""
        if len(keep) != len(self.levels):
            return [f"keep sets for {len(keep)} levels, the hierarchy has {len(self.levels)}"]
        out = []
        for level, kept in zip(self.levels, keep, strict=True):
            if not kept <= level.holds:
                out.append(f"level {level.name} cannot keep {', '.join(sorted(kept - level.holds))}")
            if not level.always_holds <= kept:
                out.append(f"level {level.name} always keeps {', '.join(sorted(level.always_holds - kept))}; "
                           "the hardware fixes it")
        return out

    def kept(self, keep: tuple[frozenset[str], ...]) -> "Hierarchy":
        """This hierarchy with the mapping's keep choices fixed: each level
        holds exactly ``keep[l]`` and chooses nothing."""
        levels = tuple(replace(level, holds=frozenset(k), chosen=frozenset())
                       for level, k in zip(self.levels, keep, strict=True))
        return replace(self, levels=levels)

    def fixed(self) -> "Hierarchy":
        """Every chosen tensor kept: the space in which the hardware decides all bypass."""
        return self.kept(self.default_keep()) if self.chooses_bypass else self

    def holder_above(self, index: int, tensor: str) -> int:
        """The nearest level above ``index`` that holds ``tensor`` (DRAM at worst)."""
        for j in range(index - 1, -1, -1):
            if tensor in self.levels[j].holds:
                return j
        raise ValueError(f"no level above {index} holds {tensor}")


# --------------------------------------------------------------------------
# presets


@lru_cache(maxsize=None)
def hierarchy_presets() -> dict[str, dict]:
    text = resources.files("mapcert.hardware").joinpath("hierarchy_presets.yaml").read_text()
    return yaml.safe_load(text)


def _bits(value) -> int:
    return int(parse_bytes(value) * 8)


def level_holdings(index: int, holds, keep, bypass, partition) -> tuple[frozenset[str], frozenset[str]]:
    """(tensors a level may hold, those of them it may bypass) from its YAML keys.

    ``holds`` fixes the level's tensors (the hardware decides). Without it
    the level may keep each tensor it has room for (its partition's tensors,
    or all three) and the mapping chooses, except the tensors ``keep``
    forces and ``bypass`` forbids (Timeloop's keep/bypass constraints).
    DRAM (level 0) keeps everything. Raises ValueError on a contradiction."""
    if holds is not None:
        if keep or bypass:
            raise ValueError("'holds' fixes what the level keeps; give either holds or keep/bypass")
        return frozenset(holds), frozenset()
    keep, bypass = frozenset(keep or ()), frozenset(bypass or ())
    if keep & bypass:
        raise ValueError(f"{', '.join(sorted(keep & bypass))} both kept and bypassed")
    if index == 0:
        if bypass:
            raise ValueError("off-chip memory keeps every tensor; it cannot bypass one")
        return frozenset(TENSORS), frozenset()
    candidates = frozenset(TENSORS) if partition is None else frozenset(partition)
    if not keep <= candidates:
        raise ValueError(f"keeps {', '.join(sorted(keep - candidates))} but has no partition for it")
    may = candidates - bypass
    return may, may - keep


MACS = "MACs"
"""The name a fan-out gives for the MAC units when it lies right above them."""


def fanouts_from(raw: list[dict], level_names: list[str]) -> tuple[Fanout, ...]:
    """Fan-outs from their YAML form: ``{name, above: LEVEL or MACs, x, y,
    multicast, reduction}`` (x: Timeloop's meshX, the columns; y: meshY, the
    rows). Raises ValueError naming the fan-out on anything off."""
    out = []
    for spec in raw:
        name = spec.get("name", "fanout")
        above = spec.get("above")
        if above == MACS:
            level = len(level_names)
        elif above in level_names:
            level = level_names.index(above)
        else:
            raise ValueError(f"fan-out {name}: 'above' must name a level ({', '.join(level_names[1:])}) "
                             f"or {MACS}, got {above!r}")
        out.append(Fanout(name=name, level=level, rows=int(spec.get("y", 1)), cols=int(spec.get("x", 1)),
                          multicast=bool(spec.get("multicast", True)), reduction=bool(spec.get("reduction", True))))
    return tuple(out)


def private_below(levels, fanouts: tuple[Fanout, ...]) -> list[MemoryLevel]:
    """``levels`` with every level below the first fan-out per-PE (named
    fan-outs place the private levels; without them ``per_pe`` does)."""
    if not fanouts:
        return list(levels)
    first = max(1, fanouts[0].level)  # DRAM is never private ("must lie below" names a fan-out above it)
    return [replace(level, per_pe=level.per_pe or index >= first) for index, level in enumerate(levels)]


def hierarchy_from_dict(name: str, raw: dict) -> Hierarchy:
    """Build a Hierarchy from its YAML form (raises ValueError on anything off)."""
    levels = []
    for index, spec in enumerate(raw["levels"]):
        partition = spec.get("partition")
        holds, chosen = level_holdings(index, spec.get("holds"), spec.get("keep"), spec.get("bypass"), partition)
        levels.append(
            MemoryLevel(
                name=spec["name"],
                capacity_bits=None if spec.get("capacity") is None else _bits(spec["capacity"]),
                partition_bits=None if partition is None else {t: _bits(v) for t, v in partition.items()},
                holds=holds,
                chosen=chosen,
                per_pe=bool(spec.get("per_pe", False)),
                read_energy=float(spec.get("read_energy", 0.0)),
                write_energy=float(spec.get("write_energy", spec.get("read_energy", 0.0))),
                bandwidth=None if spec.get("bandwidth") is None else float(spec["bandwidth"]),
            )
        )
    array = raw.get("array", {}) or {}
    fanouts = fanouts_from(raw.get("fanouts") or [], [level.name for level in levels])
    levels = private_below(levels, fanouts)
    return Hierarchy(
        name=name,
        levels=tuple(levels),
        rows=int(array.get("rows", 1)),
        cols=int(array.get("cols", 1)),
        mac_energy=float(raw.get("mac_energy", 0.0)),
        energy_unit=str(raw.get("energy_unit", "pJ")),
        source=str(raw.get("source", "")),
        fanouts=fanouts,
        latches=bool(raw.get("latches", True)),
    )


def hierarchy_preset(name: str) -> Hierarchy:
    """The named preset (KeyError if unknown)."""
    return hierarchy_from_dict(name, hierarchy_presets()[name])
