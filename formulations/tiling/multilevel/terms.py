"""Access counts of multi-level tiling as sums of short products.

For the boundary between a level ``l`` and the level ``a`` that fills it
with tensor X, the fills are the distinct tiles ``D`` times the re-fetch
multiplicity ``E`` (the non-free trip counts of X's reuse group at the
levels above). ``D`` times the words per fill telescopes:

* to the tensor's size times a replication factor: the spatial factors of
  X's reuse group, whenever the words land in, or are read from, a
  PE-private level;
* for inputs, to ``N*G*C`` times a halo factor per axis:
  ``above_P * above_R * rows(P-extent, R-extent)``. The tiles are those of
  level ``l``, or their union over the array when the fill crosses it.

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

TENSORS = ("inputs", "weights", "outputs")


@dataclass(frozen=True)
class Halo:
    """The halo factor of one axis (P with R, or Q with S) at one level."""

    axis: str            # "P" or "Q"
    level: int
    union: bool          # tile extents of the union over the array (a fill that crosses it)
    replicated: bool     # times the axis' spatial factors (words in PE-private levels)


@dataclass(frozen=True)
class Words:
    """``const * prod(s[d] for d in spatial) * prod(halos)``: the words of all
    fills of a boundary, per unit of re-fetch multiplicity."""

    const: int
    spatial: tuple[str, ...]
    halos: tuple[Halo, ...]


@dataclass(frozen=True)
class Boundary:
    level: int           # the child level (len(levels) = the MAC units)
    tensor: str
    parent: int
    parent_words: Words  # read at (or written to) the parent
    child_words: Words   # written into (or drained from) the child
    kept: tuple[int, ...] = ()      # levels whose keep choice must be "keep" for this boundary to exist
    bypassed: tuple[int, ...] = ()  # levels between whose choice must be "bypass"


def boundaries(problem: MultiLevelProblem) -> list[Boundary]:
    """Every (child, parent, tensor) boundary a mapping of ``problem`` can have
    (``bypass.links``): with keep choices, a boundary exists when its ends
    keep the tensor and every level between bypasses it."""
    layer, hier = problem.layer, problem.hierarchy
    pe = hier.pe_level
    out = []
    for link in links(hier):
        l, X, a = link.level, link.tensor, link.parent
        group = REUSE_GROUPS[X]

        def words(private: bool, union: bool) -> Words:
            spatial = tuple(group) if private and not union else ()
            if X == "inputs":
                const = layer.extent("N") * layer.extent("G") * layer.extent("C")
                halos = tuple(Halo(axis, l, union, private and not union) for axis in ("P", "Q"))
                return Words(const, spatial, halos)
            size = layer.weight_elements if X == "weights" else layer.output_elements
            return Words(size, spatial, ())

        crosses = a < pe <= l
        child = words(l >= pe, False)
        parent = words(l >= pe, True) if crosses else child
        out.append(Boundary(l, X, a, parent, child, link.kept, link.bypassed))
    return out


def halo_value(problem: MultiLevelProblem, halo: Halo, rows_p: tuple, rows_r: tuple) -> int:
    """The halo factor for one choice of factorization rows of the axis (P or
    Q) and its window dimension (R or S); rows are (factor per level...,
    spatial rows, spatial cols)."""
    K, pe = len(problem.hierarchy.levels), problem.hierarchy.pe_level
    l = halo.level

    def parts(row):
        above = prod(row[:l])
        spatial = row[K] * row[K + 1]
        tile = prod(row[l:K]) * (spatial if l < pe else 1)
        return above, spatial, tile

    above_p, s_p, t_p = parts(rows_p)
    above_r, s_r, t_r = parts(rows_r)
    if halo.union:
        # the PEs' tiles start a whole PE tile apart, so below the PE level they
        # are not one contiguous range: count the union of their rows exactly
        stride, dilation = problem.layer.stride[halo.axis == "Q"], problem.layer.dilation[halo.axis == "Q"]
        rows = union_window_rows(stride, dilation, t_p, t_r, prod(rows_p[pe:K]), prod(rows_r[pe:K]), s_p, s_r)
        return above_p * above_r * rows * (s_p * s_r if halo.replicated else 1)
    value = above_p * above_r * int(window_rows(problem.layer, halo.axis, t_p, t_r))
    if halo.replicated:
        value *= s_p * s_r
    return value


def words_value(problem: MultiLevelProblem, words: Words, rows: dict[str, tuple]) -> int:
    value = words.const
    for d in words.spatial:
        value *= rows[d][-2] * rows[d][-1]
    for halo in words.halos:
        window = "R" if halo.axis == "P" else "S"
        value *= halo_value(problem, halo, rows[halo.axis], rows[window])
    return value


def mapping_rows(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> dict[str, tuple]:
    """A mapping as one factorization row per dimension (levels..., rows, cols)."""
    K = len(problem.hierarchy.levels)
    return {d: tuple(mapping.factor(l, d) for l in range(K))
            + (mapping.spatial_rows.get(d, 1), mapping.spatial_cols.get(d, 1)) for d in DIMS}
