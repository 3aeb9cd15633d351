"""The prime-exponent MILP in the ``factors: any`` space (partial last tiles).

With partial tiles an access count is no longer a product of trip counts,
but it is still a product over dimensions of integers (``clipping.py``): per
fill path and side, each dimension contributes one value of a table over
its factor rows and, for a dimension that does not index the tensor, the
*prefix* of levels whose loops re-fetch the tile (``clipped_cost.py``).
Every such value is an integer, so the prime-exponent construction of
``milp.py`` carries over: the exponents of a (row, prefix) value are linear
in the row Booleans and the free Booleans of the path
(``milp._PrefixTable``), and the input window's distinct rows are a table
over (P row, R row) and (Q row, S row) pairs.

Two more rules keep the counts exact, as in CP-SAT:

- the free Booleans of a fill path are monotone (a level whose group is
  free makes every level between it and the child free), which is what
  turns them into a prefix;
- a loop that a partial tile leaves one trip on some instance lies outside
  every non-trivial loop of another dimension (the *outermost rule*): other
  dimensions have no trips at the levels above it, at its own level the
  dimensions before it in its group have none, and its group is ranked
  outermost there (it is not the stationary group unless the others are
  idle, and no other group has such a loop at that level).

Derivation: docs/tiling-multilevel.md, "Imperfect factors: partial last tiles"
(its part "The MILP with partial tiles").
"""

from __future__ import annotations

from .clipped_cost import WINDOWS, ClippedTables, path_sides
from .clipping import collapsed_levels
from .bypass import links
from .problem import DIMS, RELEVANT, REUSE_GROUPS, MultiLevelProblem
from .terms import TENSORS


def free_chain(b, problem: MultiLevelProblem, rows, l: int, X: str) -> tuple:
    """The free Booleans of the levels above ``l`` for tensor ``X``, as keys
    (level ``j``'s loops of X's reuse group keep X's tile of level ``l``
    resident), with the constraints that make them a prefix.

    ``free_j`` needs every level strictly between ``j`` and ``l`` free of
    loops that index ``X`` (``("tr", i, X)``) and, where X's group has trips
    in some row at ``j``, X to be level ``j``'s stationary tensor. When
    ``free_j`` holds, level ``j + 1`` meets the conditions of ``free_{j+1}``
    in the piece where X is stationary there, and the groups that index X
    are idle there, so ``free_j <= free_{j+1}`` loses no mapping of the
    union over pieces."""
    gates = []
    for j in range(l):
        gate = ("free", l, X, j)
        if gate not in b.booleans:
            free = b.boolean(gate)
            for i in range(j + 1, l):
                b.lp.add(free <= b.boolean(("tr", i, X)))
            if any(r[j] > 1 for d in REUSE_GROUPS[X] for r in rows[d]):
                b.lp.add(free <= b.boolean(("sigma", j, X)))
        gates.append(gate)
    for low, high in zip(gates, gates[1:]):
        b.lp.add(b.boolean(low) <= b.boolean(high))
    return tuple(gates)


