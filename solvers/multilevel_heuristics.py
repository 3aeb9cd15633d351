"""Heuristic mappers for multi-level tiling.

Each one returns a ``MultiLevelMapping`` (or None when it finds nothing
that fits); ``evaluate_multilevel`` scores it like any other mapping, so
``compare`` puts them beside the certified optimum.

* ``random_sampling``: Timeloop's random mapper.  It draws factorizations
  and loop orders uniformly, keeps the best valid sample, and is seeded with
  a sample budget.  Where the hierarchy leaves keep or bypass to the
  mapping, each sample takes its best keep set (of at most ``KEEP_SAMPLE``
  drawn per batch).
* ``paper_dataflow``: the dataflow of the communication lower-bound paper.
  Output tiles stay put (C, R, S innermost at every level), only output
  dimensions are unrolled on the array, and the best tiles within that
  dataflow are found by the same sampling.
* ``greedy_largest_tile``: fills the array with output channels and output
  pixels, then grows each level's tile from the innermost level out, one
  prime factor at a time, while it fits.
* ``zigzag_orders``: ZigZag's LOMA.  It splits every dimension into prime
  loop factors (merged down to a bounded count) and walks the orderings of
  those factors.  Each ordering is allocated bottom-up, so that every level
  takes the innermost factors that still fit.
"""

from __future__ import annotations

import itertools
import random
from math import prod

import numpy as np
from dataclasses import replace

from ..formulations.tiling.multilevel.problem import (DIMS, LevelLoops, MultiLevelMapping, MultiLevelProblem, SpatialLoops,
                                                      layer_extent)
from ..formulations.tiling.multilevel.bypass import sample_keep_sets, with_keep
from ..formulations.tiling.multilevel.cost import TENSORS, evaluate_multilevel, objective_values, tile_elements
from ..formulations.tiling.multilevel.rows import tile_extent
from ..formulations.tiling.multilevel.constraints import SpatialConstraint, violations
from ..formulations.tiling.multilevel.space import dim_choices, group_order, mapping_from_choice

OUTPUT_STATIONARY = group_order(("outputs", "inputs", "weights"))
KEEP_SAMPLE = 64
"""Most keep sets each batch of samples is scored under."""
OUTPUT_DIMS = ("M", "P", "Q", "N")


def _sample(problem: MultiLevelProblem, samples: int, seed: int, allowed_orders, spatial_dims=None):
    """Best of ``samples`` uniform draws; ``allowed_orders`` lists the orders each level may draw from
    (None: any permutation)."""
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    K = len(problem.hierarchy.levels)
    choices = {}
    # divisor rows: a mapping of every space, scored by the vectorized cost model
    divisors = replace(problem, factors="divisors")
    for d in DIMS:
        table = dim_choices(divisors, d)
        if spatial_dims is not None and d not in spatial_dims:
            table = table[np.all(table[:, K:] == 1, axis=1)]
        choices[d] = table
    if any(len(table) == 0 for table in choices.values()):
        return None  # the instance's constraints leave some dimension no factor row
    best = (np.inf, None)
    batch = 2048
    for start in range(0, samples, batch):
        size = min(batch, samples - start)
        picks = {d: choices[d][rng.integers(0, len(choices[d]), size)] for d in DIMS}
        if allowed_orders is None:
            orders = [tuple(rnd.sample(DIMS, len(DIMS))) for _ in range(K)]
        else:
            orders = [rnd.choice(allowed_orders) for _ in range(K)]
        orders = problem.constraints.conform(orders)
        # the everything-kept set, then a uniform draw of the others
        keeps = sample_keep_sets(problem.hierarchy, rnd, KEEP_SAMPLE) if problem.hierarchy.chooses_bypass else None
        scored = objective_values(problem, picks, orders, keeps)
        value, feasible = scored[:2]
        masked = np.where(feasible, value, np.inf)
        i = int(np.argmin(masked))
        if masked[i] < best[0]:
            mapping = mapping_from_choice(problem, {d: picks[d][i] for d in DIMS}, tuple(orders))
            if keeps is not None:
                mapping = with_keep(problem, mapping, keeps[int(scored[2][i])])
            best = (float(masked[i]), mapping)
    return best[1]


def random_sampling(problem: MultiLevelProblem, samples: int = 20_000, seed: int = 0) -> MultiLevelMapping | None:
    """Timeloop-style random mapper: uniform factorizations and any loop orders."""
    return _sample(problem, samples, seed, None)


