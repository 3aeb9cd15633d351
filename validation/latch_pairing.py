"""Operand-latch changes that come in pairs: a bound on the events that
feed the MAC units' latches when one access serves many units
(derived in docs/tiling-multilevel.md, "Paired latch changes").

The plain latch term prices each latch change at its cheapest share of one
access: an input read multicast to all 64 lanes costs 1/64 of a read per
lane, and so does an output drain added up over 64 lanes. No schedule gets
both at once: lanes that share an input differ in output channel, lanes
that add into one output differ in input channel or filter tap. This
module counts the *accesses* themselves.

Between two consecutive MACs of one unit (a *gap*) at least two of its
three latches change, each by an access event inside the gap, and those
two events fix the MACs around the gap up to the filter tap: one pair of
events serves at most ``R*S`` gaps (step 1). Ranking the events in time,
one unit's gaps hold disjoint blocks of them, so pairs far apart need long
gaps: few gaps per event (``pair_capacity``, step 2, and
``window_capacity``, step 2'). A MAC whose own input (or weight) arrives
just before it and whose output drains just after it is fixed by that
pair outright (step 3); one event shared by many gaps pairs them far apart
(step 4); and drain moments beyond one per output are merged by reading
a stored partial sum back (step 5). Units whose weight stays put pair their
input reads with their drains as a lockstep grid does, up to the weight
changes around them (step 6), and a latch fed by a one-word register
needs that register refilled for every change (step 7). Every element
needs an access of its own, and DRAM's accesses beyond the one per element that the compulsory
term counts are priced. These rows, the plain term's latch shares and the
gaps' cover make one small linear program; its bound is read from a
repaired dual solution, so that the solver's tolerances can only weaken
it.
"""

from __future__ import annotations

from math import sqrt
from typing import NamedTuple

import highspy
import numpy as np


class Server(NamedTuple):
    """A level that may feed one tensor's latches."""

    energy: float
    """Energy of one of its accesses that feeds (drains) a latch."""
    shared: int
    """MAC units one access can serve (multicast, or a reduction network)."""
    free: int
    """Accesses that cost nothing here because another term counts them
    (DRAM's first access of each element is the compulsory term's)."""
    below: int
    """MAC units under one instance of the level: drains of one output at
    one moment come from at most ``below / shared`` separate writes, which
    the level adds without a read."""


class Refill(NamedTuple):
    """A tensor whose latches only one level feeds, and that level holds one
    element of it per instance (a per-lane weight register): every latch
    change needs a write into it since the unit's last load, and every
    write a fill from above."""

    write: float
    """Energy of one write into the level."""
    fill: float
    """Least energy, per instance filled, of the read above that fills it
    (a read over its multicast share; 0 when it may come from DRAM, whose
    reads another term counts)."""
    units: int
    """MAC units under one instance of the level."""
    instances: int
    """Instances of the level."""
    free_writes: float
    """Writes into the level another term counts already (one per element)."""
    free_fills: float
    """Fills whose reads another term may count already: one read per
    element at the dearest level that may fill it, in fills at ``fill``."""


TRANSITIONS = ("IO", "IW", "WO", "IWO")
"""The latches a gap between two MACs of a unit changes (at least two)."""

DEGREE_WEIGHTS = tuple(2.0 ** (k / 4) for k in range(33))
"""The ``t`` of the tangent rows of step 4, ``sqrt(a b) <= (t a + b / t) / 2``:
each one is valid, and together they follow the curve for event shares
``a / b`` down to 1/256."""

SAFETY = 1e-9
"""Relative margin taken off the bound, for the rounding of the dual sums."""


def pair_capacity(multiplicity: int, units: int) -> float:
    """Most gaps per access event that gaps needing a pair of events can fill.

    Parameters
    ----------
    multiplicity : int
        Gaps (over all units) that one pair of events may serve.
    units : int
        MAC units.

    Returns
    -------
    float
        ``max sum_s y_s`` subject to ``0 <= y_s <= multiplicity`` and
        ``sum_s (s + 1) y_s <= units``: ``y_s`` is the number of gaps whose
        two events lie ``s`` apart in rank, per event. At most ``n`` pairs
        lie ``s`` apart, and a gap ``s`` apart holds ``s + 1`` of the ``n``
        events, which one unit's gaps share out once.
    """
    if multiplicity < 1 or units < 1:
        return 0.0
    total, room, s = 0.0, float(units), 1
    while room > 0:
        take = min(float(multiplicity), room / (s + 1))
        total += take
        room -= take * (s + 1)
        s += 1
    return total