def clipped_access_terms(b, problem: MultiLevelProblem, rows, tables: ClippedTables, cap_at, needed, read_w,
                         write_w, tensor_w, reads, writes) -> None:
    """Append every fill path's reads and writes (in words, as expressions of
    the model) to ``reads[level][tensor]`` and ``writes[level][tensor]``.

    Per side the count is ``const * prod_d S_d``: ``const`` the extents of
    the dimensions that index the tensor (every valid index lies in one
    event), a (row, prefix) table for each dimension that does not, and for
    the inputs the (output row, tap row) tables of distinct window rows.
    ``cap_at(level, weight, const)`` is the largest value a term may take."""
    from .milp import _PrefixTable, _Table

    hier = problem.hierarchy
    K = len(hier.levels)
    pairs = dict(WINDOWS)

    def side_term(side, gates, first: bool, cap_for):
        X = side.tensor
        windowed = {"P", "R", "Q", "S"} if X == "inputs" else set()
        const, parts = 1, []
        for d in DIMS:
            if d in windowed:
                continue
            values = tables.dim(d, side)
            if d in RELEVANT[X]:
                const *= int(values[0, 0])
                continue
            keys = tuple(("x", d, i) for i in range(len(rows[d])))
            if first or gates is None:  # no loop re-fetches (prefix 0), or every one does (no latches)
                column = 0 if first else side.level
                parts.append(_Table(keys, tuple(int(v) for v in values[:, column])))
            else:
                parts.append(_PrefixTable(keys, tuple(tuple(int(v) for v in row) for row in values), gates))
        for axis, tap in pairs.items() if X == "inputs" else ():
            values = tables.pair(axis, side)
            parts.append(_Table(tuple(("pair", axis, i, k) for i in range(len(rows[axis]))
                                      for k in range(len(rows[tap]))),
                                tuple(int(v) for v in values.ravel())))
        return const * b.term(parts, cap_for(const))

    for link in links(hier):
        l, X, a = link.level, link.tensor, link.parent
        if a not in needed and l not in needed:
            continue
        # MAC units without operand latches fetch at every trip of every loop: no gates
        gates = None if hier.fetches_every_trip(l) else free_chain(b, problem, rows, l, X)
        child, parent, refill = path_sides(hier, link)
        wX = tensor_w[X]
        if X != "outputs":
            if a in needed:
                reads[a][X].append(side_term(parent, gates, False, lambda c: cap_at(a, read_w[a] * wX, c)))
            if l < K and l in needed:
                writes[l][X].append(side_term(child, gates, False, lambda c: cap_at(l, write_w[l] * wX, c)))
            continue
        # revisits read partial sums back: the events minus the first visits; only their
        # difference is in the objective, so the two terms get the natural (and bandwidth) caps
        revisits = side_term(refill, gates, False, lambda c: cap_at(a, 0, c)) \
            - side_term(refill, gates, True, lambda c: cap_at(a, 0, c))
        if a in needed:
            writes[a][X].append(side_term(parent, gates, False, lambda c: cap_at(a, write_w[a] * wX, c)))
            reads[a][X].append(revisits)
        if l < K and l in needed:
            writes[l][X].append(revisits)
            reads[l][X].append(side_term(child, gates, False, lambda c: cap_at(l, read_w[l] * wX, c)))


def outermost_rule(b, problem: MultiLevelProblem, tables: ClippedTables, rows, nontrivial) -> None:
    """A loop that a partial tile leaves a single trip on some instance lies
    outside every non-trivial loop of another dimension (G aside, which
    indexes every tensor): the condition under which the per-dimension sums
    are exact (``clipping.collapsed_positions``). At its own level this
    needs its group outermost, which the decoding writes
    (:func:`collapsed_group`) unless the group is the stationary one, where
    every other group must be idle."""
    cons = b.lp
    K = len(problem.hierarchy.levels)
    idle_linked: set = set()

    def idle(j: int, Y: str):
        key = ("idle", j, Y)
        if key not in idle_linked:
            idle_linked.add(key)
            for e in REUSE_GROUPS[Y]:
                cons.add(b.boolean(key) + nontrivial(j, e) <= 1)
        return b.boolean(key)

    for j in range(K):
        by_group: dict[str, list] = {}
        for d in DIMS:
            chosen = [b.boolean(("x", d, i)) for i, hit in enumerate(tables.collapsed(d, j)) if hit]
            if not chosen:
                continue
            c = sum(chosen)
            for i in range(j):
                for e in DIMS:
                    if e not in (d, "G"):
                        cons.add(c + nontrivial(i, e) <= 1)
            group = next((Y for Y in TENSORS if d in REUSE_GROUPS[Y]), None)  # G: outermost at every level
            if group is None:
                continue
            by_group.setdefault(group, []).append(c)
            for e in REUSE_GROUPS[group][:REUSE_GROUPS[group].index(d)]:
                cons.add(c + nontrivial(j, e) <= 1)
            for Y in TENSORS:
                if Y != group:
                    cons.add(c + b.boolean(("sigma", j, group)) <= 1 + idle(j, Y))
        groups = list(by_group)
        for g, h in ((g, h) for n, g in enumerate(groups) for h in groups[n + 1:]):
            for cg in by_group[g]:
                for ch in by_group[h]:
                    cons.add(cg + ch <= 1)  # two groups cannot both be outermost


def collapsed_group(problem: MultiLevelProblem, chosen: dict, level: int) -> str | None:
    """The reuse group with a loop at ``level`` that a partial tile leaves a
    single trip on some instance (at most one, by :func:`outermost_rule`)."""
    from .problem import layer_extent

    for d in DIMS:
        if d == "G":
            continue
        if level in collapsed_levels(chosen[d], problem.hierarchy, layer_extent(problem.layer, d)):
            return next(Y for Y in TENSORS if d in REUSE_GROUPS[Y])
    return None
