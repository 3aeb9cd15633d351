"""MILP of multi-level tiling (pyomo + HiGHS), exact.

Every access count is ``const * spatial * halo * E``
(``multilevel_terms.py``): a short product of one-hot table values times
the re-fetch multiplicity. The model builds each product as a chain. The
first factor is linear in the one-hot Booleans. Every further factor ``v``
chosen by a Boolean ``b`` adds ``z' >= v*z - v*U*(1-b)``, which is exact at
integer points because minimizing keeps ``z'`` tight.

- Word counts that are subtracted (the first visits of output tiles) use an
  exact two-sided linearization instead.
- A level's reuse-group trips enter ``E`` unless the ``free`` Boolean is
  set, and ``free`` obeys the same conditions as in the CP-SAT model.
- Capacities use the same chains, on tile extents.

The relaxation is weak: this is an exact reference for small and medium
instances. On full-size layers it returns an honest gap.
"""

from __future__ import annotations

import math

import pyomo.environ as pyo

from ...solvers.highs import solve_highs
from .multilevel import DIMS, RELEVANT, REUSE_GROUPS, MultiLevelProblem
from .multilevel_cost import window_rows
from .multilevel_cpsat import _integer_scale
from .multilevel_space import GROUP_ORDERS, GROUP_RANKINGS, dim_choices, mapping_from_choice
from .multilevel_terms import TENSORS, Words, boundaries, halo_value

MILP_OBJECTIVES = ("offchip_traffic", "energy", "latency")
BIG_M_LIMIT = 1e12
"""Largest big-M constant the model accepts: beyond it HiGHS' tolerances no
longer separate a chosen row from a rejected one, and answers are garbage."""


class _Chains:
    """Product chains over one-hot tables, as pyomo variables and constraints."""

    def __init__(self, model: pyo.ConcreteModel):
        self.m = model
        self.m.chain_cons = pyo.ConstraintList()
        self.count = 0

    def var(self, upper: float):
        if upper > BIG_M_LIMIT:
            raise ValueError(f"a product in the MILP reaches {upper:.1e}, beyond the {BIG_M_LIMIT:.0e} its big-M "
                             "linearization keeps exact in floating point; use cpsat for this instance")
        self.count += 1
        v = pyo.Var(domain=pyo.NonNegativeReals, bounds=(0, upper))
        self.m.add_component(f"z{self.count}", v)
        return v

    def product(self, const: float, tables: list[list[tuple]], exact: bool = False):
        """(expression, upper) of const * prod(value chosen in each table);
        a table is [(Boolean, value)] with exactly one Boolean set."""
        tables = [t for t in tables if len({v for _, v in t}) > 1 or (t and t[0][1] != 1)]
        if not tables:
            return const, const
        first, *rest = tables
        expr = sum(const * v * b for b, v in first)
        upper = const * max(v for _, v in first)
        for table in rest:
            top = max(v for _, v in table)
            nxt = self.var(upper * top)
            if exact:
                # z' = sum v * w_b with w_b = z * b exactly
                terms = []
                for b, v in table:
                    w = self.var(upper)
                    self.m.chain_cons.add(w <= upper * b)
                    self.m.chain_cons.add(w <= expr)
                    self.m.chain_cons.add(w >= expr - upper * (1 - b))
                    terms.append(v * w)
                self.m.chain_cons.add(nxt == sum(terms))
            else:
                for b, v in table:
                    self.m.chain_cons.add(nxt >= v * expr - v * upper * (1 - b))
            expr, upper = nxt, upper * top
        return expr, upper


