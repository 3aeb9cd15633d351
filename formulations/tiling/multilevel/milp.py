"""MILP of multi-level tiling in prime exponents (HiGHS), exact.

Every access count is ``const * spatial * halo * E``
(``multilevel_terms.py``): a product of values picked from one-hot tables.
Products of decisions are what a MILP cannot write, but every value here is
an integer, and the *prime exponents* of a product are the sums of its
factors' exponents: linear in the one-hot Booleans. So each product ``T``
is written as a choice among the integer values it can take:

    sum_v z_v = 1,    sum_v e_p(v) z_v = e_p(T) for every prime p,
    T = sum_v v z_v.

By unique factorization the exponents fix ``v``; the model is exact, in
integer arithmetic, with no big-M constant. Its relaxation is the convex
hull of the points (e(v), v), far tighter than chained big-M products.

- A level's reuse-group trips enter ``E`` unless the ``free`` Boolean is
  set; ``free`` obeys the same rules as in the CP-SAT model, and its gated
  exponents are linearized exactly (binary times a bounded integer).
- Capacities and the array size are products too: a tile's or the array's
  values above the capacity are simply not offered.
- With a known mapping of objective ``U`` (``incumbent``), a term whose
  value alone would push the objective above ``U`` is not offered either:
  no mapping better than ``U`` needs it, so the proof stays a proof.
- With halo reuse, a level's sweeping window dimension is a Boolean too,
  and each halo factor a one-hot table over (P or Q row, R or S row, the
  loop that sweeps the tile): still a choice among integer values.

Derivation and the value sets: docs/tiling-multilevel.md, "The MILP in
prime exponents".
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from numbers import Real

import numpy as np

from ....solvers.highs import objective_scale, run_highs
from ....solvers.linear_model import INFINITY, Column, Linear, LinearModel, Row
from ....solvers.outcome import SolverOutcome
from ....validation.multilevel_bounds import latch_cuts, latch_servers
from .problem import DIMS, RELEVANT, REUSE_GROUPS, MultiLevelProblem, Restriction, layer_extent
from .cost import window_rows
from .cpsat import _integer_scale
from .rows import collapse_splits, fanout_factor, spatial_factor, tile_extent as row_tile_extent
from .space import axes_interchangeable, group_order, mapping_from_choice, settled_rankings
from .terms import TENSORS, Halo, Words, boundaries, halo_value
from .halo import AXIS_DIMS, WINDOW_DIMS, group_of, innermost_in_group
from .clipped_cost import ClippedTables
from .fitting import fitting_choices
from .milp_clipped import clipped_access_terms, collapsed_group, outermost_rule
from .milp_pieces import MIP_OPTIONS, PieceModel, PieceResult, piece_processes, solve_pieces

MILP_OBJECTIVES = ("offchip_traffic", "energy", "latency")
WHOLE_MODEL_SHARE, WHOLE_MODEL_SECONDS = 0.25, 0.0
"""The undecomposed model may get this share of the time limit (at most
this many seconds) before the decomposition over stationary tensors
starts. By default it gets none: on ResNet-18 on ``eyeriss`` it proved no
layer in 1 s, 4 s or 30 s, and the pieces' relaxations bound a search cut
short as well (docs/tiling-multilevel.md, "Exact methods": the median
went from 13.4 s with 4 s to 11.7 s with 1 s, and once the pieces were
solved in HiGHS directly, 8 of the layers took 38.3 s in all without the
whole model against 45.5 s with 1 s)."""
MAX_VALUES = 400_000
"""Most candidate values (z Booleans) the model accepts in all; beyond it
the instance is too large for this formulation and CP-SAT is the method."""
POLISHED_OBJECTIVES = ("energy", "offchip_traffic", "latency")
"""Objectives whose starting incumbent is improved by coordinate descent
(the vectorized cost model scores each of them)."""
KEEP_SET_POOL_AFTER = 5.0
"""The keep sets after the first are solved side by side (one process per
core) only when the first took at least this many seconds: a pool costs
about a second to start, which short solves should not pay."""


@lru_cache(maxsize=65536)
def factorize(n: int) -> tuple[tuple[int, int], ...]:
    """(prime, exponent) pairs of ``n`` >= 1."""
    out, p = [], 2
    while p * p <= n:
        e = 0
        while n % p == 0:
            n //= p
            e += 1
        if e:
            out.append((p, e))
        p += 1
    if n > 1:
        out.append((n, 1))
    return tuple(out)


@dataclass(frozen=True)
class _Table:
    """A one-hot choice: value ``values[i]`` when Boolean ``keys[i]`` is set.
    ``gate`` (a key of a free Boolean) replaces the value by 1 when set."""

    keys: tuple
    values: tuple[int, ...]
    gate: tuple | None = None


@dataclass(frozen=True)
class _PrefixTable:
    """A row choice whose value also depends on a *prefix*: ``values[i][q]``
    when row Boolean ``keys[i]`` is set and the loops of the first ``q``
    levels re-fetch (partial tiles, ``milp_clipped.py``). ``gates[q - 1]``
    is the free Boolean of level ``q - 1``; the free Booleans of a fill
    path are monotone (set from the prefix on), so the prefix is at least
    ``q`` exactly when ``gates[q - 1]`` is clear. The exponent telescopes:

        e_p = sum_i e_p(values[i][0]) x_i
              + sum_q sum_i (e_p(values[i][q]) - e_p(values[i][q-1])) (x_i and not gates[q-1]),

    exact at integer points with the same disaggregated rows as a gated table."""

    keys: tuple
    table: tuple[tuple[int, ...], ...]
    gates: tuple

    @cached_property
    def values(self) -> tuple[int, ...]:
        return tuple(sorted({v for row in self.table for v in row}))

    @property
    def gate(self) -> None:
        return None

    def exponent(self, model: "_Model", p: int):
        total = 0
        for key, row in zip(self.keys, self.table, strict=True):
            e = [dict(factorize(v)).get(p, 0) for v in row]
            if e[0]:
                total += e[0] * model.boolean(key)
            for q in range(1, len(row)):
                if e[q] != e[q - 1]:
                    total += (e[q] - e[q - 1]) * model.gated_row(key, self.gates[q - 1])
        return total


class _Model:
    """The linear model (``solvers/linear_model.py``) plus the lattice-term machinery."""

    def __init__(self, deadline: float | None = None):
        self.deadline = deadline
        self.lp = LinearModel()
        """Columns and rows (``lp.add(row)``)."""
        self.booleans: dict[tuple, Column] = {}
        self.terms: dict[tuple, object] = {}
        self.gated: dict[tuple, object] = {}
        self.z_count = 0
        self.splits: dict[tuple[str, int], list[tuple[int, int, int]]] = {}  # per dimension, fan-out: (s, rows, cols)
        self.objective_scale = 1.0
        """What the model's objective multiplies the model units by (``objective_scale``)."""
        self.cutoff_row: int | None = None
        """The row "objective in model units <= cutoff" (unbounded until a piece sets it)."""
        self.cutoff_constant = 0.0
        """The constant part of the objective in model units, which the cutoff row's bound leaves out."""

    def boolean(self, key: tuple) -> Column:
        var = self.booleans.get(key)
        if var is None:
            var = self.lp.binary()
            self.booleans[key] = var
        return var

    def continuous(self, lower: float, upper: float) -> Column:
        return self.lp.column(lower, upper)

    def __getstate__(self):
        """What a pool process needs to solve pieces: the model's arrays and
        the Booleans' columns, not the expressions they were built from."""
        state = dict(self.__dict__)
        state.update(terms={}, gated={}, deadline=None)
        return state

    def value(self, values, key: tuple) -> float:
        """The value of ``key``'s Boolean in a solution's column ``values`` (0 when the model has none)."""
        var = self.booleans.get(key)
        return 0.0 if var is None else float(values[var.index])

    def set_cutoff(self, highs, cutoff: float | None) -> None:
        """Only mappings of at most ``cutoff`` model units (None: any)."""
        if self.cutoff_row is not None:
            upper = INFINITY if cutoff is None else cutoff - self.cutoff_constant
            highs.changeRowBounds(self.cutoff_row, -INFINITY, upper)

    def gated_row(self, key: tuple, gate: tuple):
        """``key``'s Boolean and not ``gate``'s, as a continuous variable
        that is exact at integer points (y <= x, y <= 1 - free, y >= x - free)."""
        y = self.gated.get((key, gate))
        if y is None:
            x, free = self.boolean(key), self.boolean(gate)
            y = self.continuous(0, 1)
            self.lp.add(y <= x)
            self.lp.add(y <= 1 - free)
            self.lp.add(y >= x - free)
            self.gated[key, gate] = y
        return y

    def exponent(self, table, p: int):
        """Exponent of prime ``p`` in the table's value, linear in its Booleans."""
        if isinstance(table, _PrefixTable):
            return table.exponent(self, p)
        if table.gate is None:
            return sum(dict(factorize(v)).get(p, 0) * self.boolean(k) for k, v in zip(table.keys, table.values, strict=True))
        # rows disaggregated: y_i = x_i and not free, so that a half-set free
        # Boolean cannot cancel a whole exponent (tighter than one big-M row)
        total = 0
        for k, v in zip(table.keys, table.values, strict=True):
            e = dict(factorize(v)).get(p, 0)
            if e == 0:
                continue
            total += e * self.gated_row(k, table.gate)
        return total

    def term(self, tables: list[_Table], cap: int):
        """``prod(table values)`` as sum_v v z_v, offering the values <= ``cap``;
        raises _NoValue when none is, which makes the model infeasible, and
        _OutOfTime past the deadline."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise _OutOfTime
        tables = [t for t in tables if len(set(t.values)) > 1 or t.values[0] != 1 or t.gate is not None]
        key = (tuple(tables), cap)
        if key in self.terms:
            return self.terms[key]
        reach: dict[tuple, int] = {(): 1}  # sorted (prime, exponent) tuple -> value
        for table in tables:
            options = {factorize(v): v for v in table.values}
            if table.gate is not None:
                options[()] = 1
            nxt: dict[tuple, int] = {}
            for vec, val in reach.items():
                for ovec, oval in options.items():
                    value = val * oval
                    if value <= cap:
                        nxt[_merge(vec, ovec)] = value
            reach = nxt
            if len(reach) > MAX_VALUES:
                break
        self.z_count += len(reach)
        if self.z_count > MAX_VALUES:
            raise ValueError(f"the prime-exponent MILP needs more than {MAX_VALUES:,} candidate values for this "
                             "instance; use cpsat")
        if not reach:
            raise _NoValue
        values = list(reach.items())
        primes = sorted({p for vec, _ in values for p, _ in vec} | {p for t in tables for v in t.values
                                                                    for p, _ in factorize(v)})
        if len(values) == 1:
            # one value left: no choice to make, but the tables must still produce it
            (vec, value), = values
            for p in primes:
                self.lp.add(sum(self.exponent(t, p) for t in tables) == dict(vec).get(p, 0))
            self.terms[key] = value
            return value
        z = [self.lp.binary().index for _ in values]
        self.lp.add(Linear(dict.fromkeys(z, 1.0)) == 1)
        for p in primes:
            self.lp.add(Linear({z[i]: float(e) for i, (vec, _) in enumerate(values) if (e := dict(vec).get(p, 0))})
                          == sum(self.exponent(t, p) for t in tables))
        expr = Linear({z[i]: float(val) for i, (_, val) in enumerate(values)})
        self.terms[key] = expr
        return expr


class _NoValue(Exception):
    """A term has no value within its cap: the model is infeasible."""


class _OutOfTime(Exception):
    """The deadline passed while the model was being built."""


def _merge(a: tuple, b: tuple) -> tuple:
    out = dict(a)
    for p, e in b:
        out[p] = out.get(p, 0) + e
    return tuple(sorted(out.items()))


def build_multilevel_milp(problem: MultiLevelProblem, incumbent: float | None = None,
                          restriction: Restriction | None = None, deadline: float | None = None):
    """Build the model; returns (model, builder, rows, scale, constant) or raises
    ValueError (objective or size not covered) / _NoValue (infeasible) /
    _OutOfTime (``deadline``, in perf_counter seconds, passed).
    ``incumbent`` is the objective (in its own units) of a known mapping that
    satisfies ``restriction``, or the restriction's ``below``: no term larger
    than such a mapping could afford is offered."""
    if problem.objective not in MILP_OBJECTIVES:
        raise ValueError(f"the MILP covers {', '.join(MILP_OBJECTIVES)}; edp goes through solve_multilevel")
    if problem.hierarchy.chooses_bypass:
        raise ValueError("the MILP is built for fixed keep sets; solve_multilevel_milp takes the union over them")
    restriction = restriction or Restriction()
    layer, hier = problem.layer, problem.hierarchy
    K, pe = len(hier.levels), hier.pe_level
    timed = problem.objective == "latency" or restriction.latency_cap is not None
    if timed and restriction.pes is None and any(lv.bandwidth for lv in hier.levels[pe:]):
        # words <= bandwidth * cycles * busy PEs is bilinear unless the busy PEs are fixed
        raise ValueError("a per-PE bandwidth limit needs the busy PEs fixed (solve_multilevel does this)")
    if timed and any(lv.bandwidth and 0 < len(hier.fanouts_above(l)) < len(hier.fanouts)
                     for l, lv in enumerate(hier.levels)):
        raise ValueError("a bandwidth limit on a level between two fan-outs is not linear here; use cpsat")

    def busy_instances(level: int) -> int:
        """Busy instances of ``level``: one above every fan-out, the fixed busy PEs below all of them."""
        return 1 if not hier.fanouts_above(level) else restriction.pes
    if restriction.below is not None:
        incumbent = restriction.below if incumbent is None else min(incumbent, restriction.below)
    b = _Model(deadline)
    cons = b.lp
    # a row is (factor per level..., s_0, 1, s_1, 1, ...); a second one-hot per dimension
    # and fan-out picks the split of s (``rows.collapse_splits``)
    F = len(hier.fanouts)
    rows, splits = {}, {}
    fitting_rows = fitting_choices(problem)
    if not all(len(table) for table in fitting_rows.values()):
        raise _NoValue  # some dimension overflows a level however the others tile (``fitting.py``)
    for d in DIMS:
        rows[d], per_fanout = collapse_splits(fitting_rows[d], K, F)
        splits.update({(d, f): options for f, options in enumerate(per_fanout)})
    b.splits = splits
    clipped = ClippedTables(problem, {d: np.asarray(rows[d], dtype=np.int64) for d in DIMS}) \
        if problem.factors != "divisors" else None
    extent = {d: layer_extent(layer, d) for d in DIMS}
    for d in DIMS:
        cons.add(sum(b.boolean(("x", d, i)) for i in range(len(rows[d]))) == 1)
        for f in range(F):
            for spatial in {r[K + 2 * f] for r in rows[d]}:
                cons.add(sum(b.boolean(("split", d, f, j)) for j, sp in enumerate(splits[d, f]) if sp[0] == spatial)
                         == sum(b.boolean(("x", d, i)) for i, r in enumerate(rows[d]) if r[K + 2 * f] == spatial))
    pairs = {"P": "R", "Q": "S"}
    for a, w in pairs.items():
        for i in range(len(rows[a])):
            cons.add(sum(b.boolean(("pair", a, i, j)) for j in range(len(rows[w]))) == b.boolean(("x", a, i)))
        for j in range(len(rows[w])):
            cons.add(sum(b.boolean(("pair", a, i, j)) for i in range(len(rows[a]))) == b.boolean(("x", w, j)))
    for l in range(K):
        cons.add(sum(b.boolean(("sigma", l, X)) for X in TENSORS) == 1)
    settled = settled_rankings(problem)
    for l, ranking in settled.items():  # the order cannot matter there
        cons.add(b.boolean(("sigma", l, ranking[0])) == 1)
    if axes_interchangeable(problem):
        # swapping (P, R) with (Q, S) keeps the cost: keep the copy with P's row index <= Q's
        cons.add(sum(i * b.boolean(("x", "P", i)) for i in range(len(rows["P"])))
                 <= sum(i * b.boolean(("x", "Q", i)) for i in range(len(rows["Q"]))))

    def table(d, fn, gate=None) -> _Table:
        return _Table(tuple(("x", d, i) for i in range(len(rows[d]))), tuple(int(fn(r)) for r in rows[d]), gate)

    def pair_table(axis, fn) -> _Table:
        w = pairs[axis]
        keys, values = [], []
        for i, rp in enumerate(rows[axis]):
            for j, rw in enumerate(rows[w]):
                keys.append(("pair", axis, i, j))
                values.append(int(fn(rp, rw)))
        return _Table(tuple(keys), tuple(values))

    def nontrivial(l, d):
        return sum(b.boolean(("x", d, i)) for i, r in enumerate(rows[d]) if r[l] > 1)

    if _stationary_group_has_trips(problem):
        # the stationary tensor is the one whose group is innermost among those with a loop of more than
        # one trip (the inputs' when none has one): every mapping keeps a copy, and the pieces that fix
        # sigma no longer hold mappings that another piece costs lower (docs/tiling-multilevel.md,
        # "The stationary group has trips")
        for l in range(K):
            if l in settled:
                continue
            busy = {X: sum(nontrivial(l, d) for d in REUSE_GROUPS[X]) for X in TENSORS}
            for X in ("weights", "outputs"):
                cons.add(b.boolean(("sigma", l, X)) <= busy[X])
            for X in ("weights", "outputs"):
                for d in REUSE_GROUPS[X]:
                    cons.add(b.boolean(("sigma", l, "inputs")) + nontrivial(l, d) <= 1 + busy["inputs"])

    # every fan-out: the products of its rows' and its columns' factors must fit
    for f, fan in enumerate(hier.fanouts):
        for side, size in ((1, fan.rows), (2, fan.cols)):
            b.term([_Table(tuple(("split", d, f, j) for j in range(len(splits[d, f]))),
                           tuple(sp[side] for sp in splits[d, f])) for d in DIMS], size)
    for f, least in problem.constraints.least_busy(hier):  # the instance's least utilization of a fan-out
        busy = b.term([table(d, lambda r, f=f: fanout_factor(r, K, f)) for d in DIMS], hier.fanouts[f].size)
        if isinstance(busy, int):
            if busy < least:
                raise _NoValue
        else:
            cons.add(busy >= least)
    if restriction.pes is not None:
        busy = b.term([table(d, lambda r: spatial_factor(r, K)) for d in DIMS], restriction.pes)
        if isinstance(busy, int):
            if busy != restriction.pes:
                raise _NoValue
        else:
            cons.add(busy == restriction.pes)

    # capacities on tile elements (a partial tile's level holds its largest tile, clipped at the extent)
    def tile_extent(l, d):
        return lambda r: min(row_tile_extent(r, hier, l), extent[d])

    prec = layer.precision
    bits = {"inputs": prec.inputs, "weights": prec.weights, "outputs": prec.psums}
    for l in range(1, K):
        level = hier.levels[l]
        sizes = {}
        for X in level.holds:
            if X == "weights":
                tables = [table(d, tile_extent(l, d)) for d in ("G", "M", "C", "R", "S")]
            elif X == "outputs":
                tables = [table(d, tile_extent(l, d)) for d in ("N", "G", "M", "P", "Q")]
            else:
                tables = [table(d, tile_extent(l, d)) for d in ("N", "G", "C")] + [
                    pair_table(a, lambda rp, rw, a=a: int(window_rows(layer, a, tile_extent(l, a)(rp),
                                                                      tile_extent(l, pairs[a])(rw))))
                    for a in pairs]
            limit = level.partition_bits[X] if level.partition_bits is not None else level.capacity_bits
            sizes[X] = b.term(tables, limit // bits[X])
        if level.partition_bits is None and len(level.holds) > 1:
            held = sum(bits[X] * sizes[X] for X in level.holds)
            if isinstance(held, int):  # every tile size settled (one value each): a fact, not a constraint
                if held > level.capacity_bits:
                    raise _NoValue
            else:
                cons.add(held <= level.capacity_bits)

    # triviality of the loops that index X, per level
    for l in range(K):
        for X in TENSORS:
            for d in RELEVANT[X]:
                cons.add(b.boolean(("tr", l, X)) + nontrivial(l, d) <= 1)
    made_free: set = set()

    def refetch_tables(l, X) -> list[_Table]:
        out = []
        for j in range(l):
            group = [table(d, lambda r, j=j: r[j]) for d in REUSE_GROUPS[X]]
            # a table whose every row is 1 adds nothing; a constant above 1 (a fixed factor) still counts
            group = [t for t in group if len(set(t.values)) > 1 or t.values[0] != 1]
            if not group:
                continue
            if hier.fetches_every_trip(l):  # MAC units without latches: no loop keeps their operands, no gate
                out += group
                continue
            gate = ("free", l, X, j)
            if gate not in made_free:
                made_free.add(gate)
                free = b.boolean(gate)
                for i in range(j + 1, l):
                    cons.add(free <= b.boolean(("tr", i, X)))
                # only the stationary tensor of level j has its group's trips free there
                cons.add(free <= b.boolean(("sigma", j, X)))
            out += [_Table(t.keys, t.values, gate) for t in group]
        return out

    sweeps = _halo_sweeps(b, problem, rows, nontrivial) if problem.halo else None
    if clipped is not None:
        outermost_rule(b, problem, clipped, rows, nontrivial)

    def words_tables(words: Words) -> list[_Table]:
        out = [table(d, lambda r, f=f: fanout_factor(r, K, f)) for d, f in words.spatial]
        for h in words.halos:
            swept = sweeps and not hier.fetches_every_trip(h.level)  # a MAC without latches reuses no rows
            out.append(sweeps(h) if swept else pair_table(h.axis, lambda rp, rw, h=h: halo_value(problem, h, rp, rw)))
        return out

    # weights of each level's reads and writes in the objective (integers)
    objective = problem.objective
    scale, constant = _objective_units(problem)
    if objective == "energy":
        read_w = [round(lv.read_energy * scale) for lv in hier.levels]
        write_w = [round(lv.write_energy * scale) for lv in hier.levels]
    else:
        read_w = [0] * K
        write_w = [0] * K
    tensor_w = {X: (bits[X] if objective == "offchip_traffic" else 1) for X in TENSORS}
    if objective == "offchip_traffic":
        read_w[0] = write_w[0] = 1
    budget = None if incumbent is None else incumbent * scale - constant  # what the access terms may add up to

    def cap_for(weight: float, const: int, natural: int) -> int:
        if budget is None or weight <= 0:
            return natural
        return min(natural, int(budget * (1 + 1e-9) / (weight * const)) + 1)

    natural = layer.macs * max(hier.pes, 1) * 4  # no access count exceeds this many words per unit of const
    cycles_cap = restriction.latency_cap
    if objective == "latency" and incumbent is not None:
        cycles_cap = int(incumbent) if cycles_cap is None else min(cycles_cap, int(incumbent))
    bandwidth_caps: dict[int, float] = {}
    if timed and cycles_cap is not None:
        # a level's words within the cycles (all busy PEs' words for a private level)
        bandwidth_caps = {l: lv.bandwidth * cycles_cap * busy_instances(l)
                          for l, lv in enumerate(hier.levels) if lv.bandwidth}

    reads = [{X: [] for X in TENSORS} for _ in range(K)]
    writes = [{X: [] for X in TENSORS} for _ in range(K)]

    def cap_at(level: int, weight: float, const: int) -> int:
        cap = cap_for(weight, const, natural)
        if level in bandwidth_caps:
            cap = min(cap, int(bandwidth_caps[level] / const) + 1)
        return cap

    needed = {l for l in range(K) if read_w[l] or write_w[l]} | (
        {l for l, lv in enumerate(hier.levels) if lv.bandwidth} if timed else set())
    if clipped is not None:
        clipped_access_terms(b, problem, rows, clipped, cap_at, needed, read_w, write_w, tensor_w, reads, writes)
    for bd in (boundaries(problem) if clipped is None else ()):
        X, l, a = bd.tensor, bd.level, bd.parent
        if a not in needed and l not in needed:
            continue
        E = refetch_tables(l, X)
        cp, cc = bd.parent_words.const, bd.child_words.const
        wX = tensor_w[X]
        if X != "outputs":
            if a in needed:
                reads[a][X].append(cp * b.term(words_tables(bd.parent_words) + E, cap_at(a, read_w[a] * wX, cp)))
            if l < K and l in needed:
                writes[l][X].append(cc * b.term(words_tables(bd.child_words) + E, cap_at(l, write_w[l] * wX, cc)))
        else:
            cap = cap_at(a, write_w[a] * wX, cp)
            full = b.term(words_tables(bd.parent_words) + E, cap)
            refill = cp * (full - b.term(words_tables(bd.parent_words), cap))
            if bd.refill_words != bd.parent_words:  # revisits reach one instance per reduction group
                # only the difference of these two terms is in the objective, so the incumbent
                # cannot cap them one by one: they get the natural (and bandwidth) caps
                cr = bd.refill_words.const
                refill = cr * (b.term(words_tables(bd.refill_words) + E, cap_at(a, 0, cr))
                               - b.term(words_tables(bd.refill_words), cap_at(a, 0, cr)))
            if a in needed:
                writes[a][X].append(cp * full)
                reads[a][X].append(refill)
            if l < K and l in needed:
                writes[l][X].append(refill)
                reads[l][X].append(cc * b.term(words_tables(bd.child_words) + E, cap_at(l, read_w[l] * wX, cc)))

    servers = [(X, index, shared) for X in TENSORS for index, shared in latch_servers(problem, X)]
    if all(index in needed for _, index, _ in servers):
        # every mapping changes its MAC units' latches at least this often (docs/tiling-multilevel.md,
        # "The latch cut"); with a level's terms left out a sum would undercount, so then no cut
        for group, changes in latch_cuts(problem):
            served = sum(shared * sum((writes if X == "outputs" else reads)[index][X])
                         for X, index, shared in servers if X in group)
            if not isinstance(served, int):
                cons.add(served >= changes)

    def cycles(cap: int):
        """Integer cycles L <= ``cap`` with L >= the compute cycles and every
        bandwidth limit met within L."""
        if clipped is None:
            compute = b.term([table(d, lambda r: math.prod(r[:K])) for d in DIMS], cap)
        else:  # partial tiles: the temporal iterations in which some PE works
            compute = b.term([_Table(tuple(("x", d, i) for i in range(len(rows[d]))),
                                     tuple(int(v) for v in clipped.compute(d))) for d in DIMS], cap)
        latency = b.lp.column(0, cap, integral=True)
        cons.add(latency >= compute)
        for l, level in enumerate(hier.levels):
            if level.bandwidth:
                words = sum(sum(reads[l][X]) + sum(writes[l][X]) for X in TENSORS)
                cons.add(level.bandwidth * busy_instances(l) * latency >= words)
        return latency

    if objective in ("energy", "offchip_traffic"):
        expr = sum(read_w[l] * tensor_w[X] * sum(reads[l][X]) + write_w[l] * tensor_w[X] * sum(writes[l][X])
                   for l in range(K) for X in TENSORS)
        if objective == "offchip_traffic":
            expr = sum(tensor_w[X] * sum(reads[0][X]) for X in TENSORS) + tensor_w["outputs"] * sum(writes[0]["outputs"])
        if restriction.latency_cap is not None:
            cycles(restriction.latency_cap)
    else:
        expr = cycles(natural if cycles_cap is None else cycles_cap)
    if restriction.below is not None:
        # integer model units strictly below the given objective
        cons.add(expr <= math.ceil(restriction.below * scale - constant - 1e-9) - 0.5)
    known = restriction.below if incumbent is None else incumbent
    b.objective_scale = objective_scale(None if known is None else known * scale - constant)
    if not isinstance(expr, Real):
        terms, b.cutoff_constant = expr.linear()
        b.cutoff_row = cons.add(Row(terms, -INFINITY, INFINITY))
    b.lp.minimize(expr, b.objective_scale)
    return b.lp.highs(), b, rows, scale, constant



def _halo_sweeps(b: _Model, problem: MultiLevelProblem, rows, nontrivial):
    """Halo reuse (``halo.py``): the function that gives a halo factor's
    one-hot table, with the Booleans and rows that make it exact.

    ``("sweep", j, d)``: window dimension ``d`` is the innermost loop of
    level ``j`` that indexes the inputs and has trips. It needs trips at
    ``j``, and the other reuse group of input loops (R, S against P, Q) must
    not sit inside ``d``'s: it has no trips there, or it is not the
    stationary tensor's group (with the inputs' group M, which does not
    index the inputs, stationary, the decoding ranks ``d``'s group next).
    A level ``l``'s tile is swept along an axis by ``(d, j)`` when
    ``("sweep", j, d)`` holds and no level between has an input loop with
    trips (``("tr", i, "inputs")``). Its halo factor is then a choice among
    ``("hpair", l, axis, i, k, option)`` Booleans, one per row pair and
    sweep its rows allow (the sweeping loop has trips) that lowers some
    halo factor of the level and axis; they add up to the pair's Boolean.
    No sweep is always allowed: it never costs less, so a minimum picks a
    sweep whenever the order allows one."""
    cons = b.lp
    K = len(problem.hierarchy.levels)
    for j in range(K):
        cons.add(sum(b.boolean(("sweep", j, d)) for d in WINDOW_DIMS) <= 1)
        for d in WINDOW_DIMS:
            sweep = b.boolean(("sweep", j, d))
            cons.add(sweep <= nontrivial(j, d))
            other = "outputs" if group_of(d) == "weights" else "weights"
            idle = b.boolean(("idle", j, other))  # set only when the other input group has no trips at j
            cons.add(sweep + b.boolean(("sigma", j, other)) <= 1 + idle)
    for j in range(K):
        for X in ("weights", "outputs"):
            for d in REUSE_GROUPS[X]:
                cons.add(b.boolean(("idle", j, X)) + nontrivial(j, d) <= 1)
    window = {"P": "R", "Q": "S"}
    linked: set = set()
    halos: dict[tuple[int, str], set[Halo]] = {}  # every halo factor of a level and axis
    for bd in boundaries(problem):
        for words in (bd.parent_words, bd.child_words, bd.refill_words):
            for h in words.halos:
                halos.setdefault((h.level, h.axis), set()).add(h)

    @lru_cache(maxsize=None)
    def gaining(l: int, axis: str, i: int, k: int) -> tuple:
        """The sweeps that rows ``i``, ``k`` allow (the sweeping loop has trips at its level) and that
        lower some halo factor of this level and axis: the same for every one of them, which share
        the Booleans. A sweep that lowers none changes no count, so leaving it out loses nothing."""
        rp, rw = rows[axis][i], rows[window[axis]][k]
        out = []
        for option in ((d, j) for j in range(l) for d in AXIS_DIMS[axis]):
            if (rp if option[0] == axis else rw)[option[1]] < 2:
                continue
            if any(halo_value(problem, h, rp, rw, option) < halo_value(problem, h, rp, rw) for h in halos[l, axis]):
                out.append(option)
        return tuple(out)

    def halo_table(h: Halo) -> _Table:
        l, axis = h.level, h.axis
        keys, values = [], []
        uses: dict[tuple[str, int], list] = {(d, j): [] for j in range(l) for d in AXIS_DIMS[axis]}
        for i, rp in enumerate(rows[axis]):
            for k, rw in enumerate(rows[window[axis]]):
                plain = int(halo_value(problem, h, rp, rw))
                possible = gaining(l, axis, i, k)
                if not possible:
                    keys.append(("pair", axis, i, k))
                    values.append(plain)
                    continue
                own = [("hpair", l, axis, i, k, None)] + [("hpair", l, axis, i, k, option) for option in possible]
                keys += own
                values += [plain] + [int(halo_value(problem, h, rp, rw, option)) for option in possible]
                for key in own[1:]:
                    uses[key[-1]].append(key)
                if (l, axis, i, k) not in linked:
                    cons.add(sum(b.boolean(key) for key in own) == b.boolean(("pair", axis, i, k)))
                    linked.add((l, axis, i, k))
        if (l, axis) not in linked:
            linked.add((l, axis))
            for (d, j), used in uses.items():
                if not used:
                    continue
                chosen = sum(b.boolean(key) for key in used)  # at most one: the pair Booleans are one-hot
                cons.add(chosen <= b.boolean(("sweep", j, d)))
                for i in range(j + 1, l):
                    cons.add(chosen <= b.boolean(("tr", i, "inputs")))
        return _Table(tuple(keys), tuple(values))

    return halo_table


def decode_milp(problem: MultiLevelProblem, builder: _Model, rows, values):
    """The mapping of a solution's column ``values``."""
    K = len(problem.hierarchy.levels)

    def value(key):
        return builder.value(values, key)

    chosen = {}
    for d in DIMS:
        row = rows[d][max(range(len(rows[d])), key=lambda i: value(("x", d, i)))]
        sides = []
        for f in range(len(problem.hierarchy.fanouts)):
            options = builder.splits[d, f]
            fitting = [j for j, sp in enumerate(options) if sp[0] == row[K + 2 * f]]
            j = max(fitting, key=lambda j: value(("split", d, f, j)))
            sides += [options[j][1], options[j][2]]
        chosen[d] = (*row[:K], *sides)
    orders = []
    for l in range(K):
        stationary = max(TENSORS, key=lambda X: value(("sigma", l, X)))
        rest = [X for X in TENSORS if X != stationary]
        sweep = next((d for d in WINDOW_DIMS if value(("sweep", l, d)) > 0.5), None) if problem.halo else None
        if sweep is not None and group_of(sweep) in rest:  # the sweeping group next (``_halo_sweeps``)
            rest.sort(key=lambda X: X != group_of(sweep))
        outermost = collapsed_group(problem, chosen, l) if problem.factors != "divisors" else None
        if outermost in rest:  # a loop a partial tile leaves one trip ranks outermost (``milp_clipped``)
            rest.sort(key=lambda X: X == outermost)
        order = group_order((stationary, *rest))
        orders.append(order if sweep is None else innermost_in_group(order, sweep))
    orders = tuple(orders)
    return mapping_from_choice(problem, chosen, orders)