def window_capacity(multiplicity: int, units: int, kinds: int) -> tuple[float, float]:
    """``(F, c)`` with gaps at most ``F * n + c`` for ``n`` events, from
    windows of the ranking: a tighter count than ``pair_capacity`` when
    few gaps share a pair.

    Parameters
    ----------
    multiplicity : int
        Gaps that one pair of events may serve.
    units : int
        MAC units.
    kinds : int
        Event kinds a gap's pair is drawn from (2: one kind each, such as
        an input read and an output drain; 3: any two different kinds).

    Returns
    -------
    tuple of float
        The best over window lengths ``S``: with ``w(S)`` the most pairs
        of different kinds among ``S + 1`` consecutive events,
        ``F = (multiplicity * w(S) + units) / (S + 1)`` and
        ``c = multiplicity * S * w(S) / (S + 1)``.
    """
    if multiplicity < 1 or units < 1:
        return 0.0, 0.0

    # about K c (S + 1) + U / (S + 1) with w(S) ~ c (S + 1)^2: least near S + 1 = sqrt(U / (K c)), and
    # beyond four times that every S is worse (any S is valid; this only keeps the search short)
    c = (kinds - 1) / (2 * kinds)
    longest = min(4 * units + 1, int(4 * sqrt(units / (multiplicity * c))) + 8)
    span = np.arange(1, longest + 1, dtype=float)
    length = span + 1
    base, extra = np.floor_divide(length, kinds), np.mod(length, kinds)
    # the kinds as even as possible: the most pairs of different kinds among `length` events
    squares = extra * (base + 1) ** 2 + (kinds - extra) * base ** 2
    w = (length * length - squares) / 2
    per_event = (multiplicity * w + units) / length
    best = int(np.argmin(per_event))
    return float(per_event[best]), float(multiplicity * span[best] * w[best] / length[best])