def paper_dataflow(problem: MultiLevelProblem, samples: int = 20_000, seed: int = 0) -> MultiLevelMapping | None:
    """Output-stationary at every level, output dimensions on the array."""
    return _sample(problem, samples, seed, [OUTPUT_STATIONARY], spatial_dims=OUTPUT_DIMS)


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def _fits(problem: MultiLevelProblem, factors: list[dict], spatial: list[tuple[dict, dict]]) -> bool:
    """Whether tiles built from ``factors`` and the fan-outs' ``spatial``
    (rows, cols) fit every level, each keeping all it may hold, and every
    fan-out (DRAM's own factors do not matter for that, so they need not
    be valid). Only tile sizes are computed: a greedy asks this thousands
    of times."""
    hier, layer = problem.hierarchy, problem.layer
    K = len(hier.levels)
    rows = {d: tuple([factors[l].get(d, 1) for l in range(K)]
                     + [v for r, c in spatial for v in (r.get(d, 1), c.get(d, 1))]) for d in DIMS}
    for f, fan in enumerate(hier.fanouts):
        if (prod(rows[d][K + 2 * f] for d in DIMS) > fan.rows
                or prod(rows[d][K + 2 * f + 1] for d in DIMS) > fan.cols):
            return False
    prec = layer.precision
    bits = {"inputs": prec.inputs, "weights": prec.weights, "outputs": prec.psums}
    for l in range(1, K):
        tile = {d: np.asarray(tile_extent(rows[d], hier, l), dtype=np.int64) for d in DIMS}
        tile_bits = {t: int(tile_elements(layer, t, tile)) * bits[t] for t in TENSORS}
        if not hier.levels[l].fits(tile_bits):
            return False
    return True


def _assemble(problem, level_factors, spatial, orders) -> MultiLevelMapping:
    K = len(problem.hierarchy.levels)
    orders = problem.constraints.conform(orders)
    return MultiLevelMapping(
        levels=tuple(LevelLoops({d: level_factors[l].get(d, 1) for d in DIMS}, orders[l]) for l in range(K)),
        fanouts=tuple(SpatialLoops({d: f for d, f in rows.items() if f > 1}, {d: f for d, f in cols.items() if f > 1})
                      for rows, cols in spatial),
    )


def _greedy_spatial(problem: MultiLevelProblem) -> tuple[list[tuple[dict, dict]], dict]:
    """On every fan-out, outermost first: the factors the instance fixes,
    then output channels on the rows and output pixels on the columns (or,
    where the instance names the dimensions an axis may unroll, those),
    each the largest divisor that fits; returns ((rows, cols) per fan-out,
    what is left per dim)."""
    hier, layer = problem.hierarchy, problem.layer
    left = {d: layer_extent(layer, d) for d in DIMS}
    constraints = dict(problem.constraints.fanouts)
    spatial = []
    for f, fan in enumerate(hier.fanouts):
        rows, cols = {}, {}
        c = constraints.get(f, SpatialConstraint())
        for axis, size, dims, allowed, fixed in ((rows, fan.rows, ("M", "N"), c.rows, c.row_factors),
                                                 (cols, fan.cols, ("Q", "P"), c.cols, c.col_factors)):
            room = size
            for d, v in fixed:
                if v > 1 and left[d] % v == 0 and v <= room:
                    axis[d] = v
                    left[d] //= v
                    room //= v
            fixed_dims = {d for d, _ in fixed}
            for d in (dims if allowed is None else sorted(allowed, key=lambda d: -left[d])):
                if d in fixed_dims or (c.one_axis and d in rows and axis is cols):
                    continue
                f_ = max(x for x in range(1, min(room, left[d]) + 1) if left[d] % x == 0)
                if f_ > 1:
                    axis[d] = f_
                    left[d] //= f_
                    room //= f_
        spatial.append((rows, cols))
    return spatial, left


def _temporal_start(problem: MultiLevelProblem, left: dict) -> tuple[list[dict], set]:
    """Per level, the factors the instance fixes, and the rest of each
    dimension at DRAM (a dimension that must be whole at a level goes to
    the level below it); also the (level, dim) pairs a greedy must not grow."""
    K = len(problem.hierarchy.levels)
    factors = [dict() for _ in range(K)]
    frozen = set()
    left = dict(left)
    for l, c in problem.constraints.levels:
        for d, v in c.factors:
            frozen.add((l, d))
            if left[d] % v == 0:
                factors[l][d] = v
                left[d] //= v
    factors[0].update({d: v for d, v in left.items() if (0, d) not in frozen})
    for l, c in problem.constraints.levels:
        for d in c.whole:
            for j in range(l + 1):
                frozen.add((j, d))
            below = l + 1 if l + 1 < K else l
            moved = factors[0].pop(d, 1)
            factors[below][d] = factors[below].get(d, 1) * moved
            frozen.add((below, d))
    return factors, frozen


def _obeys_constraints(problem: MultiLevelProblem, mapping: MultiLevelMapping) -> bool:
    return not violations(problem.constraints, problem.hierarchy, mapping)