def _incumbent(problem: MultiLevelProblem, restriction: Restriction):
    """The best fitting mapping of the two cheap heuristic mappers that
    satisfies ``restriction``, improved by coordinate descent
    (``multilevel_heuristics.polish``), or None. A tighter incumbent is a
    lower first cutoff for every piece and keep set."""
    from ....solvers.multilevel_heuristics import paper_dataflow, polish, random_sampling
    from .constraints import violations
    from .cost import evaluate_multilevel

    def admitted(mapping) -> float | None:
        """The mapping's objective if it fits and satisfies the restriction and constraints, else None."""
        metrics = evaluate_multilevel(problem, mapping)
        value = metrics.objective(problem.objective)
        ok = metrics.fits and restriction.admits(metrics) and (restriction.below is None or value < restriction.below) \
            and (problem.constraints.empty or not violations(problem.constraints, problem.hierarchy, mapping))
        return value if ok else None

    best = None
    for mapper in (paper_dataflow, random_sampling):
        mapping = mapper(problem, samples=5_000)
        if mapping is None:
            continue
        value = admitted(mapping)
        if value is not None and (best is None or value < best[1]):
            best = (mapping, value)
    if best is not None and problem.objective in POLISHED_OBJECTIVES:
        polished = polish(problem, best[0])
        value = admitted(polished)
        if value is not None and value < best[1]:
            best = (polished, value)
    return best


