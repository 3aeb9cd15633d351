"""Mapping constraints of a hierarchy instance, in the spirit of Timeloop's.

An architect fixes part of the mapping: at a memory level, the trip counts
of some dimensions (``factors``), dimensions whose tile there must span
the whole extent (``whole``: every loop of that dimension at this level or
above it runs once) or the innermost loops' order (``order``, outermost
first: those loops innermost in that order, every other loop of the level
outside them; all eight fix the order, as Timeloop's ``permutation``
does, read the other way round); at a spatial fan-out (the PE array), which dimensions
may be unrolled on its rows and on its columns, fixed spatial factors, and
a least fraction of its instances in use (``min_utilization``).

Every constraint but the utilization speaks about one dimension at a time,
so it is a filter on that dimension's factor rows (``space.dim_choices``),
which all three exact methods draw from: CP-SAT, the MILP and the
enumeration solve the constrained space with no change to their models.
A utilization is a bound on the product of one fan-out's spatial
factors, which both models carry.  ``violations`` checks
a given mapping against all of them, so ``evaluate`` refuses a mapping
that breaks a constraint, whoever wrote it.

An order is not a filter on one dimension's rows: ``ordered.py`` solves
it exactly by splitting the level into one level per ordered loop.

A constraint set can leave a dimension without any factor row;
:func:`emptying_constraints` names the constraints that do, so that
the answer is ``infeasible`` with the conflict named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ....hardware.hierarchy import ARRAY


@dataclass(frozen=True)
class LevelConstraint:
    """Fixed trip counts, whole dimensions and the innermost loops' order at one memory level."""

    factors: tuple[tuple[str, int], ...] = ()
    whole: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    """The level's innermost loops, outermost first; the others lie outside them in any order."""


@dataclass(frozen=True)
class SpatialConstraint:
    """What one fan-out may unroll: allowed dimensions and fixed factors per
    axis (None: any dimension), and a least utilization of its instances."""

    rows: tuple[str, ...] | None = None
    cols: tuple[str, ...] | None = None
    row_factors: tuple[tuple[str, int], ...] = ()
    col_factors: tuple[tuple[str, int], ...] = ()
    min_utilization: float = 0.0
    one_axis: bool = False
    """Each dimension unrolled on the rows or on the columns, not on both (a
    Timeloop spatial mapping gives a dimension one factor and one axis)."""