def greedy_largest_tile(problem: MultiLevelProblem) -> MultiLevelMapping | None:
    """Grow the innermost level's tile first, one prime factor at a time
    (the dimension with most left first), while the mapping still fits;
    factors the instance fixes stay where it fixes them."""
    K = len(problem.hierarchy.levels)
    spatial, left = _greedy_spatial(problem)
    factors, frozen = _temporal_start(problem, left)
    # the filter window never stays at DRAM: give it to the innermost level that takes it
    for d in ("R", "S"):
        if (0, d) in frozen:
            continue
        window = factors[0].pop(d, 1)
        for level in range(K - 1, 0, -1):
            if (level, d) in frozen and level > 1:
                continue
            trial = [dict(f) for f in factors]
            trial[level][d] = trial[level].get(d, 1) * window
            if _fits(problem, trial, spatial) or level == 1:
                factors = trial
                break
    if not _fits(problem, factors, spatial):
        return None
    for level in range(K - 1, 0, -1):
        grown = True
        while grown:
            grown = False
            for d in sorted(factors[0], key=lambda d: -factors[0][d]):
                if factors[0][d] == 1 or (level, d) in frozen:
                    continue
                p = _prime_factors(factors[0][d])[0]
                trial = [dict(f) for f in factors]
                trial[0][d] //= p
                trial[level][d] = trial[level].get(d, 1) * p
                if _fits(problem, trial, spatial):
                    factors, grown = trial, True
                    break
    mapping = _assemble(problem, factors, spatial, [OUTPUT_STATIONARY] * K)
    return mapping if _obeys_constraints(problem, mapping) else None


def _loop_prime_factors(left: dict[str, int], max_factors: int) -> list[tuple[str, int]]:
    """Prime factors of every dimension; while there are more than
    ``max_factors``, the two smallest factors of one dimension are merged."""
    lpfs = [(d, p) for d in DIMS for p in _prime_factors(left[d])]
    while len(lpfs) > max_factors:
        lpfs.sort(key=lambda x: x[1])
        for i, (d, p) in enumerate(lpfs):
            j = next((j for j in range(i + 1, len(lpfs)) if lpfs[j][0] == d), None)
            if j is not None:
                lpfs[i] = (d, p * lpfs[j][1])
                del lpfs[j]
                break
        else:
            break
    return lpfs