def _stationary_group_has_trips(problem: MultiLevelProblem) -> bool:
    """Whether the model requires the stationary group to have a loop of
    more than one trip (the inputs' excepted): over divisor factors without
    halo reuse, where only a level's innermost such group matters."""
    return not problem.halo and problem.factors == "divisors"


def stationary_choices(problem: MultiLevelProblem) -> list[tuple[str, ...]]:
    """Per level, the stationary tensors a piece may fix: the settled
    ranking's innermost group where the order cannot matter; otherwise
    every tensor, except, over divisor factors without halo reuse, one
    whose reuse group has no loop of more than one trip at the level in any
    row (the model requires the stationary group to have one, unless it is
    the inputs')."""
    settled = settled_rankings(problem)
    strict = _stationary_group_has_trips(problem)
    rows = fitting_choices(problem)  # a row that fits nowhere gives no piece a mapping
    choices = []
    for l in range(len(problem.hierarchy.levels)):
        if l in settled:
            choices.append((settled[l][0],))
            continue
        choices.append(tuple(X for X in TENSORS if not strict or X == "inputs"
                             or any((rows[d][:, l] > 1).any() for d in REUSE_GROUPS[X])))
    return choices


def _stationary(mapping) -> tuple[str, ...]:
    """Per level, the tensor whose reuse group is innermost among the level's
    non-trivial groups (the first tensor when every group is trivial)."""
    out = []
    for loops in mapping.levels:
        inner = [d for d in reversed(loops.order) if loops.factors.get(d, 1) > 1 and d != "G"]
        owner = next((X for X in TENSORS if inner and inner[0] in REUSE_GROUPS[X]), TENSORS[0])
        out.append(owner)
    return tuple(out)


