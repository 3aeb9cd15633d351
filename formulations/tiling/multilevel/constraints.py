"""Mapping constraints of a hierarchy instance, in the spirit of Timeloop's.

An architect fixes part of the mapping: at a memory level, the trip counts
of some dimensions (``factors``) or dimensions whose tile there must span
the whole extent (``whole``: every loop of that dimension at this level or
above it runs once); on the array, which dimensions may be unrolled on the
rows and on the columns, fixed spatial factors, and a least fraction of
the PEs in use (``min_utilization``).

Every constraint but the utilization speaks about one dimension at a time,
so it is a filter on that dimension's factor rows (``space.dim_choices``),
which all three exact methods draw from: CP-SAT, the MILP and the
enumeration solve the constrained space with no change to their models.
The utilization is a bound on the product of the spatial factors, which
both models already carry (the number of busy PEs).  ``violations`` checks
a given mapping against all of them, so ``evaluate`` refuses a mapping
that breaks a constraint, whoever wrote it.

A constraint set can leave a dimension without any factor row;
:func:`emptying_constraint` names the first constraint that does, so that
the answer is ``infeasible`` with that constraint named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

AXES = ("rows", "cols")


@dataclass(frozen=True)
class LevelConstraint:
    """Fixed trip counts and whole dimensions at one memory level."""

    factors: tuple[tuple[str, int], ...] = ()
    whole: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpatialConstraint:
    """What the PE array may unroll: allowed dimensions and fixed factors per
    axis (None: any dimension), and a least utilization of the PEs."""

    rows: tuple[str, ...] | None = None
    cols: tuple[str, ...] | None = None
    row_factors: tuple[tuple[str, int], ...] = ()
    col_factors: tuple[tuple[str, int], ...] = ()
    min_utilization: float = 0.0


@dataclass(frozen=True)
class MappingConstraints:
    """The constraints of one instance; levels by index (outermost first)."""

    levels: tuple[tuple[int, LevelConstraint], ...] = ()
    spatial: SpatialConstraint = field(default_factory=SpatialConstraint)

    @property
    def empty(self) -> bool:
        return not self.levels and self.spatial == SpatialConstraint()

    def tests(self, level_names: tuple[str, ...], dim: str, K: int):
        """(description, predicate on a factor row of ``dim``) for every
        constraint on ``dim``; a row is (factor per level..., rows, cols)."""
        out = []
        for index, level in self.levels:
            name = level_names[index]
            for d, f in level.factors:
                if d == dim:
                    out.append((f"{name}: factor {d} = {f}", lambda r, i=index, f=f: r[i] == f))
            if dim in level.whole:
                out.append((f"{name}: {dim} whole",
                            lambda r, i=index: all(r[j] == 1 for j in range(i + 1))))
        s = self.spatial
        for axis, allowed, fixed, slot in (("rows", s.rows, s.row_factors, K), ("cols", s.cols, s.col_factors, K + 1)):
            if allowed is not None and dim not in allowed:
                out.append((f"spatial {axis}: only {', '.join(allowed) or 'no dimension'} unrolled",
                            lambda r, slot=slot: r[slot] == 1))
            for d, f in fixed:
                if d == dim:
                    out.append((f"spatial {axis}: factor {d} = {f}", lambda r, slot=slot, f=f: r[slot] == f))
        return out

    def admits_row(self, level_names: tuple[str, ...], dim: str, row) -> bool:
        K = len(level_names)
        return all(test(row) for _, test in self.tests(level_names, dim, K))

    def min_pes(self, pes: int) -> int:
        """The fewest busy PEs the utilization allows."""
        return max(1, math.ceil(self.spatial.min_utilization * pes - 1e-9)) if self.spatial.min_utilization else 1

    def describe(self, level_names: tuple[str, ...]) -> str:
        """The constraints in one phrase, for the certificate's space."""
        parts = []
        for index, level in self.levels:
            items = [f"{d}={f}" for d, f in level.factors] + [f"{d} whole" for d in level.whole]
            parts.append(f"{level_names[index]}: {', '.join(items)}")
        s = self.spatial
        for axis, allowed, fixed in (("rows", s.rows, s.row_factors), ("cols", s.cols, s.col_factors)):
            items = []
            if allowed is not None:
                items.append(f"only {'/'.join(allowed)}" if allowed else "no dimension unrolled")
            items += [f"{d}={f}" for d, f in fixed]
            if items:
                parts.append(f"array {axis}: {', '.join(items)}")
        if s.min_utilization:
            parts.append(f"at least {s.min_utilization:.0%} of the PEs busy")
        return "; ".join(parts)

    def to_dict(self, level_names: tuple[str, ...]) -> dict:
        """As the instance schema reads it."""
        out: dict = {}
        levels = {}
        for index, level in self.levels:
            entry: dict = {}
            if level.factors:
                entry["factors"] = dict(level.factors)
            if level.whole:
                entry["whole"] = list(level.whole)
            levels[level_names[index]] = entry
        if levels:
            out["levels"] = levels
        s = self.spatial
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
        if spatial:
            out["spatial"] = spatial
        return out


NO_CONSTRAINTS = MappingConstraints()


def violations(constraints: MappingConstraints, level_names: tuple[str, ...], mapping, pes: int) -> list[str]:
    """The constraints ``mapping`` breaks, one sentence each."""
    from .problem import DIMS

    K = len(level_names)
    out = []
    for dim in DIMS:
        row = tuple(mapping.factor(level, dim) for level in range(K)) + (
            mapping.spatial_rows.get(dim, 1), mapping.spatial_cols.get(dim, 1))
        out += [f"breaks the constraint {name}" for name, test in constraints.tests(level_names, dim, K)
                if not test(row)]
    busy = math.prod(mapping.spatial_rows.values()) * math.prod(mapping.spatial_cols.values())
    if busy < constraints.min_pes(pes):
        out.append(f"breaks the constraint of at least {constraints.spatial.min_utilization:.0%} of the PEs busy "
                   f"({busy} of {pes})")
    return out


def emptying_constraint(constraints: MappingConstraints, level_names: tuple[str, ...], dim: str,
                        rows: list[tuple[int, ...]]) -> str | None:
    """The first constraint after which no factor row of ``dim`` is left
    (None when some row survives them all)."""
    K = len(level_names)
    left = list(rows)
    for name, test in constraints.tests(level_names, dim, K):
        left = [r for r in left if test(r)]
        if not left:
            return name
    return None
