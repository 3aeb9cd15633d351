"""Access counts of multi-level tiling as sums of short products.

For the boundary between a level ``l`` and the level ``a`` that fills it
with tensor X, the fills are the distinct tiles ``D`` times the re-fetch
multiplicity ``E`` (the non-free trip counts of X's reuse group at the
levels above). ``D`` times the words per fill telescopes:

* to the tensor's size times a replication factor: the spatial factors of
  X's reuse group on every fan-out whose instances each move their own
  copy (the fan-outs above the side's level, and those between whose
  network cannot share the transfer);
* for inputs, to ``N*G*C`` times a halo factor per axis:
  ``above_P * above_R * rows(P-extent, R-extent)``. The tiles are those of
  level ``l``, or their union over the fan-outs the fill crosses.

So every access count is ``const * (spatial factors) * (halo factors) * E``,
and the exact models only multiply by a few one-hot table values
(docs/tiling-multilevel.md, "Term structure").
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from .problem import DIMS, REUSE_GROUPS, MultiLevelMapping, MultiLevelProblem
from .bypass import links
from .cost import union_window_rows, window_rows
from .halo import step_rows
from .rows import fanout_factor, tile_extent

TENSORS = ("inputs", "weights", "outputs")


@dataclass(frozen=True)
class Halo:
    """The halo factor of one axis (P with R, or Q with S) at one level."""

    axis: str                     # "P" or "Q"
    level: int
    union: tuple[int, ...]        # fan-outs whose instances' tiles are merged (a fill that crosses them)
    replicated: tuple[int, ...]   # fan-outs whose instances each count their own rows


@dataclass(frozen=True)
class Words:
    """``const * prod(s_f[d] for (d, f) in spatial) * prod(halos)``: the
    words of all fills of a boundary, per unit of re-fetch multiplicity."""

    const: int
    spatial: tuple[tuple[str, int], ...]
    halos: tuple[Halo, ...]


@dataclass(frozen=True)
class Boundary:
    level: int           # the child level (len(levels) = the MAC units)
    tensor: str
    parent: int
    parent_words: Words  # read at (or, for outputs, drained into) the parent
    child_words: Words   # written into (or drained from) the child
    refill_words: Words  # outputs: the partial sums a revisit reads back (one instance per reduction group)
    kept: tuple[int, ...] = ()      # levels whose keep choice must be "keep" for this boundary to exist
    bypassed: tuple[int, ...] = ()  # levels between whose choice must be "bypass"


def boundaries(problem: MultiLevelProblem) -> list[Boundary]:
    """Every (child, parent, tensor) boundary a mapping of ``problem`` can have
    (``bypass.links``): with keep choices, a boundary exists when its ends
    keep the tensor and every level between bypasses it.

    The words of a side replicate over the fan-outs whose instances each
    move their own copy (those above the parent, and those between whose
    network cannot share the tensor) and merge over the others between."""
    layer, hier = problem.layer, problem.hierarchy
    out = []
    for link in links(hier):
        l, X, a = link.level, link.tensor, link.parent
        group = REUSE_GROUPS[X]

        def words(replicated: tuple[int, ...], union: tuple[int, ...]) -> Words:
            spatial = tuple((d, f) for f in replicated for d in group)
            if X == "inputs":
                const = layer.extent("N") * layer.extent("G") * layer.extent("C")
                halos = tuple(Halo(axis, l, union, replicated) for axis in ("P", "Q"))
                return Words(const, spatial, halos)
            size = layer.weight_elements if X == "weights" else layer.output_elements
            return Words(size, spatial, ())

        child = parent = refill = words(hier.fanouts_above(l), ())
        crossed = hier.fanouts_between(a, l)
        if crossed:
            shared = tuple(f for f in crossed if hier.fanouts[f].shares(X))
            copied = tuple(sorted(hier.fanouts_above(a) + tuple(f for f in crossed if f not in shared)))
            parent = refill = words(copied, shared)
            if X == "outputs":
                refill = words(hier.fanouts_above(a), crossed)
        out.append(Boundary(l, X, a, parent, child, refill, link.kept, link.bypassed))
    return out


def halo_value(problem: MultiLevelProblem, halo: Halo, rows_p: tuple, rows_r: tuple,
               sweep: tuple[str, int] | None = None) -> int:
    """The halo factor for one choice of factor rows (``rows.py``) of the
    axis (P or Q) and its window dimension (R or S).

    With halo reuse, ``sweep = (dim, level)`` names the loop that sweeps the
    tile along this axis (``halo.py``): of its ``n`` trips per sweep, one
    fetches the tile and ``n - 1`` the rows a step brings in."""
    hier = problem.hierarchy
    K = len(hier.levels)
    l = halo.level

    def parts(row):
        above = prod(row[:l]) * prod(fanout_factor(row, K, f) for f in halo.replicated)
        spread = tuple((tile_extent(row, hier, hier.fanouts[f].level), fanout_factor(row, K, f)) for f in halo.union)
        return above, tile_extent(row, hier, l), spread

    above_p, t_p, spread_p = parts(rows_p)
    above_r, t_r, spread_r = parts(rows_r)
    if halo.union:
        # the instances' tiles start a whole instance tile apart, so below the fan-out's level
        # they are not one contiguous range: count the union of their rows exactly
        stride, dilation = problem.layer.stride[halo.axis == "Q"], problem.layer.dilation[halo.axis == "Q"]
        rows = union_window_rows(stride, dilation, t_p, t_r, spread_p, spread_r)
    else:
        rows = int(window_rows(problem.layer, halo.axis, t_p, t_r))
    if sweep is None:
        return above_p * above_r * rows
    dim, j = sweep
    row = rows_p if dim == halo.axis else rows_r
    n = row[j]
    step = tile_extent(row, hier, j) // n
    stride, dilation = problem.layer.stride[halo.axis == "Q"], problem.layer.dilation[halo.axis == "Q"]
    shift = (step, 0) if dim == halo.axis else (0, step)
    new = step_rows(stride, dilation, t_p, t_r, spread_p, spread_r, *shift)
    return above_p * above_r // n * (rows + (n - 1) * new)


def words_value(problem: MultiLevelProblem, words: Words, rows: dict[str, tuple]) -> int:
    K = len(problem.hierarchy.levels)
    value = words.const
    for d, f in words.spatial:
        value *= fanout_factor(rows[d], K, f)
    for halo in words.halos:
        window = "R" if halo.axis == "P" else "S"
        value *= halo_value(problem, halo, rows[halo.axis], rows[window])
    return value


def mapping_rows(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> dict[str, tuple]:
    """A mapping as one factor row per dimension (``rows.py``)."""
    return {d: mapping.row(d, len(problem.hierarchy.fanouts)) for d in DIMS}