def solve_multilevel_milp(problem: MultiLevelProblem, time_limit: float, restriction: Restriction | None = None,
                          workers: int = 0):
    """Solve exactly; with keep or bypass chosen, as a union over keep sets.

    Each keep set (``bypass.keep_sets``) is a fixed hierarchy solved by
    :func:`_solve_fixed`, searched only below the best objective so far (so
    "infeasible" there means "nothing better"). Proved when every keep set
    finished; otherwise the bound is the least over the best and the
    unfinished keep sets' bounds. Returns (outcome, scale, constant) in the
    model units of ``problem``'s objective, as :func:`_solve_fixed`.
    Raises ValueError for a restriction with caps on other objectives (CP-SAT's)."""
    if restriction is not None and restriction.caps:
        raise ValueError("the MILP holds no other objective at a cap; the lexicographic steps use CP-SAT")
    if not problem.hierarchy.chooses_bypass:
        return _solve_fixed(problem, time_limit, restriction, workers)
    from .bypass import keep_sets, with_keep

    start = time.perf_counter()
    deadline = start + time_limit
    restriction = restriction or Restriction()
    scale, constant = _objective_units(problem)
    sets = keep_sets(problem.hierarchy)
    best = best_mapping = None  # objective units
    found = _incumbent(problem, restriction)  # the sampling mappers choose keep sets too
    if found is not None:
        best_mapping, best = found
        own = best_mapping.keep_sets(problem.hierarchy)
        sets.sort(key=lambda keep: keep != own)  # its keep set first: the others start with a cutoff
    open_bounds: list[float | None] = []  # model units
    settled = 0

    def below() -> Restriction:
        """The restriction a keep set starts with: only mappings better than the best so far."""
        if best is None:
            return restriction
        return replace(restriction, below=best if restriction.below is None else min(best, restriction.below))

    def record(keep, solved) -> None:
        nonlocal best, best_mapping, settled
        outcome, sc, c = solved
        if outcome.values is not None and outcome.objective is not None:
            value = (outcome.objective + c) / sc
            if best is None or value < best:
                best, best_mapping = value, with_keep(problem, outcome.values, keep)
        if outcome.proved:
            settled += 1
        elif outcome.bound is None:
            open_bounds.append(None)
        else:
            open_bounds.append((math.ceil(outcome.bound - 1e-6) + c) / sc * scale - constant)

    # the first keep set here (its pieces side by side); if it took long, the others side by side, each
    # whole in one process (its pieces one after another there), so short solves never wait for a pool
    first = time.perf_counter()
    record(sets[0], _solve_fixed(problem.kept(sets[0]), deadline - first, below(), workers))
    left, processes = sets[1:], 1
    if time.perf_counter() - first >= KEEP_SET_POOL_AFTER:
        processes = piece_processes(workers, len(left), deadline - time.perf_counter(), problem)
    if processes > 1:
        from ....part_pool import side_by_side

        deadline_epoch = time.time() + (deadline - time.perf_counter())  # the wall clock, which processes share
        left = side_by_side(left, _solve_keep_set, lambda keep: (problem, keep, below(), deadline_epoch), record,
                            deadline, processes)
    for keep in left:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            open_bounds.append(None)
            continue
        record(keep, _solve_fixed(problem.kept(keep), remaining, below(), workers))
    wall = time.perf_counter() - start
    pieces = f"{settled}/{len(sets)} keep sets finished" + (
        "" if processes == 1 else f" in {processes} processes")
    best_units = None if best is None else round(best * scale - constant)
    if settled == len(sets):
        if best is None:
            return SolverOutcome("highs", True, True, None, None, wall, None,
                                 "no mapping fits the hierarchy"), scale, constant
        return SolverOutcome("highs", True, False, best_units, best_units, wall, best_mapping, pieces), scale, constant
    bound = None
    if all(b is not None for b in open_bounds):
        bound = min([*([] if best_units is None else [best_units]), *open_bounds])
    return SolverOutcome("highs", False, False, best_units, bound, wall, best_mapping, pieces), scale, constant