def paired_latch_energy(gaps: int, units: int, taps: int, servers: dict[str, list[Server]],
                        elements: dict[str, int], merge_price: float, outputs: int,
                        refills: dict[str, Refill] | None = None) -> float:
    """A lower bound on the energy of the latch-feeding accesses and the
    merge read-backs, with the gaps that change two shared latches paired.

    Parameters
    ----------
    gaps : int
        Gaps between two consecutive MACs of one unit, over all units
        (``MACs - units`` at least).
    units : int
        MAC units.
    taps : int
        Filter taps ``R * S``: the gaps one pair of an input and an output
        event (or a weight and an output event) can serve.
    servers : dict
        Per tensor letter ``I``, ``W``, ``O``, the ``Server`` of each level
        that may feed that latch.
    elements : dict
        Per tensor letter, the elements that take part in some MAC: each
        needs one access of its own at least (a delivery carries one
        element; every output drains once at least).
    merge_price : float
        Least energy of reading back a stored partial sum.
    outputs : int
        Output elements.
    refills : dict, optional
        Per tensor letter (``I``, ``W``), the ``Refill`` of a one-element
        level that alone feeds its latches (step 7).

    Returns
    -------
    float
        The bound, in the preset's energy unit (0 when the solver returns
        no dual solution; the energy bound then keeps the plain term).
    """
    gaps = max(0, gaps)
    taps = min(taps, units)

    # columns: the four gap kinds, one event count per tensor and server (a server with free accesses
    # has a second column for them, capped), the merge read-backs
    # each column: (kind, tag, cost, units one access serves, drain moments per write)
    columns = [("gap", gap, 0.0, 0, 0.0) for gap in TRANSITIONS]
    capped: list[tuple[int, int]] = []  # (column, most accesses it may hold)
    for letter, listed in servers.items():
        for server in listed:
            moment = server.shared / max(server.below, server.shared)
            columns.append(("event", letter, float(server.energy), server.shared, moment))
            if server.free > 0 and server.energy > 0:
                capped.append((len(columns), server.free))
                columns.append(("event", letter, 0.0, server.shared, moment))
    columns.append(("merge", "", float(merge_price), 0, 0.0))
    refills = refills or {}
    for letter, refill in refills.items():  # step 7: the refill writes, and the fills above that feed them
        columns.append(("refill", letter + ":write", float(refill.write), 0, 0.0))
        if refill.fill > 0:
            columns.append(("refill", letter + ":fill", float(refill.fill), 0, 0.0))
    kind, tag, cost, shared, moments = (np.array(a) for a in zip(*columns))
    cost, shared, moments = cost.astype(float), shared.astype(float), moments.astype(float)

    masks: dict[tuple, np.ndarray] = {}  # the rows below ask for the same few column sets many times

    def gaps_of(kinds) -> np.ndarray:
        key = ("gap", *kinds)
        if key not in masks:
            masks[key] = (kind == "gap") & np.isin(tag, list(kinds))
        return masks[key]

    def events_of(letters: str) -> np.ndarray:
        key = ("event", letters)
        if key not in masks:
            masks[key] = (kind == "event") & np.isin(tag, list(letters))
        return masks[key]

    rows: list[tuple[np.ndarray, float]] = []
    rows.append(((kind == "gap").astype(float), float(gaps)))  # row 0: every gap is one of the four kinds
    for letter in "IWO":  # each latch change is fed by an access that serves at most `shared` units
        rows.append((np.where(events_of(letter), shared, 0.0) - gaps_of([g for g in TRANSITIONS if letter in g]),
                     0.0))
    # (event kinds ranked, gaps bounded, gaps per pair, spans that may hold one event on one unit):
    # the first four bound gaps by the pair of events inside them ("IWO": every gap, in one ranking of
    # all events); the last three bound the MACs that sit between two of their own events (step 3)
    pairs = [("IO", ("IO",), taps, 1), ("IW", ("IW", "IWO"), 1, 1), ("WO", ("WO",), taps, 1),
             ("IWO", TRANSITIONS, taps, 1),
             ("IO", ("IO", "IWO"), 1, 2), ("WO", ("WO", "IWO"), 1, 2), ("IWO", ("IO", "WO", "IWO"), 1, 2)]
    for pair, kinds, k, spans in pairs:  # gaps that need both events of a pair, a pair serving a few of them
        for per_event, constant in ((pair_capacity(k, spans * units), 0.0),
                                    window_capacity(k, spans * units, len(pair))):
            rows.append((per_event * events_of(pair) - gaps_of(kinds), -constant))
        if len(pair) == 2:  # step 4: an event of one kind that many gaps share pairs them far apart
            for side in pair:
                for t in DEGREE_WEIGHTS:
                    weight = sqrt(k * spans * units) * (t * events_of(side) + events_of(pair) / t)
                    rows.append((weight - gaps_of(kinds), 0.0))
    # step 6: input reads and drains of the gaps that keep the weight, paired through the units that
    # hold the weights, K^2 (U E_O (E_I + X_W)) >= G_IO^2 and K^2 (U E_I (E_O + X_W)) >= G_IO^2,
    # tangent rows of the square roots
    weight_changes = gaps_of(["IW", "WO", "IWO"]).astype(float)
    for first, second in (("O", "I"), ("I", "O")):
        for t in DEGREE_WEIGHTS + tuple(1 / w for w in DEGREE_WEIGHTS[1:]):
            weight = taps * sqrt(units) / 2 * (t * events_of(first) + (events_of(second) + weight_changes) / t)
            rows.append((weight - gaps_of(["IO"]), 0.0))
    for letter, refill in refills.items():  # step 7: a write per latch change and unit, less those counted
        changes = gaps_of([g for g in TRANSITIONS if letter in g]).astype(float)
        for what, free in (("write", refill.free_writes), ("fill", refill.free_fills)):
            if what == "fill" and refill.fill <= 0:
                continue
            rows.append((refill.units * (tag == f"{letter}:{what}") - changes,
                         -float(refill.units * (refill.instances + free))))
    for letter in "IWO":  # every element that takes part in a MAC is delivered (drained) once at least
        rows.append((events_of(letter).astype(float), float(elements[letter])))
    # drain moments beyond one per output add to a stored partial sum, read back
    rows.append(((kind == "merge") - np.where(events_of("O"), moments, 0.0), -2.0 * outputs))

    caps = {}
    for at, most in capped:  # free accesses: at most `most` of them
        caps[at] = len(rows)
        rows.append((-(np.arange(len(kind)) == at).astype(float), -float(most)))

    matrix = np.array([r for r, _b in rows])
    rhs = np.array([b for _r, b in rows])
    duals = _solve_duals(matrix, rhs, cost)
    return _dual_bound(matrix, rhs, cost, duals, caps)