@dataclass(frozen=True)
class MappingConstraints:
    """The constraints of one instance; levels and fan-outs by index (outermost first)."""

    levels: tuple[tuple[int, LevelConstraint], ...] = ()
    fanouts: tuple[tuple[int, SpatialConstraint], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.levels and all(c == SpatialConstraint() for _, c in self.fanouts)

    @property
    def orders(self) -> dict[int, tuple[str, ...]]:
        """Per level index, its constrained innermost loops (outermost first)."""
        return {index: level.order for index, level in self.levels if level.order}

    def conform(self, orders) -> list[tuple[str, ...]]:
        """``orders`` (one per level, outermost first) with every constrained
        level's ordered loops moved innermost, in their order: the nearest
        order the constraints allow, for searches that draw free orders."""
        fixed = self.orders
        return [tuple(order) if l not in fixed else
                tuple(d for d in order if d not in fixed[l]) + fixed[l] for l, order in enumerate(orders)]

    def tests(self, hierarchy, dim: str):
        """(description, predicate on a factor row of ``dim``) for every
        constraint on ``dim``; a row is (factor per level..., rows and cols
        per fan-out), as ``rows.py`` defines it."""
        level_names = [level.name for level in hierarchy.levels]
        K = len(level_names)
        out = []
        for index, level in self.levels:
            name = level_names[index]
            for d, f in level.factors:
                if d == dim:
                    out.append((f"{name}: factor {d} = {f}", lambda r, i=index, f=f: r[i] == f))
            if dim in level.whole:
                out.append((f"{name}: {dim} whole",
                            lambda r, i=index: all(r[j] == 1 for j in range(i + 1))))
        for f, s in self.fanouts:
            where = _fanout_label(hierarchy, f, "spatial")
            for axis, allowed, fixed, slot in (("rows", s.rows, s.row_factors, K + 2 * f),
                                               ("cols", s.cols, s.col_factors, K + 2 * f + 1)):
                if allowed is not None and dim not in allowed:
                    out.append((f"{where} {axis}: only {', '.join(allowed) or 'no dimension'} unrolled",
                                lambda r, slot=slot: r[slot] == 1))
                for d, v in fixed:
                    if d == dim:
                        out.append((f"{where} {axis}: factor {d} = {v}", lambda r, slot=slot, v=v: r[slot] == v))
            if s.one_axis:
                out.append((f"{where}: {dim} on one axis only",
                            lambda r, slot=K + 2 * f: r[slot] == 1 or r[slot + 1] == 1))
        return out

    def least_busy(self, hierarchy) -> list[tuple[int, int]]:
        """(fan-out, the fewest of its instances the utilization allows busy), where above one."""
        out = []
        for f, s in self.fanouts:
            if s.min_utilization:
                least = max(1, math.ceil(s.min_utilization * hierarchy.fanouts[f].size - 1e-9))
                if least > 1:
                    out.append((f, least))
        return out

    def describe(self, hierarchy) -> str:
        """The constraints in one phrase, for the certificate's space."""
        level_names = [level.name for level in hierarchy.levels]
        parts = []
        for index, level in self.levels:
            items = [f"{d}={f}" for d, f in level.factors] + [f"{d} whole" for d in level.whole]
            if level.order:
                items.append(order_phrase(level.order))
            if not items:
                continue
            parts.append(f"{level_names[index]}: {', '.join(items)}")
        for f, s in self.fanouts:
            where = _fanout_label(hierarchy, f)
            for axis, allowed, fixed in (("rows", s.rows, s.row_factors), ("cols", s.cols, s.col_factors)):
                items = []
                if allowed is not None:
                    items.append(f"only {'/'.join(allowed)}" if allowed else "no dimension unrolled")
                items += [f"{d}={v}" for d, v in fixed]
                if items:
                    parts.append(f"{where} {axis}: {', '.join(items)}")
            if s.min_utilization:
                parts.append(f"at least {s.min_utilization:.0%} of {_fanout_label(hierarchy, f, 'the PEs')} busy")
            if s.one_axis:
                parts.append(f"{where}: each dimension on one axis")
        return "; ".join(parts)

    def to_dict(self, hierarchy) -> dict:
        """As the instance schema reads it."""
        out: dict = {}
        levels = {}
        for index, level in self.levels:
            entry: dict = {}
            if level.factors:
                entry["factors"] = dict(level.factors)
            if level.whole:
                entry["whole"] = list(level.whole)
            if level.order:
                entry["order"] = list(level.order)
            levels[hierarchy.levels[index].name] = entry
        if levels:
            out["levels"] = levels
        fanouts = {}
        for f, s in self.fanouts:
            spatial: dict = {}
            if s.rows is not None:
                spatial["rows"] = list(s.rows)
            if s.cols is not None:
                spatial["cols"] = list(s.cols)
            if s.row_factors:
                spatial["row_factors"] = dict(s.row_factors)
            if s.col_factors:
                spatial["col_factors"] = dict(s.col_factors)
            if s.min_utilization:
                spatial["min_utilization"] = s.min_utilization
            if s.one_axis:
                spatial["one_axis"] = True
            if spatial:
                fanouts[hierarchy.fanouts[f].name] = spatial
        if len(hierarchy.fanouts) == 1 and fanouts:
            out["spatial"] = next(iter(fanouts.values()))
        elif fanouts:
            out["fanouts"] = fanouts
        return out


def order_phrase(order: tuple[str, ...]) -> str:
    """How messages say an order constraint: ``loops ... innermost, in this order``."""
    from .problem import DIMS

    if len(order) >= len(DIMS) - 1:
        return f"loop order {' > '.join(order)} (outermost first)"
    return f"{', '.join(order)} innermost, in this order"


def order_breaks(order: tuple[str, ...], loops) -> bool:
    """Whether a level's loops (``LevelLoops``) break the order constraint
    ``order``. Only loops with more than one trip count: a loop that runs
    once is no loop, wherever the order lists it. The ordered loops with
    trips must come last among the level's loops with trips, in ``order``'s
    relative order."""
    real = [d for d in loops.order if loops.factors.get(d, 1) > 1]
    fixed = [d for d in real if d in order]
    tail = real[len(real) - len(fixed):]
    return tail != [d for d in order if d in fixed]


def _fanout_label(hierarchy, f: int, single: str = ARRAY) -> str:
    """How messages name fan-out ``f``: ``single`` when it is the only one."""
    return single if len(hierarchy.fanouts) == 1 else f"fan-out {hierarchy.fanouts[f].name}"


NO_CONSTRAINTS = MappingConstraints()


def violations(constraints: MappingConstraints, hierarchy, mapping) -> list[str]:
    """The constraints ``mapping`` breaks, one sentence each."""
    from .problem import DIMS

    out = []
    for dim in DIMS:
        row = mapping.row(dim, len(hierarchy.fanouts))
        out += [f"breaks the constraint {name}" for name, test in constraints.tests(hierarchy, dim) if not test(row)]
    for index, order in constraints.orders.items():
        if order_breaks(order, mapping.levels[index]):
            out.append(f"breaks the constraint {hierarchy.levels[index].name}: {order_phrase(order)}")
    for f, least in constraints.least_busy(hierarchy):
        loops = mapping.fanout(f)
        busy = math.prod(loops.rows.values()) * math.prod(loops.cols.values())
        if busy < least:
            share = dict(constraints.fanouts)[f].min_utilization
            out.append(f"breaks the constraint of at least {share:.0%} of {_fanout_label(hierarchy, f, 'the PEs')} busy "
                       f"({busy} of {hierarchy.fanouts[f].size})")
    return out


def emptying_constraints(constraints: MappingConstraints, hierarchy, dim: str,
                         rows: list[tuple[int, ...]]) -> list[str]:
    """The constraints that together leave no factor row of ``dim`` (empty
    when some row survives them all).

    Taken in order up to the first one after which no row is left, then
    each dropped that the others do not need: what remains is a set none of
    whose members can go, so the message names the conflict (say a preset's
    "rows: only C" and an instance's "rows: factor M = 2"), not only the
    last constraint read."""
    tests = constraints.tests(hierarchy, dim)

    def empties(chosen) -> bool:
        return not any(all(test(r) for _, test in chosen) for r in rows)

    for end in range(1, len(tests) + 1):
        if empties(tests[:end]):
            chosen = tests[:end]
            for item in list(chosen):
                trial = [c for c in chosen if c is not item]
                if trial and empties(trial):
                    chosen = trial
            return [name for name, _ in chosen]
    return []