def _solve_keep_set(problem: MultiLevelProblem, keep, restriction: Restriction, deadline_epoch: float):
    """One keep set of ``problem`` in a pool process, its pieces one after
    another; the deadline is on the wall clock, which processes share."""
    return _solve_fixed(problem.kept(keep), max(0.0, deadline_epoch - time.time()), restriction, workers=1)


def _objective_units(problem: MultiLevelProblem) -> tuple[int, int]:
    """(scale, constant) of the model units: objective = (units + constant) / scale."""
    layer, hier = problem.layer, problem.hierarchy
    if problem.objective == "energy":
        energies = [hier.mac_energy] + [e for lv in hier.levels for e in (lv.read_energy, lv.write_energy)]
        scale = _integer_scale(energies)
        return scale, round(layer.macs * hier.mac_energy * scale)
    if problem.objective == "offchip_traffic":
        prec = layer.precision
        return 8, (prec.outputs - prec.psums) * layer.output_elements
    return 1, 0


def _solve_fixed(problem: MultiLevelProblem, time_limit: float, restriction: Restriction | None = None,
                 workers: int = 0):
    """Solve by a decomposition over the stationary tensor of every level.

    Fixing which tensor is stationary at each level (3^K combinations) turns
    every ``free`` Boolean into a plain consequence of the loops' triviality,
    and HiGHS proves each piece in seconds where the whole model stalls on
    fractional orders. Every piece is solved with the best objective so far
    as a cutoff, so a piece either improves it or is proved unable to. The
    result is optimal when every piece was finished.

    ``time_limit`` counts from this call: the heuristic incumbent, the build
    (once: one HiGHS holds the model and solves every piece) and every solve
    are inside it. The build stops when the deadline passes, and each piece
    gets what remains. A time-out returns the best mapping so far
    (the incumbent's when no solve ran) with the bound the solves proved:
    the larger of the whole model's bound and the least bound over the
    pieces (a finished piece counts as the best objective, any other as its
    own bound or its LP relaxation's, less the margin, and as unknown when
    it has neither), and None when neither is known.

    Under a ``restriction`` only mappings that satisfy it count; with its
    ``below``, "infeasible" means that none is strictly better.

    ``workers`` processes solve the pieces side by side (0: one per solver
    thread; ``milp_pieces.py`` says when a pool is not started).

    Returns (outcome, scale, constant) with the objective in model units."""
    from .cost import evaluate_multilevel

    start = time.perf_counter()
    deadline = start + time_limit
    restriction = restriction or Restriction()
    found = _incumbent(problem, restriction)

    def stopped(why: str):
        """Out of time before any solve: the incumbent (in the objective's
        own units: scale 1, constant 0), no bound."""
        wall = time.perf_counter() - start
        if found is None:
            return SolverOutcome("highs", False, False, None, None, wall, None,
                                 f"{why}; no mapping known"), 1, 0
        return SolverOutcome("highs", False, False, found[1], None, wall, found[0],
                             f"{why}; the heuristic incumbent is returned"), 1, 0

    try:
        highs, builder, rows, scale, constant = build_multilevel_milp(problem, None if found is None else found[1],
                                                                  restriction, deadline=deadline)
    except _NoValue:
        return SolverOutcome("highs", True, True, None, None, time.perf_counter() - start, None,
                             "no tile or array value fits"), 1, 0
    except _OutOfTime:
        return stopped("time limit reached while building the MILP")

    def model_units(value: float) -> float:
        return round(value * scale - constant)

    best_mapping, best = (None, None) if found is None else (found[0], model_units(found[1]))

    def finished(outcome) -> bool:
        """Keep the outcome's mapping if it is the best so far; True when the
        outcome settles its model: infeasible, or proved with a mapping that
        fits and evaluates to no more than HiGHS claimed (anything else is no
        proof). Within a piece the claim may exceed the evaluation: when the
        fixed stationary tensor's group is trivial at a level, another tensor
        is really stationary there, and its own piece counts that mapping."""
        nonlocal best_mapping, best
        if outcome.values is None:
            return outcome.infeasible
        metrics = evaluate_multilevel(problem, outcome.values)
        value = model_units(metrics.objective(problem.objective))
        if metrics.fits and restriction.admits(metrics) and (best is None or value < best):
            best_mapping, best = outcome.values, value
        confirmed = metrics.fits and restriction.admits(metrics) and outcome.objective is not None and value < outcome.objective + 0.5
        return outcome.proved and confirmed

    def decode(values):
        return decode_milp(problem, builder, rows, values)

    if time.perf_counter() >= deadline:
        return stopped("time limit reached while building the MILP")
    # the whole model first, when given a share of the time (by default none: see WHOLE_MODEL_SECONDS)
    whole_limit = min(WHOLE_MODEL_SHARE * time_limit, WHOLE_MODEL_SECONDS, deadline - time.perf_counter())
    whole_bound = None  # valid for every piece: the pieces only fix what the whole model chooses
    if whole_limit > 0:
        whole = run_highs(highs, decode, whole_limit, integral_objective=True,
                          objective_scale=builder.objective_scale,
                          extra_options={**MIP_OPTIONS, "mip_heuristic_effort": 0.05})
        if finished(whole) and (whole.proved or best is None):
            message = "whole model proved" if whole.proved else "no mapping fits the hierarchy"
            return SolverOutcome("highs", True, whole.infeasible, best, best, time.perf_counter() - start,
                                 best_mapping, message), scale, constant
        whole_bound = whole.bound
    combos = list(itertools.product(*stationary_choices(problem)))
    if best_mapping is not None:  # the incumbent's own piece first: a better cutoff for all the others
        own = _stationary(best_mapping)
        combos.sort(key=lambda combo: combo != own)
    local = PieceModel(problem, highs, builder, rows)
    open_bounds: list[float | None] = []  # per piece not finished: its bound, None when unknown
    settled = started = 0

    def record(piece: PieceResult) -> None:
        nonlocal settled, started
        relaxed = None if piece.relaxation is None else piece.relaxation.lower_bound()
        if not piece.started:
            known = [b for b in (whole_bound, relaxed) if b is not None]
            open_bounds.append(max(known) if known else None)
            return
        started += 1
        if piece.refuted_by_relaxation or finished(piece.outcome):
            settled += 1
            return
        known = [b for b in (piece.outcome.bound, whole_bound, relaxed) if b is not None]
        open_bounds.append(max(known) if known else None)

    processes = piece_processes(workers, len(combos), deadline - time.perf_counter(), problem)
    processes = solve_pieces(
        local, combos,
        cutoff=lambda: None if best is None else best - 0.5,
        refuting=lambda: best is not None or restriction.below is not None,  # the model holds a cutoff either way
        record=record, deadline=deadline, processes=processes,
        build_args=(problem, builder, rows))
    wall = time.perf_counter() - start
    proved = settled == len(combos)
    pieces = f"{settled}/{len(combos)} stationary-tensor pieces finished" + (
        "" if processes == 1 else f" in {processes} processes") + (
        "" if started == settled else f", {started - settled} started but not finished") + (
        "" if started == len(combos) else f", {len(combos) - started} not started (time limit)")
    if proved:
        if best is None:
            return SolverOutcome("highs", True, True, None, None, wall, None,
                                 "no mapping fits the hierarchy"), scale, constant
        return SolverOutcome("highs", True, False, best, best, wall, best_mapping, pieces), scale, constant
    # a finished piece holds nothing below the best; the others hold nothing below their bound
    known = [] if whole_bound is None else [whole_bound]
    if all(b is not None for b in open_bounds):
        known.append(min([*([] if best is None else [best]), *open_bounds]))
    bound = max(known) if known else None
    if bound is not None and best is not None:
        bound = min(bound, best)
    if best is None:
        return SolverOutcome("highs", False, False, None, bound, wall, None,
                             f"no mapping found in time ({pieces})"), scale, constant
    return SolverOutcome("highs", False, False, best, bound, wall, best_mapping, pieces), scale, constant