def zigzag_orders(problem: MultiLevelProblem, max_factors: int = 6, max_orderings: int = 720,
                  seed: int = 0) -> MultiLevelMapping | None:
    """LOMA-style: orderings of the loop prime factors (innermost first), each
    allocated bottom-up; the order of a level's loops is the allocation order."""
    K = len(problem.hierarchy.levels)
    spatial, left = _greedy_spatial(problem)
    start, frozen = _temporal_start(problem, left)
    placed = {d: prod(start[l].get(d, 1) for l in range(1, K)) for d in DIMS}
    lpfs = _loop_prime_factors({d: left[d] // placed[d] for d in DIMS}, max_factors)
    n = len(lpfs)
    if n <= 8 and prod(range(1, n + 1)) <= max_orderings:
        orderings = list(itertools.permutations(range(n)))
    else:
        rnd = random.Random(seed)
        orderings = list(dict.fromkeys(tuple(rnd.sample(range(n), n)) for _ in range(max_orderings)))
    best = (np.inf, None)
    for ordering in orderings:
        factors = [{d: v for d, v in start[l].items() if l > 0} if l > 0 else {} for l in range(K)]
        sequence = [[] for _ in range(K)]  # dims per level, innermost first
        level = K - 1
        valid = True
        for index in ordering:
            d, p = lpfs[index]
            target = level  # the lowest level not yet full; a level fixing d's factor is passed over
            while target > 0:
                if (target, d) not in frozen:
                    trial = [dict(f) for f in factors]
                    trial[target][d] = trial[target].get(d, 1) * p
                    if _fits(problem, trial, spatial):
                        factors = trial
                        break
                    if target == level:
                        level -= 1
                target -= 1
            if target == 0:
                if d in ("R", "S"):
                    valid = False
                    break
                factors[0][d] = factors[0].get(d, 1) * p
            sequence[target].append(d)
        if not valid:
            continue
        orders = []
        for l in range(K):
            inner_first = list(dict.fromkeys(sequence[l]))
            orders.append(tuple([d for d in DIMS if d not in inner_first] + inner_first[::-1]))
        mapping = _assemble(problem, factors, spatial, orders)
        if not _obeys_constraints(problem, mapping):
            continue
        metrics = evaluate_multilevel(problem, mapping)
        if metrics.fits and metrics.objective(problem.objective) < best[0]:
            best = (metrics.objective(problem.objective), mapping)
    return best[1]


POLISH_SECONDS = 2.0
"""Time :func:`polish` spends at most (a few dozen vectorized sweeps)."""
POLISH_CANDIDATES = 16
"""Best candidates of one coordinate step checked against the instance's
constraints before the step gives up on that coordinate."""
POLISH_KEEP_SETS = 256
"""Most keep sets a polish step scores every candidate under (more are sampled)."""


def polish(problem: MultiLevelProblem, mapping: MultiLevelMapping, seconds: float = POLISH_SECONDS
           ) -> MultiLevelMapping:
    """Coordinate descent from ``mapping``: a better mapping, or ``mapping``.

    A sampled mapping is rarely a local optimum: its factor rows and loop
    orders were drawn, not chosen. Each step here holds all but one choice
    and picks the best value of that one by the vectorized cost model:
    a dimension's whole factor row (every level and fan-out at once, among
    the divisor rows), then a level's loop order among the six reuse-group
    orders, each with its best keep set where bypass is chosen. Only moves
    that fit, keep the instance's constraints and strictly lower the
    objective are taken, until a sweep changes nothing or ``seconds`` run
    out. Exact solvers use the result as a starting incumbent (a tighter
    first cutoff), so it only has to be a valid mapping, never an optimum.
    A mapping with partial tiles is returned as it is.
    """
    import time

    from ..formulations.tiling.multilevel.bypass import keep_sets
    from ..formulations.tiling.multilevel.space import GROUP_ORDERS

    deadline = time.perf_counter() + seconds
    hier = problem.hierarchy
    K, F = len(hier.levels), len(hier.fanouts)
    if not mapping.divides(problem.layer, F):
        return mapping
    divisors = replace(problem, factors="divisors")
    keeps = None
    if hier.chooses_bypass:
        try:
            keeps = keep_sets(hier)
        except ValueError:  # too many to list
            keeps = []
        if not keeps or len(keeps) > POLISH_KEEP_SETS:
            keeps = sample_keep_sets(hier, random.Random(0), POLISH_KEEP_SETS)
        own = mapping.keep_sets(hier)
        keeps = [own, *[k for k in keeps if k != own]]
    rows = {d: np.asarray(mapping.row(d, F), dtype=np.int64) for d in DIMS}
    orders = problem.constraints.conform([loops.order for loops in mapping.levels])
    tables: dict[str, np.ndarray] = {}

    def obeys(candidate: MultiLevelMapping) -> bool:
        return problem.constraints.empty or not violations(problem.constraints, hier, candidate)

    def assemble(picked_rows, picked_orders, keep_index) -> MultiLevelMapping:
        out = mapping_from_choice(problem, picked_rows, tuple(picked_orders))
        return out if keeps is None else with_keep(problem, out, keeps[keep_index])

    def scored(picks, picked_orders):
        out = objective_values(problem, picks, list(picked_orders), keeps)
        value = np.where(out[1], out[0], np.inf)
        return value, (out[2] if keeps is not None else np.zeros(value.shape, dtype=np.int64))

    value, keep_of = scored({d: rows[d][None, :] for d in DIMS}, orders)
    best, best_keep_index = float(value[0]), int(keep_of[0])
    if not np.isfinite(best):
        return mapping
    current = assemble(rows, orders, best_keep_index)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for d in DIMS:
            if time.perf_counter() >= deadline:
                break
            if d not in tables:
                tables[d] = dim_choices(divisors, d)
            table = tables[d]
            if len(table) < 2:
                continue
            picks = {e: (table if e == d else np.broadcast_to(rows[e], (len(table), len(rows[e])))) for e in DIMS}
            values, keep_index = scored(picks, orders)
            for i in np.argsort(values, kind="stable")[:POLISH_CANDIDATES]:
                if not values[i] < best * (1 - 1e-12):
                    break
                trial_rows = {**rows, d: table[i]}
                candidate = assemble(trial_rows, orders, int(keep_index[i]))
                if obeys(candidate):
                    rows, best, current, improved = trial_rows, float(values[i]), candidate, True
                    break
        for level in range(K):
            for order in GROUP_ORDERS:
                if order == orders[level] or time.perf_counter() >= deadline:
                    continue
                trial_orders = problem.constraints.conform([*orders[:level], order, *orders[level + 1:]])
                values, keep_index = scored({d: rows[d][None, :] for d in DIMS}, trial_orders)
                if values[0] < best * (1 - 1e-12):
                    candidate = assemble(rows, trial_orders, int(keep_index[0]))
                    if obeys(candidate):
                        orders, best, current, improved = trial_orders, float(values[0]), candidate, True
    return current


HEURISTICS = {
    "random": random_sampling,
    "paper-dataflow": paper_dataflow,
    "greedy-largest-tile": greedy_largest_tile,
    "zigzag-orders": zigzag_orders,
}