def build_multilevel_milp(problem: MultiLevelProblem):
    if problem.objective not in MILP_OBJECTIVES:
        raise ValueError(f"the MILP covers {', '.join(MILP_OBJECTIVES)}; use enumeration for {problem.objective}")
    layer, hier = problem.layer, problem.hierarchy
    K, pe = len(hier.levels), hier.pe_level
    if problem.objective == "latency" and any(lv.bandwidth for lv in hier.levels[pe:]):
        raise ValueError("the MILP models bandwidth limits of shared levels only; use cpsat")
    rows = {d: [tuple(int(v) for v in r) for r in dim_choices(problem, d)] for d in DIMS}
    m = pyo.ConcreteModel()
    m.X = pyo.Var([(d, i) for d in DIMS for i in range(len(rows[d]))], domain=pyo.Binary)
    m.onehot = pyo.ConstraintList()
    for d in DIMS:
        m.onehot.add(sum(m.X[d, i] for i in range(len(rows[d]))) == 1)
    pairs = {"P": "R", "Q": "S"}
    m.PAIR = pyo.Var([(a, i, j) for a, w in pairs.items() for i in range(len(rows[a])) for j in range(len(rows[w]))],
                     domain=pyo.Binary)
    for a, w in pairs.items():
        for i in range(len(rows[a])):
            m.onehot.add(sum(m.PAIR[a, i, j] for j in range(len(rows[w]))) == m.X[a, i])
        for j in range(len(rows[w])):
            m.onehot.add(sum(m.PAIR[a, i, j] for i in range(len(rows[a]))) == m.X[w, j])
    m.O = pyo.Var([(l, k) for l in range(K) for k in range(len(GROUP_ORDERS))], domain=pyo.Binary)
    for l in range(K):
        m.onehot.add(sum(m.O[l, k] for k in range(len(GROUP_ORDERS))) == 1)
    chains = _Chains(m)
    cons = m.chain_cons

    def table(d, fn):
        return [(m.X[d, i], fn(r)) for i, r in enumerate(rows[d])]

    def pair_table(axis, fn):
        w = pairs[axis]
        return [(m.PAIR[axis, i, j], fn(rows[axis][i], rows[w][j]))
                for i in range(len(rows[axis])) for j in range(len(rows[w]))]

    def nontrivial(l, d):
        return sum(m.X[d, i] for i, r in enumerate(rows[d]) if r[l] > 1)

    # array
    m.array = pyo.ConstraintList()
    for axis, size in ((K, hier.rows), (K + 1, hier.cols)):
        # log-additive: prod of spatial factors <= size, with logs of integers (exact after rounding the bound)
        m.array.add(sum(math.log(r[axis]) * m.X[d, i] for d in DIMS for i, r in enumerate(rows[d]))
                    <= math.log(size) + 1e-9)

    # capacities on tile extents
    def tile_extent(l):
        return lambda r: math.prod(r[l:K]) * (r[K] * r[K + 1] if l < pe else 1)

    prec = layer.precision
    bits = {"inputs": prec.inputs, "weights": prec.weights, "outputs": prec.psums}
    for l in range(1, K):
        level = hier.levels[l]
        sizes = {}
        for X in level.holds:
            if X == "weights":
                tables = [table(d, tile_extent(l)) for d in ("G", "M", "C", "R", "S")]
            elif X == "outputs":
                tables = [table(d, tile_extent(l)) for d in ("N", "G", "M", "P", "Q")]
            else:
                ext = tile_extent(l)
                tables = [table(d, ext) for d in ("N", "G", "C")] + [
                    pair_table(a, lambda rp, rw, a=a: int(window_rows(layer, a, ext(rp), ext(rw)))) for a in pairs]
            sizes[X], _ = chains.product(1, tables)
        if level.partition_bits is not None:
            for X in level.holds:
                cons.add(bits[X] * sizes[X] <= level.partition_bits[X])
        else:
            cons.add(sum(bits[X] * sizes[X] for X in level.holds) <= level.capacity_bits)

    # triviality, order and free Booleans
    m.TG = pyo.Var([(l, X) for l in range(K) for X in TENSORS], domain=pyo.Binary)
    m.TR = pyo.Var([(l, X) for l in range(K) for X in TENSORS], domain=pyo.Binary)
    for l in range(K):
        for X in TENSORS:
            for d in REUSE_GROUPS[X]:
                cons.add(m.TG[l, X] + nontrivial(l, d) <= 1)
            for d in RELEVANT[X]:
                cons.add(m.TR[l, X] + nontrivial(l, d) <= 1)
    free_flags: dict = {}  # one Boolean per (child level, tensor, level above), shared by its chains

    def words_expr(words: Words, exact: bool):
        tables = [table(d, lambda r: r[K] * r[K + 1]) for d in words.spatial]
        for h in words.halos:
            tables.append(pair_table(h.axis, lambda rp, rw, h=h: halo_value(problem, h, rp, rw)))
        # the tensor-size constant stays out of the chain (it goes into the objective's
        # coefficient), which keeps every big-M within floating-point reach
        return chains.product(1, tables, exact=exact)

    def times_refetch(base, upper, l, X):
        z, zu = base, upper
        for j in range(l):
            group_tables = [table(d, lambda r, j=j: r[j]) for d in REUSE_GROUPS[X]]
            group_tables = [t for t in group_tables if len({v for _, v in t}) > 1]
            if not group_tables:
                continue
            y, yu = z, zu
            for t in group_tables:
                top = max(v for _, v in t)
                nxt = chains.var(yu * top)
                for b, v in t:
                    cons.add(nxt >= v * y - v * yu * (1 - b))
                y, yu = nxt, yu * top
            free = free_flags.get((l, X, j))
            if free is None:
                free = pyo.Var(domain=pyo.Binary)
                m.add_component(f"free_{l}_{X}_{j}", free)
                free_flags[l, X, j] = free
                for i in range(j + 1, l):
                    cons.add(free <= m.TR[i, X])
                for k, ranking in enumerate(GROUP_RANKINGS):
                    for Y in ranking[: ranking.index(X)]:
                        cons.add(free + m.O[j, k] - m.TG[j, Y] <= 1)
            nxt = chains.var(yu)
            cons.add(nxt >= y - yu * free)
            cons.add(nxt >= z)
            z, zu = nxt, yu
        return z

    # accesses per level and tensor, as lists of (coefficient, expression)
    reads = [{X: [] for X in TENSORS} for _ in range(K)]
    writes = [{X: [] for X in TENSORS} for _ in range(K)]
    for b in boundaries(problem):
        X, l, a = b.tensor, b.level, b.parent
        cp, cc = b.parent_words.const, b.child_words.const
        if X != "outputs":
            base, upper = words_expr(b.parent_words, exact=False)
            reads[a][X].append((cp, times_refetch(base, upper, l, X)))
            if l < K:
                base, upper = words_expr(b.child_words, exact=False)
                writes[l][X].append((cc, times_refetch(base, upper, l, X)))
        else:
            base, upper = words_expr(b.parent_words, exact=True)
            total_words = times_refetch(base, upper, l, X)
            writes[a][X].append((cp, total_words))
            reads[a][X] += [(cp, total_words), (-cp, base)]
            if l < K:
                writes[l][X] += [(cp, total_words), (-cp, base)]
                child, cu = (base, upper) if b.child_words == b.parent_words else words_expr(b.child_words, False)
                reads[l][X].append((cc, times_refetch(child, cu, l, X)))

    def total(items, weight):
        return sum(weight * c * e for c, e in items)

    objective = problem.objective
    if objective == "offchip_traffic":
        final = layer.output_elements
        expr = (prec.inputs * total(reads[0]["inputs"], 1) + prec.weights * total(reads[0]["weights"], 1)
                + prec.psums * total(reads[0]["outputs"], 1) + prec.psums * total(writes[0]["outputs"], 1))
        scale, constant = 8, (prec.outputs - prec.psums) * final
    elif objective == "energy":
        energies = [hier.mac_energy] + [e for lv in hier.levels for e in (lv.read_energy, lv.write_energy)]
        scale = _integer_scale(energies)
        expr = 0
        for l, level in enumerate(hier.levels):
            for X in TENSORS:
                expr += total(reads[l][X], round(level.read_energy * scale))
                expr += total(writes[l][X], round(level.write_energy * scale))
        constant = round(layer.macs * hier.mac_energy * scale)
    else:
        compute, cu = chains.product(1, [table(d, lambda r, d=d: math.prod(r[:K])) for d in DIMS])
        m.latency = pyo.Var(domain=pyo.NonNegativeIntegers)
        cons.add(m.latency >= compute)
        for l, level in enumerate(hier.levels):
            if level.bandwidth:
                words = sum(total(reads[l][X], 1) + total(writes[l][X], 1) for X in TENSORS)
                cons.add(level.bandwidth * m.latency >= words)
        expr, scale, constant = m.latency, 1, 0
    m.objective = pyo.Objective(expr=expr, sense=pyo.minimize)
    return m, rows, scale, constant


def decode_milp(problem: MultiLevelProblem, m, rows):
    K = len(problem.hierarchy.levels)
    chosen = {d: rows[d][max(range(len(rows[d])), key=lambda i: pyo.value(m.X[d, i]))] for d in DIMS}
    orders = tuple(GROUP_ORDERS[max(range(len(GROUP_ORDERS)), key=lambda k: pyo.value(m.O[l, k]))] for l in range(K))
    return mapping_from_choice(problem, chosen, orders)


def solve_multilevel_milp(problem: MultiLevelProblem, time_limit: float):
    m, rows, scale, constant = build_multilevel_milp(problem)
    # big-M rows multiply HiGHS' integrality tolerance by large constants: tighten it
    tight = {"mip_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9}
    outcome = solve_highs(m, lambda model: decode_milp(problem, model, rows), time_limit, integral_objective=True,
                          extra_options=tight)
    return outcome, scale, constant
