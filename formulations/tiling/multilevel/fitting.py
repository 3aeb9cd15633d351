"""Factor rows that cannot fit a level, whatever the other dimensions do.

A level's tile of tensor X holds the product of X's dimensions' tile
extents (for the inputs, the windows of (P, R) and (Q, S)), and every such
extent is a function of its dimension's row alone (``rows.tile_extent``),
nondecreasing in each argument. So a row of dimension ``d`` whose tile
extent at level ``l``, beside the smallest extent every other dimension's
rows offer there, already overflows ``l`` with the tensors ``l`` must hold
(those it cannot bypass), belongs to no mapping that fits: the exact models
can leave it out. A per-PE register that holds one weight, as on a
weight-stationary systolic array, keeps only the rows whose factor there
is 1 for every dimension of the weights.

Dropping rows raises the other dimensions' smallest extents, so the pass
repeats until no row goes. The capacity rule is the exact models' own
(``cpsat.py``, ``milp.py``: bits per word times the tile's words, summed
over a shared level's tensors, per tensor on a partitioned one), so the
rows left out are ones a solver would otherwise refute itself, after
presolve has expanded every table that mentions them; the brute-force
enumeration (``enumeration.py``) keeps every row and checks the
models against it.  Derivation: docs/tiling-multilevel.md, "Rows that
cannot fit".
"""

from __future__ import annotations

import numpy as np

from .cost import tile_elements
from .problem import DIMS, MultiLevelProblem, layer_extent
from .space import dim_choices


def tile_extents(table: np.ndarray, problem: MultiLevelProblem, dim: str, level: int) -> np.ndarray:
    """``min(rows.tile_extent(row, level), extent)`` of every row of ``table``."""
    hier = problem.hierarchy
    K = len(hier.levels)
    extent = np.prod(table[:, level:K], axis=1)
    for f, fan in enumerate(hier.fanouts):
        if fan.level > level:
            extent = extent * table[:, K + 2 * f] * table[:, K + 2 * f + 1]
    return np.minimum(extent, layer_extent(problem.layer, dim))


def _limits(problem: MultiLevelProblem, level: int) -> list[tuple[tuple[str, ...], int]]:
    """The capacities of ``level`` as (tensors that share it and are always held, bits)."""
    lv = problem.hierarchy.levels[level]
    held = tuple(t for t in ("inputs", "weights", "outputs") if t in lv.holds and t not in lv.chosen)
    if lv.partition_bits is not None:
        return [((t,), lv.partition_bits.get(t, 0)) for t in held]
    if lv.capacity_bits is None or not held:
        return []
    return [(held, lv.capacity_bits)]


def _overflow_text(problem: MultiLevelProblem, level: int, limits, least, bits, dim: str) -> str:
    """Why ``dim`` has no row left at ``level``: the level cannot hold even
    the smallest tiles of all dimensions together, or not with any of
    ``dim``'s tiles."""
    lv = problem.hierarchy.levels[level]
    spans = ", ".join(f"{d}={int(least[d][0])}" for d in DIMS if int(least[d][0]) > 1)
    spans = f" (even the smallest tiles there span {spans})" if spans else ""
    for tensors, capacity in limits:
        need = int(sum(bits[t] * tile_elements(problem.layer, t, least)[0] for t in tensors))
        if need > capacity:
            room = f"{lv.name}'s {tensors[0]} partition" if lv.partition_bits is not None else lv.name
            have, want = _sizes_text(capacity, need, tensors, bits)
            return (f"{room} holds {have}, and the smallest tiles of the {' and '.join(tensors)} it must hold "
                    f"need {want}{spans}")
    held = " and ".join(t for tensors, _ in limits for t in tensors)
    return (f"{lv.name} overflows: no tiling of {dim} leaves room there for the {held} it must hold, "
            f"even beside the smallest tiles of the other dimensions")


def _sizes_text(capacity_bits: int, need_bits: int, tensors, bits) -> tuple[str, str]:
    """Two sizes in the words of ``tensors`` when they share one width and
    both are whole words (as a Timeloop or ZigZag user counts a memory:
    ``4 words of 8 bits``), else both in bits."""
    widths = {bits[t] for t in tensors}
    width = widths.pop() if len(widths) == 1 else 0
    if width and capacity_bits % width == 0 and need_bits % width == 0:
        return tuple(f"{n // width:,} word{'s' * (n // width != 1)} of {width} bits"
                     for n in (capacity_bits, need_bits))
    return f"{capacity_bits:,} bits", f"{need_bits:,} bits"


def fitting_choices(problem: MultiLevelProblem) -> dict[str, np.ndarray]:
    """Per dimension, its factor rows (``space.dim_choices``) without those
    that overflow some level beside every other dimension's smallest tile.

    Parameters
    ----------
    problem : MultiLevelProblem
        The layer, hierarchy and constraints.

    Returns
    -------
    dict of str to numpy.ndarray
        Read-only row tables in ``dim_choices``'s order; a dimension may be
        left without rows, and then no mapping fits (:func:`overflow_reason`
        says where).
    """
    return _fitting(problem)[0]


def overflow_reason(problem: MultiLevelProblem) -> str | None:
    """Why no mapping fits, when the rule leaves a dimension without rows
    (None otherwise): the dimension and the level it overflows."""
    return _fitting(problem)[1]


def _fitting(problem: MultiLevelProblem) -> tuple[dict[str, np.ndarray], str | None]:
    """The pruned tables, and the reason when one ends empty."""
    layer = problem.layer
    hier = problem.hierarchy
    bits = {"inputs": layer.precision.inputs, "weights": layer.precision.weights,
            "outputs": layer.precision.psums}
    tables = {d: dim_choices(problem, d) for d in DIMS}
    levels = [(l, limits) for l in range(1, len(hier.levels)) if (limits := _limits(problem, l))]
    reason = None
    changed = all(len(table) for table in tables.values())  # an empty table is the constraints' (``emptied_by``)
    while changed and reason is None:
        changed = False
        for l, limits in levels:
            extents = {d: tile_extents(tables[d], problem, d, l) for d in DIMS}
            least = {d: np.asarray([extents[d].min()]) for d in DIMS}
            for d in DIMS:
                mine = {**least, d: extents[d]}
                fits = np.ones(len(tables[d]), dtype=bool)
                for tensors, capacity in limits:
                    need = sum(bits[t] * tile_elements(problem.layer, t, mine) for t in tensors)
                    fits &= np.broadcast_to(need, fits.shape) <= capacity
                if fits.all():
                    continue
                tables[d] = tables[d][fits]
                changed = True
                if not len(tables[d]):
                    reason = _overflow_text(problem, l, limits, least, bits, d)
                    break
                extents[d] = extents[d][fits]
                least[d] = np.asarray([extents[d].min()])
            if reason is not None:
                break
    for table in tables.values():
        table.setflags(write=False)
    return tables, reason
