"""CP-SAT model of multi-level tiling, with exact integer products.

Each dimension picks one row of its factorization table (temporal factor at
every level, rows and columns on every fan-out: ``rows.py``) through one
Boolean per row, so
every per-dimension quantity (a level's factor, the tile extent below it,
the trips above it, whether a loop is trivial) is linear in those Booleans.
Each level picks one of the six group orders.  Fills, tile sizes and
accesses are products across dimensions, which CP-SAT represents exactly
(``AddMultiplicationEquality``).  Whether a level's loops of X's reuse group
multiply X's fills is a Boolean ``free`` that may be true only when the
reduction rule of docs/tiling-multilevel.md allows it; minimizing makes it
true whenever it may be, so the optimum equals the cost model's.  Where the
hardware leaves keep or bypass to the mapping, a Boolean per (level,
tensor) decides it, and each fill path's terms count only when its ends
keep the tensor and every level between bypasses it (``bypass.links``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from math import lcm

from ortools.sat.python import cp_model

from .problem import DIMS, RELEVANT, REUSE_GROUPS, MultiLevelProblem, Restriction, layer_extent
from .bypass import links as fill_paths
from .clipped_cost import WINDOWS, ClippedTables, path_sides
from .cost import TENSORS, bandwidth_ratio, window_rows
from .rows import fanout_factor, tile_extent
from .space import (GROUP_ORDERS, GROUP_RANKINGS, axes_interchangeable, canonical_ranking,
                    mapping_from_choice, settled_rankings)
from .terms import boundaries, halo_value
from .fitting import fitting_choices
from ....validation.multilevel_bounds import latch_cuts, latch_servers
from .halo import AXIS_DIMS, WINDOW_DIMS, group_of, innermost_in_group

CPSAT_OBJECTIVES = ("offchip_traffic", "energy", "latency")
CPSAT_PARAMETERS = {"cp_model_probing_level": 0}
"""CP-SAT parameters of every solve of this model, the canonical run's
included (it must be the proof's own search): presolve probing is most of
the time on the large row tables and finds little the propagation does
not (docs/tiling-multilevel.md, "Presolve probing off")."""
INT_LIMIT = 2**62


def _integer_scale(values: list[float]) -> int:
    """Smallest multiplier that makes every value an integer (to 1e-6)."""
    scale = 1
    for v in values:
        scale = lcm(scale, Fraction(v).limit_denominator(10**6).denominator)
    return scale


def exact_bandwidth(level, most_words: int, most_cycles: int) -> Fraction:
    """``level``'s bandwidth as the ratio ``p / q`` the evaluation reads it
    as (``cost.bandwidth_ratio``), for the row ``q * words <= p * cycles``,
    with both sides within 64-bit integers; else a ValueError that says so
    (the MILP takes any value)."""
    ratio = bandwidth_ratio(level.bandwidth)
    if (ratio <= 0 or abs(float(ratio) - level.bandwidth) > level.bandwidth * 1e-12
            or ratio.denominator * most_words >= INT_LIMIT or ratio.numerator * most_cycles >= INT_LIMIT):
        raise ValueError(f"{level.name}'s bandwidth of {level.bandwidth:g} words per cycle cannot be held exactly "
                         "in CP-SAT's 64-bit rows with this layer's word counts; give it with fewer significant "
                         "digits or solve with method: milp")
    return ratio


def objective_scale(problem: MultiLevelProblem, objective: str | None = None) -> int:
    """Model units per unit of ``objective`` (default: the problem's): the
    model's objectives are integers (bits per byte for off-chip traffic; for
    energy and EDP, the least multiplier that makes every energy an integer)."""
    objective = objective or problem.objective
    if objective == "offchip_traffic":
        return 8
    if objective in ("energy", "edp"):
        hier = problem.hierarchy
        return _integer_scale([hier.mac_energy] + [e for lv in hier.levels for e in (lv.read_energy, lv.write_energy)])
    return 1


class _Builder:
    def __init__(self, problem: MultiLevelProblem):
        self.problem = problem
        self.layer = problem.layer
        self.hier = problem.hierarchy
        self.K = len(self.hier.levels)
        self.pe = self.hier.pe_level
        self.m = cp_model.CpModel()
        self.count = 0
        self.values: dict[int, list[int]] = {}  # variable index -> values it can take
        self.uppers: dict[int, int] = {}  # variable index -> largest value
        self.keep: list = []  # per level and tensor, the keep choice (a Boolean) or what the hardware fixes
        self.halo_dims = None  # per level, which window dimension sweeps (halo reuse only)

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def linear(self, values: list[int], choice: list, base: str):
        """An int (constant) or variable equal to values[row chosen]."""
        distinct = sorted(set(int(v) for v in values))
        if len(distinct) == 1:
            return distinct[0]
        var = self.m.NewIntVarFromDomain(cp_model.Domain.FromValues(distinct), self.name(base))
        self.m.Add(var == sum(int(v) * b for v, b in zip(values, choice, strict=True)))
        self.values[var.Index()] = distinct
        self.uppers[var.Index()] = distinct[-1]
        return var

    def product(self, factors: list, upper: int, base: str):
        constant, variables = 1, []
        for f in factors:
            if isinstance(f, int):
                constant *= f
            else:
                variables.append(f)
        if not variables:
            return constant
        if len(variables) == 1 and constant == 1:
            return variables[0]
        upper = min(upper, INT_LIMIT)
        # the whole is at most ``upper`` and the constant (at least 1) is one of its factors, so the
        # variables' product, and each partial product below (as the cap at ``upper`` already takes), is
        # at most upper // constant: declared, it keeps ``constant * product`` within int64 (an LLM-sized
        # matrix product times a 2^26 unrolling overflowed CP-SAT's check of that constraint)
        whole, upper = upper, upper // constant
        current = variables[0]
        if self.upper(current) > upper:
            narrowed = self.m.NewIntVar(min(self.lowest(current), upper), upper, self.name(base))
            self.m.Add(narrowed == current)
            self.uppers[narrowed.Index()] = upper
            current = narrowed
        for other in variables[1:]:
            # the product of the factors' largest values is a tighter bound than ``upper`` often
            reach = min(upper, self.upper(current) * self.upper(other))
            nxt = self.m.NewIntVar(0, reach, self.name(base))
            self.m.AddMultiplicationEquality(nxt, [current, other])
            self.uppers[nxt.Index()] = reach
            current = nxt
        upper = min(whole, constant * self.upper(current))
        if constant == 1:
            return current
        out = self.m.NewIntVar(0, upper, self.name(base))
        self.m.Add(out == constant * current)
        self.uppers[out.Index()] = upper
        return out

    def lowest(self, var) -> int:
        """The least value of a variable's domain, as declared."""
        return self.m.Proto().variables[var.Index()].domain[0]

    def upper(self, value) -> int:
        if isinstance(value, int):
            return value
        return self.uppers[value.Index()]

    def values_of(self, value) -> list[int]:
        """The values a table-built variable (or an int) can take."""
        return [value] if isinstance(value, int) else self.values[value.Index()]


def build_multilevel_cpsat(problem: MultiLevelProblem, restriction: Restriction | None = None):
    """Build the model; returns (builder, choice Booleans, order Booleans, objective scale, constant).
    ``restriction`` fixes the busy PEs, caps the cycles, or asks for a
    strictly smaller objective (a piece of a parametric search), and holds
    other objectives at most at given values (``Restriction.caps``; an EDP
    cap multiplies the energy by the cycles). Raises ValueError when an EDP
    cap lies beyond the model's exact integers."""
    restriction = restriction or Restriction()
    if problem.objective not in CPSAT_OBJECTIVES:
        raise ValueError(f"the CP-SAT model covers {', '.join(CPSAT_OBJECTIVES)}; edp goes through solve_multilevel")
    b = _Builder(problem)
    m, K, hier, layer = b.m, b.K, b.hier, b.layer
    rows = fitting_choices(problem)
    x = {d: [m.NewBoolVar(f"x_{d}_{i}") for i in range(len(rows[d]))] for d in DIMS}
    for d in DIMS:
        m.AddExactlyOne(x[d])
    o = [[m.NewBoolVar(f"o_{l}_{k}") for k in range(len(GROUP_ORDERS))] for l in range(K)]
    for l in range(K):
        m.AddExactlyOne(o[l])
    settled = settled_rankings(problem)
    for l, ranking in settled.items():  # the order cannot matter there
        m.Add(o[l][GROUP_RANKINGS.index(ranking)] == 1)

    # per-dimension quantities, linear in the row choice
    def col(d, fn, base):
        return b.linear([fn(r) for r in rows[d]], x[d], base)

    F = len(hier.fanouts)
    spatial = {(d, f): col(d, lambda r, f=f: fanout_factor(r, K, f), f"s{f}_{d}") for d in DIMS for f in range(F)}
    busy = []  # per fan-out, its busy instances
    for f, fan in enumerate(hier.fanouts):
        for side, size, label in ((0, fan.rows, "rows"), (1, fan.cols, "cols")):
            used = b.product([col(d, lambda r, i=K + 2 * f + side: r[i], f"s{label}{f}_{d}") for d in DIMS],
                             size, f"{label}{f}")
            if not isinstance(used, int):
                m.Add(used <= size)
        busy.append(b.product([spatial[d, f] for d in DIMS], fan.size, f"busy{f}"))
    pes_used = b.product(busy, hier.pes, "pes")
    for f, least in problem.constraints.least_busy(hier):  # the instance's least utilization of a fan-out
        if isinstance(busy[f], int):
            if busy[f] < least:
                m.AddBoolOr([])
        else:
            m.Add(busy[f] >= least)
    if restriction.pes is not None:  # fixes the compute cycles of a parametric search's piece
        if isinstance(pes_used, int):
            if pes_used != restriction.pes:
                m.AddBoolOr([])  # the empty clause: no mapping has this many busy PEs
        else:
            m.Add(pes_used == restriction.pes)

    # capacities are the only use of tile extents; the access counts use the telescoped terms
    # (clipped at the extent: a partial tile's level still holds its largest tile)
    tile = {l: {d: col(d, lambda r, l=l, d=d: min(tile_extent(r, hier, l), layer_extent(layer, d)), f"T{l}_{d}")
                for d in DIMS} for l in range(1, K)}
    factor = [{d: col(d, lambda r, l=l: r[l], f"f{l}_{d}") for d in DIMS} for l in range(K)]
    nontrivial = [{d: sum(b_ for r, b_ in zip(rows[d], x[d], strict=True) if r[l] > 1) for d in DIMS}
                  for l in range(K)]

    macs = layer.macs

    def window(axis, t_out, t_tap, base):
        """Distinct input rows of a tile, as a variable tied by a table."""
        if isinstance(t_out, int) and isinstance(t_tap, int):
            return int(window_rows(layer, axis, t_out, t_tap))
        out_values, tap_values = b.values_of(t_out), b.values_of(t_tap)
        tuples = [(p, r, int(window_rows(layer, axis, p, r))) for p in out_values for r in tap_values]
        var = m.NewIntVarFromDomain(cp_model.Domain.FromValues(sorted({t[2] for t in tuples})), b.name(base))
        b.uppers[var.Index()] = max(t[2] for t in tuples)
        keep = [not isinstance(t_out, int), not isinstance(t_tap, int), True]
        variables = [v for v, k in zip((t_out, t_tap, var), keep, strict=True) if k]
        m.AddAllowedAssignments(variables, sorted({tuple(v for v, k in zip(t, keep, strict=True) if k) for t in tuples}))
        return var

    def gated(value, literals: list, base: str):
        """``value`` when every literal is true, else 0 (a keep choice turns a term on or off)."""
        if not literals or isinstance(value, int) and value == 0:
            return value
        upper = b.upper(value)
        out = m.NewIntVar(0, upper, b.name(base))
        b.uppers[out.Index()] = upper
        m.Add(out == value).OnlyEnforceIf(literals)
        m.Add(out == 0).OnlyEnforceIf(conjunction(literals).Not())
        return out

    links: dict = {}

    def conjunction(literals: list):
        """A Boolean equal to the conjunction of ``literals``."""
        if len(literals) == 1:
            return literals[0]
        key = tuple(sorted(lit.Index() for lit in literals))
        if key not in links:
            link = m.NewBoolVar(b.name("link"))
            m.AddBoolAnd(literals).OnlyEnforceIf(link)
            m.AddBoolOr([lit.Not() for lit in literals] + [link])
            links[key] = link
        return links[key]

    def elements(tensor, t, base):
        if tensor == "weights":
            parts = [t["G"], t["M"], t["C"], t["R"], t["S"]]
            ub = layer.weight_elements
        elif tensor == "outputs":
            parts = [t["N"], t["G"], t["M"], t["P"], t["Q"]]
            ub = layer.output_elements
        else:
            parts = [t["N"], t["G"], t["C"], window("P", t["P"], t["R"], base + "rp"), window("Q", t["Q"], t["S"], base + "rq")]
            ub = layer.input_elements
        return b.product(parts, ub, base)

    # capacity
    prec = layer.precision
    bits = {"inputs": prec.inputs, "weights": prec.weights, "outputs": prec.psums}
    # keep[l][X]: True/False when the hardware fixes it, a Boolean when the mapping chooses
    keep = [{X: (m.NewBoolVar(f"keep_{l}_{X}") if X in level.chosen else X in level.holds) for X in TENSORS}
            for l, level in enumerate(hier.levels)]
    for l in range(1, K):
        level = hier.levels[l]
        tile_bits = {t: elements(t, tile[l], f"tile{l}{t[0]}") for t in level.holds}
        if level.partition_bits is not None:
            for t in level.holds:
                limit = m.Add(bits[t] * tile_bits[t] <= level.partition_bits[t])
                if t in level.chosen:
                    limit.OnlyEnforceIf(keep[l][t])
        else:
            held = [tile_bits[t] if t not in level.chosen else gated(tile_bits[t], [keep[l][t]], f"held{l}{t[0]}")
                    for t in level.holds]
            m.Add(sum(bits[t] * v for t, v in zip(level.holds, held)) <= level.capacity_bits)

    # triviality and order Booleans
    triv_group = [{X: m.NewBoolVar(f"tg_{l}_{X}") for X in TENSORS} for l in range(K)]
    triv_rel = [{X: m.NewBoolVar(f"tr_{l}_{X}") for X in TENSORS} for l in range(K)]
    for l in range(K):
        for X in TENSORS:
            m.Add(sum(nontrivial[l][d] for d in REUSE_GROUPS[X]) == 0).OnlyEnforceIf(triv_group[l][X])
            m.Add(sum(nontrivial[l][d] for d in REUSE_GROUPS[X]) >= 1).OnlyEnforceIf(triv_group[l][X].Not())
            m.Add(sum(nontrivial[l][d] for d in RELEVANT[X]) == 0).OnlyEnforceIf(triv_rel[l][X])
            m.Add(sum(nontrivial[l][d] for d in RELEVANT[X]) >= 1).OnlyEnforceIf(triv_rel[l][X].Not())
    for l in range(K):
        if l not in settled:
            _one_ranking_per_order(m, o[l], triv_group[l])

    irr = [{X: b.product([factor[l][d] for d in REUSE_GROUPS[X]], macs, f"irr{l}{X[0]}") for X in TENSORS}
           for l in range(K)]
    if problem.factors != "divisors":
        clipped = ClippedTables(problem, rows)  # the per-dimension sums of partial tiles, once per model
        _outermost_rule(problem, m, clipped, x, o, nontrivial, triv_group)

    def free_flag(l, X, j):
        """Whether level j's loops of X's reuse group keep X's tile of level
        ``l`` resident (None: they are trivial in every row)."""
        if isinstance(irr[j][X], int) and irr[j][X] == 1:
            return None
        free = free_flags.get((l, X, j))
        if free is None:
            free = m.NewBoolVar(b.name(f"free_{l}_{X}_{j}"))
            free_flags[l, X, j] = free
            for i in range(j + 1, l):
                m.AddImplication(free, triv_rel[i][X])
            for k, ranking in enumerate(GROUP_RANKINGS):
                inside = ranking[: ranking.index(X)]
                for Y in inside:
                    m.AddBoolOr([free.Not(), o[j][k].Not(), triv_group[j][Y]])
                # and free whenever it may be (the cost model's rule), so no search branches on it
                m.AddBoolOr([free, o[j][k].Not()] + [triv_group[j][Y].Not() for Y in inside]
                            + [triv_rel[i][X].Not() for i in range(j + 1, l)])
        return free

    def refetch(l, X):
        """E: the product of the reuse-group trips above ``l`` that are not free."""
        if hier.fetches_every_trip(l):  # MAC units without latches: every trip above multiplies
            return b.product([irr[j][X] for j in range(l)], macs, f"E{l}{X[0]}")
        effs = []
        for j in range(l):
            free = free_flag(l, X, j)
            if free is None:
                continue
            eff = m.NewIntVar(1, b.upper(irr[j][X]), b.name(f"eff_{l}_{X}_{j}"))
            b.uppers[eff.Index()] = b.upper(irr[j][X])
            m.Add(eff == 1).OnlyEnforceIf(free)
            m.Add(eff == irr[j][X]).OnlyEnforceIf(free.Not())
            effs.append(eff)
        return b.product(effs, macs, f"E{l}{X[0]}") if effs else 1

    free_flags: dict = {}
    row_index = {d: b.linear(list(range(len(rows[d]))), x[d], f"row_{d}") for d in DIMS}
    if axes_interchangeable(problem):
        # swapping the roles of (P, R) and (Q, S) maps a mapping to one of equal cost:
        # keep the lexicographically smaller of the two
        iP, iQ, iR, iS = (row_index[d] for d in ("P", "Q", "R", "S"))
        if not (isinstance(iP, int) or isinstance(iQ, int)):
            m.Add(iP <= iQ)
            if not (isinstance(iR, int) or isinstance(iS, int)):
                same = m.NewBoolVar("same_PQ_row")
                m.Add(iP == iQ).OnlyEnforceIf(same)
                m.Add(iP != iQ).OnlyEnforceIf(same.Not())
                m.Add(iR <= iS).OnlyEnforceIf(same)

    sweeps = _HaloSweeps(problem, m, nontrivial, o, triv_group, triv_rel) if problem.halo else None
    b.halo_dims = sweeps.dims if sweeps else None

    def halo_var(h):
        window = "R" if h.axis == "P" else "S"
        pi, wi = row_index[h.axis], row_index[window]
        options, mode = sweeps.mode(h.level, h.axis) if sweeps and not hier.fetches_every_trip(h.level) else ((), 0)
        tuples = [(i, j, k, int(halo_value(problem, h, tuple(rows[h.axis][i]), tuple(rows[window][j]),
                                           options[k - 1] if k else None)))
                  for i in range(len(rows[h.axis])) for j in range(len(rows[window])) for k in range(len(options) + 1)]
        values = sorted({t[-1] for t in tuples})
        if len(values) == 1:
            return values[0]
        var = m.NewIntVarFromDomain(cp_model.Domain.FromValues(values), b.name(f"halo{h.axis}{h.level}"))
        b.uppers[var.Index()] = values[-1]
        keep = [not isinstance(pi, int), not isinstance(wi, int), not isinstance(mode, int)]
        variables = [v for v, k in zip((pi, wi, mode), keep, strict=True) if k] + [var]
        m.AddAllowedAssignments(variables, sorted({tuple(v for v, k in zip(t, keep + [True], strict=True) if k)
                                                   for t in tuples}))
        return var

    # No access term of a mapping exceeds the MACs: a fill's words times the fills, summed over the
    # instances, is at most the product of every dimension's extent (docs/tiling-multilevel.md, "Term
    # structure"), and every partial product of the factors is at most the whole (each factor is at
    # least 1). Declaring it keeps the sum of the variables' domains within int64, which CP-SAT
    # requires (deep hierarchies have thousands of product variables).
    term_cap = max(macs, 1)

    def words_of(words):
        factors = [words.const] + [spatial[key] for key in words.spatial] + [halo_var(h) for h in words.halos]
        return b.product(factors, term_cap, "words")

    reads = [{t: [] for t in TENSORS} for _ in range(K)]
    writes = [{t: [] for t in TENSORS} for _ in range(K)]
    if problem.factors != "divisors":
        _clipped_terms(problem, b, clipped, x, row_index, keep, free_flag, gated, reads, writes, term_cap)
    for bd in (boundaries(problem) if problem.factors == "divisors" else ()):
        X, l, a = bd.tensor, bd.level, bd.parent
        E = refetch(l, X)
        parent = words_of(bd.parent_words)
        child = parent if bd.child_words == bd.parent_words else words_of(bd.child_words)
        refilled = parent if bd.refill_words == bd.parent_words else words_of(bd.refill_words)
        # the boundary exists when its ends keep X and every level between bypasses it
        literals = [keep[j][X] for j in bd.kept] + [keep[j][X].Not() for j in bd.bypassed]

        def term(factors, base, literals=literals):
            return gated(b.product(factors, term_cap, base), literals, base + "k")

        if X != "outputs":
            reads[a][X].append(term([E, parent], f"rd{l}{X[0]}"))
            if l < K:
                writes[l][X].append(term([E, child], f"wr{l}{X[0]}"))
        else:
            # revisits E - 1 >= 0 as a variable of its own keeps every term non-negative
            if isinstance(E, int):
                revisits = E - 1
            else:
                revisits = m.NewIntVar(0, b.upper(E) - 1, b.name(f"rv{l}"))
                b.uppers[revisits.Index()] = b.upper(E) - 1
                m.Add(revisits == E - 1)
            refill = term([revisits, refilled], f"rw{l}")
            writes[a][X].append(term([E, parent], f"vw{l}"))
            reads[a][X].append(refill)
            if l < K:
                writes[l][X].append(refill)
                reads[l][X].append(term([E, child], f"dr{l}"))

    def weighted(items: list, weight: int) -> tuple[list, list, int]:
        """Variables, coefficients and constant of ``weight * sum(items)``."""
        variables, coefficients, constant = [], [], 0
        for item in items:
            sign, value = item if isinstance(item, tuple) else (1, item)
            if isinstance(value, int):
                constant += weight * sign * value
            else:
                variables.append(value)
                coefficients.append(weight * sign)
        return variables, coefficients, constant

    def linear_sum(parts: list[tuple[list, int]]):
        variables, coefficients, constant = [], [], 0
        for items, weight in parts:
            v, c, k = weighted(items, weight)
            variables += v
            coefficients += c
            constant += k
        return cp_model.LinearExpr.WeightedSum(variables, coefficients), constant

    # every mapping changes its MAC units' latches at least this often (docs/tiling-multilevel.md,
    # "The latch cut"): a constraint no mapping violates, which the search's relaxation lacks
    for group, changes in latch_cuts(problem):
        served, k = linear_sum([((writes if X == "outputs" else reads)[index][X], shared)
                                for X in group for index, shared in latch_servers(problem, X)])
        m.Add(served + k >= changes)

    def latency_variable(cap: int | None):
        """Cycles L with L * busy PEs >= MACs and every bandwidth limit met in L
        (a level is busy a whole number of cycles); a private level's words
        are spread over its busy PEs."""
        horizon = macs
        most_words = {}
        for l, level in enumerate(hier.levels):
            if level.bandwidth:
                items = [i for X in TENSORS for i in reads[l][X] + writes[l][X] if not isinstance(i, tuple)]
                most_words[l] = sum(b.upper(i) for i in items)
                horizon = max(horizon, math.ceil(most_words[l] / level.bandwidth))
        horizon = min(horizon, INT_LIMIT // (2 * hier.pes))
        if cap is not None:
            horizon = max(1, min(horizon, cap))
        latency = m.NewIntVar(1, horizon, "latency")
        b.uppers[latency.Index()] = horizon
        lat_pes = b.product([latency, pes_used], horizon * hier.pes, "lat_pes")
        m.Add(lat_pes >= macs)
        if problem.factors != "divisors":  # partial tiles: the temporal iterations in which some PE works
            cycles = b.product([b.linear(list(clipped.compute(d)), x[d], f"cyc_{d}") for d in DIMS], macs, "cycles")
            m.Add(latency >= cycles)
        for l, level in enumerate(hier.levels):
            if not level.bandwidth:
                continue
            words, k = linear_sum([(reads[l][X], 1) for X in TENSORS] + [(writes[l][X], 1) for X in TENSORS])
            if most_words[l] + k <= level.bandwidth:
                continue  # it moves every word it may in one cycle: never the bottleneck
            bw = exact_bandwidth(level, most_words[l] + k, horizon * hier.pes)
            above = hier.fanouts_above(l)  # the level's words spread over its busy instances
            per = lat_pes if len(above) == F else b.product([latency] + [busy[f] for f in above],
                                                            horizon * hier.pes, f"lat_inst{l}")
            m.Add(bw.denominator * (words + k) <= bw.numerator * per)
        return latency

    latency_memo: list = []

    def latency():
        """The cycles (one variable however many objectives read it)."""
        if not latency_memo:
            latency_memo.append(latency_variable(restriction.latency_cap))
        return latency_memo[0]

    def objective_expr(objective: str):
        """(expression, constant, scale): ``objective`` in integer model units."""
        if objective == "offchip_traffic":
            final = layer.output_elements
            expr, constant = linear_sum([(reads[0]["inputs"], prec.inputs), (reads[0]["weights"], prec.weights),
                                         (reads[0]["outputs"], prec.psums), (writes[0]["outputs"], prec.psums)])
            return expr, constant + (prec.outputs - prec.psums) * final, 8  # bits -> bytes
        if objective == "energy":
            scale = objective_scale(problem, "energy")
            parts = []
            for l, level in enumerate(hier.levels):
                for X in TENSORS:
                    parts += [(reads[l][X], round(level.read_energy * scale)),
                              (writes[l][X], round(level.write_energy * scale))]
            expr, constant = linear_sum(parts)
            return expr, constant + round(layer.macs * hier.mac_energy * scale), scale
        return latency(), 0, 1

    expr, constant, scale = objective_expr(problem.objective)
    if restriction.latency_cap is not None:
        latency()
    if restriction.below is not None:
        # integer model units strictly below the given objective
        m.Add(expr + constant <= math.ceil(restriction.below * scale - 1e-9) - 1)
    for name, cap in restriction.caps:
        # at most the cap, to half a model unit (a cap is a value some mapping attains, an integer in model units)
        if name == "edp":
            _edp_cap(b, objective_expr("energy"), latency(), math.floor(cap * objective_scale(problem, "edp") + 0.5))
        else:
            capped, k, units = objective_expr(name)
            m.Add(capped + k <= math.floor(cap * units + 0.5))
    m.Minimize(expr)
    b.keep = keep
    return b, rows, x, o, scale, constant


EXACT_FLOAT = 2**53
"""Integers up to here are exact as floats: an EDP cap beyond it is refused."""


def _one_ranking_per_order(m, orders, trivial) -> None:
    """Of the rankings that differ only in where groups without a loop of
    more than one trip sit, allow one: those groups outermost, among
    themselves in ``TENSORS`` order from the inside out. The cost reads a
    ranking only through the groups ranked inside a non-trivial one
    (``free`` flags, halo sweeps, the outermost rule for partial tiles), so
    the one kept costs what the others do (docs/tiling-multilevel.md,
    "One ranking per loop order")."""
    for k, ranking in enumerate(GROUP_RANKINGS):
        for i, Y in enumerate(ranking):
            for Z in ranking[i + 1:]:  # Y ranked inside Z
                m.AddBoolOr([orders[k].Not(), trivial[Y].Not(), trivial[Z]])
                if TENSORS.index(Y) > TENSORS.index(Z):
                    m.AddBoolOr([orders[k].Not(), trivial[Y].Not(), trivial[Z].Not()])


def _edp_cap(b: _Builder, energy, latency, limit: int) -> None:
    """Energy (model units) times cycles at most ``limit``. Every mapping
    spends at least the MACs' energy and ``ceil(MACs / PEs)`` cycles, which
    bounds each factor of the product within int64."""
    m, problem = b.m, b.problem
    expr, constant, _ = energy
    if limit >= EXACT_FLOAT:
        raise ValueError(f"an EDP of {limit:,} model units is beyond the exact integers of a float (2^53); "
                         "the EDP optimum cannot be held in CP-SAT")
    least_cycles = max(1, -(-problem.layer.macs // b.hier.pes))
    top_energy = limit // least_cycles
    top_cycles = min(b.upper(latency), limit // max(1, constant))
    if top_energy < constant or top_cycles < 1:
        m.AddBoolOr([])  # no mapping reaches an EDP this low
        return
    if top_energy * top_cycles > INT_LIMIT:
        raise ValueError("the EDP cap's product exceeds the model's integer range")
    e = m.NewIntVar(constant, top_energy, b.name("edp_energy"))
    m.Add(e == expr + constant)
    cycles = m.NewIntVar(1, top_cycles, b.name("edp_cycles"))
    m.Add(cycles == latency)
    product = m.NewIntVar(0, limit, b.name("edp"))
    m.AddMultiplicationEquality(product, [e, cycles])


def _outermost_rule(problem: MultiLevelProblem, m, tables: ClippedTables, x, o, nontrivial, triv_group) -> None:
    """A loop that a partial tile leaves a single trip on some instance lies
    outside every non-trivial loop of another dimension (a G loop outside is
    harmless: G indexes every tensor): the condition under which the
    per-dimension sums are exact (``clipping.py``)."""
    hier = problem.hierarchy
    K = len(hier.levels)
    for d in DIMS:
        group = next((Y for Y in TENSORS if d in REUSE_GROUPS[Y]), None)  # G: in none, outermost at every level
        for j in range(K):
            chosen = [x[d][i] for i, collapsed in enumerate(tables.collapsed(d, j)) if collapsed]
            if not chosen:
                continue
            c = m.NewBoolVar(f"collapsed_{d}_{j}")
            m.Add(c == sum(chosen))
            for i in range(j):
                for e in DIMS:
                    if e not in (d, "G") and not isinstance(nontrivial[i][e], int):
                        m.Add(nontrivial[i][e] == 0).OnlyEnforceIf(c)
            if group is None:
                continue
            for e in REUSE_GROUPS[group][:REUSE_GROUPS[group].index(d)]:
                if not isinstance(nontrivial[j][e], int):
                    m.Add(nontrivial[j][e] == 0).OnlyEnforceIf(c)
            for k, ranking in enumerate(GROUP_RANKINGS):
                for Z in ranking[ranking.index(group) + 1:]:  # groups outside d's at level j
                    m.AddBoolOr([c.Not(), o[j][k].Not(), triv_group[j][Z]])


def _clipped_terms(problem: MultiLevelProblem, b: _Builder, tables: ClippedTables, x, row_index, keep, free_flag,
                   gated,
                   reads, writes, term_cap) -> None:
    """The access terms of the ``any`` space (``clipped_cost.py``): per fill
    path and side, a product over dimensions of table values. A dimension
    that indexes the tensor reads its row's value; one that does not reads
    (row, prefix), where the prefix counts the levels whose reuse-group
    loops re-fetch: levels ``j`` with ``free`` set lie at or below it."""
    m, hier = b.m, problem.hierarchy
    K = len(hier.levels)
    prefix_vars: dict = {}

    def prefix(l, X):
        if hier.fetches_every_trip(l):  # every level's loops re-fetch
            return l
        if (l, X) not in prefix_vars:
            p = m.NewIntVar(0, l, b.name(f"prefix_{l}_{X[0]}"))
            b.uppers[p.Index()] = l
            for j in range(l):
                free = free_flag(l, X, j)
                if free is not None:
                    m.Add(p <= j).OnlyEnforceIf(free)
                    m.Add(p >= j + 1).OnlyEnforceIf(free.Not())
            prefix_vars[l, X] = p
        return prefix_vars[l, X]

    def element(values: list[int], index_terms: list[tuple], base: str):
        """values[sum(coef * var)] as a variable (a constant when all agree)."""
        distinct = sorted(set(values))
        if len(distinct) == 1:
            return distinct[0]
        index = m.NewIntVar(0, len(values) - 1, b.name(base + "i"))
        m.Add(index == sum(c * v for c, v in index_terms))
        out = m.NewIntVarFromDomain(cp_model.Domain.FromValues(distinct), b.name(base))
        m.AddElement(index, values, out)
        b.values[out.Index()] = distinct
        b.uppers[out.Index()] = distinct[-1]
        return out

    def side_product(side, p, base):
        X, l = side.tensor, side.level
        windowed = {"P", "R", "Q", "S"} if X == "inputs" else set()
        factors = []
        for d in DIMS:
            if d in windowed:
                continue
            table = tables.dim(d, side)
            if d in RELEVANT[X] or isinstance(p, int):
                factors.append(b.linear([int(v) for v in table[:, 0 if d in RELEVANT[X] else p]], x[d], f"{base}{d}"))
                continue
            # one value per prefix, linear in the row choice; the prefix picks one of them
            options = [b.linear([int(v) for v in table[:, q]], x[d], f"{base}{d}{q}") for q in range(l + 1)]
            if all(isinstance(v, int) for v in options) and len(set(options)) == 1:
                factors.append(options[0])
                continue
            values = sorted({v for option in options for v in b.values_of(option)})
            chosen = m.NewIntVarFromDomain(cp_model.Domain.FromValues(values), b.name(f"{base}{d}"))
            m.AddElement(p, options, chosen)
            b.values[chosen.Index()] = values
            b.uppers[chosen.Index()] = values[-1]
            factors.append(chosen)
        for axis, tap in WINDOWS if X == "inputs" else ():
            pair = tables.pair(axis, side)
            factors.append(element([int(v) for v in pair.ravel()],
                                   [(pair.shape[1], row_index[axis]), (1, row_index[tap])], f"{base}{axis}"))
        return b.product(factors, term_cap, base)

    for link in fill_paths(hier):
        l, X, a = link.level, link.tensor, link.parent
        p = prefix(l, X)
        child, parent, refill = path_sides(hier, link)
        literals = [keep[j][X] for j in link.kept] + [keep[j][X].Not() for j in link.bypassed]
        parent_words = gated(side_product(parent, p, f"cp{l}{X[0]}"), literals, f"cp{l}{X[0]}k")
        child_words = gated(side_product(child, p, f"cc{l}{X[0]}"), literals, f"cc{l}{X[0]}k")
        if X != "outputs":
            reads[a][X].append(parent_words)
            if l < K:
                writes[l][X].append(child_words)
            continue
        visits, first = side_product(refill, p, f"cv{l}"), side_product(refill, 0, f"cf{l}")
        revisits = visits - first if isinstance(visits, int) and isinstance(first, int) else None
        if revisits is None:
            revisits = m.NewIntVar(0, b.upper(visits), b.name(f"crv{l}"))
            b.uppers[revisits.Index()] = b.upper(visits)
            m.Add(revisits == visits - first)
        revisits = gated(revisits, literals, f"crv{l}k")
        reads[a][X].append(revisits)
        writes[a][X].append(parent_words)
        if l < K:
            writes[l][X].append(revisits)
            reads[l][X].append(child_words)


class _HaloSweeps:
    """Which loop sweeps each level's input tile, for halo reuse (``halo.py``).

    ``dims[j][d]``: window dimension ``d`` is innermost among level ``j``'s
    loops that index the inputs (it has trips, every input loop of the group
    ranked inside its own has none, and ``d`` comes last in its group). A
    level ``l``'s tile is swept by ``(d, j)`` when ``dims[j][d]`` holds and
    every level between has no input loop with trips. Sweeping never adds
    an access, so the minimization sets these whenever the order allows."""

    def __init__(self, problem: MultiLevelProblem, m, nontrivial, o, triv_group, triv_rel):
        self.m, self.triv_rel = m, triv_rel
        K = len(problem.hierarchy.levels)
        self.dims = [{d: m.NewBoolVar(f"sweep_{j}_{d}") for d in WINDOW_DIMS} for j in range(K)]
        for j in range(K):
            m.AddAtMostOne(self.dims[j].values())
            for d, lit in self.dims[j].items():
                if isinstance(nontrivial[j][d], int):
                    m.Add(lit == 0)
                    continue
                m.Add(nontrivial[j][d] >= 1).OnlyEnforceIf(lit)
                own = group_of(d)
                other = "outputs" if own == "weights" else "weights"  # the other group of input loops
                for k, ranking in enumerate(GROUP_RANKINGS):
                    if ranking.index(other) < ranking.index(own):  # ranked inside d's group
                        m.AddBoolOr([lit.Not(), o[j][k].Not(), triv_group[j][other]])
        self.modes: dict = {}

    def mode(self, level: int, axis: str):
        """(options, mode): the sweeps ``(dim, j)`` that may move ``level``'s
        tile along ``axis``, and a variable worth ``1 + index`` of the one
        that does (0: none)."""
        if (level, axis) not in self.modes:
            m = self.m
            options = [(d, j) for j in range(level) for d in AXIS_DIMS[axis]]
            lits = []
            for d, j in options:
                lit = m.NewBoolVar(f"swept_{level}_{d}_{j}")
                m.AddImplication(lit, self.dims[j][d])
                for i in range(j + 1, level):
                    m.AddImplication(lit, self.triv_rel[i]["inputs"])
                lits.append(lit)
            m.AddAtMostOne(lits)
            mode = m.NewIntVar(0, len(options), f"sweep_mode_{level}_{axis}")
            m.Add(mode == sum((k + 1) * lit for k, lit in enumerate(lits)))
            self.modes[level, axis] = (options, mode)
        return self.modes[level, axis]


def add_hint(problem: MultiLevelProblem, b: _Builder, rows, x, o, mapping) -> None:
    """Hint CP-SAT at ``mapping`` (a mapping of the space: its rows among
    ``rows``, its orders group orders); choices it cannot express are left
    to the search."""
    K = len(problem.hierarchy.levels)
    for d in DIMS:
        row = mapping.row(d, len(problem.hierarchy.fanouts))
        for i, candidate in enumerate(rows[d]):
            b.m.AddHint(x[d][i], tuple(int(v) for v in candidate) == row)
    settled = settled_rankings(problem)
    for l in range(K):
        order = tuple(mapping.levels[l].order)
        if order in GROUP_ORDERS:
            ranking = GROUP_RANKINGS[GROUP_ORDERS.index(order)]
            if l not in settled:  # the model keeps one ranking per loop order
                factors = mapping.levels[l].factors
                ranking = canonical_ranking(ranking, {X for X in TENSORS
                                                      if all(factors.get(d, 1) == 1 for d in REUSE_GROUPS[X])})
            for k, candidate in enumerate(GROUP_RANKINGS):
                b.m.AddHint(o[l][k], candidate == ranking)
    if mapping.keep is not None:
        for l, level in enumerate(b.keep):
            for X, v in level.items():
                if not isinstance(v, bool):
                    b.m.AddHint(v, X in mapping.keep[l])


def decode(problem: MultiLevelProblem, rows, x, o, solver: cp_model.CpSolver, keep=None, halo_dims=None):
    """The mapping of a solution; ``halo_dims`` (``_HaloSweeps.dims``) puts
    each level's sweeping window dimension innermost in its group."""
    chosen = {d: rows[d][next(i for i, v in enumerate(x[d]) if solver.Value(v))] for d in DIMS}
    orders = tuple(GROUP_ORDERS[next(k for k, v in enumerate(o[l]) if solver.Value(v))]
                   for l in range(len(problem.hierarchy.levels)))
    if halo_dims is not None:
        orders = tuple(next((innermost_in_group(order, d) for d, lit in halo_dims[l].items() if solver.Value(lit)),
                            order) for l, order in enumerate(orders))
    mapping = mapping_from_choice(problem, chosen, orders)
    if keep is None or not problem.hierarchy.chooses_bypass:
        return mapping
    kept = tuple(frozenset(X for X, v in level.items() if (v if isinstance(v, bool) else solver.Value(v)))
                 for level in keep)
    return replace(mapping, keep=kept)