def _solve_duals(matrix: np.ndarray, rhs: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """HiGHS's row duals of ``min cost x, matrix x >= rhs, x >= 0`` (zeros
    when it has none)."""
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(matrix.shape[1])
    lp.col_upper_ = np.full(matrix.shape[1], highspy.kHighsInf)
    lp.row_lower_ = rhs
    lp.row_upper_ = np.full(matrix.shape[0], highspy.kHighsInf)
    sparse = matrix.T  # column-wise
    starts, index, values = [0], [], []
    for col in sparse:
        nz = np.nonzero(col)[0]
        index += nz.tolist()
        values += col[nz].tolist()
        starts.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(values, dtype=float)
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.passModel(lp)
    highs.run()
    duals = np.array(highs.getSolution().row_dual, dtype=float)
    if duals.shape != (matrix.shape[0],) or not np.all(np.isfinite(duals)):
        return np.zeros(matrix.shape[0])
    return duals


def _dual_bound(matrix: np.ndarray, rhs: np.ndarray, cost: np.ndarray, duals: np.ndarray,
                caps: dict[int, int] | None = None) -> float:
    """``rhs . y`` for the dual-feasible ``y`` that ``_repaired_duals`` makes
    from ``duals``, less the relative ``SAFETY`` margin."""
    y = _repaired_duals(matrix, rhs, cost, duals, caps)
    return max(0.0, float(rhs @ y) * (1 - SAFETY))


def _repaired_duals(matrix: np.ndarray, rhs: np.ndarray, cost: np.ndarray, duals: np.ndarray,
                    caps: dict[int, int] | None = None) -> np.ndarray:
    """A dual-feasible ``y`` made from ``duals``.

    Weak duality: for ``y >= 0`` with ``matrix^T y <= cost``, every feasible
    ``x >= 0`` has ``cost . x >= y . matrix x >= y . rhs``. The gap columns
    cost nothing, and no column costs less. So: an uncapped column that costs nothing
    zeroes the duals of the rows with positive entries in it (as the exact
    optimum's duals are); the load of every other column is linear in the
    duals, so scaling them down makes each priced column feasible; the rows
    with a positive entry in a gap column (step 6) are scaled down until no
    gap column's other rows add up to more than nothing; a cap row
    (``caps``: column -> the row ``-x >= -most`` of a column of free
    accesses) gets the dual its column's other rows ask of it; and the
    largest cover dual that keeps every gap column feasible is read off.
    """
    caps = caps or {}
    cap_rows = np.zeros(len(rhs), dtype=bool)
    cap_rows[list(caps.values())] = True
    others = np.abs(duals)
    others[0] = 0.0
    others[cap_rows] = 0.0
    gap_cols = matrix[0] > 0
    capped_cols = np.zeros(len(cost), dtype=bool)
    capped_cols[list(caps)] = True
    free = ~gap_cols & ~capped_cols & (cost <= 0)
    others[np.any(matrix[:, free] > 0, axis=1) & ~cap_rows] = 0.0
    priced = ~gap_cols & ~capped_cols
    load = matrix[:, priced].T @ others
    limit = cost[priced]
    if np.any(load > limit):
        scale = np.min(np.where(load > 0, limit / np.where(load > 0, load, 1.0), np.inf))
        others *= max(0.0, min(1.0, scale))
    # a gap column: cover dual + sum over the other rows of entry * dual <= 0, so those sums must not be
    # positive. Rows with a positive entry in a gap column (step 6 counts weight changes for the gaps that
    # keep the weight) are scaled down until they are not; their entries in priced columns are positive,
    # so that only lowers those columns' loads
    gaps_part = matrix[:, gap_cols]  # row 0's dual is not set yet: others[0] is 0 here
    lifting = np.any(gaps_part > 0, axis=1)
    lifting[0] = False
    if np.any(lifting & (others > 0)):
        raise_by = gaps_part[lifting].T @ others[lifting]  # per gap column, what the scaled rows add
        rest = -(gaps_part[~lifting].T @ others[~lifting])  # what the others leave room for
        over = raise_by > 0
        if np.any(over):
            scale = float(np.min(np.where(over, np.maximum(rest, 0.0) / np.where(over, raise_by, 1.0), np.inf)))
            others[lifting] *= max(0.0, min(1.0, scale))
    for column, cap_row in caps.items():  # -y_cap + (the other rows' load) <= 0
        others[cap_row] = max(0.0, float(matrix[~cap_rows, column] @ others[~cap_rows]))
    owed = -(matrix[1:, gap_cols].T @ others[1:])
    others[0] = max(0.0, float(np.min(owed)))
    return others
