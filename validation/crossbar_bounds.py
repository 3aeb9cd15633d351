"""Rigorous lower bounds on every objective of a crossbar allocation
(derivations and assumptions in docs/crossbar.md).

Every bound holds for every allocation of the model: any style among the
instance's ``styles`` and any copy count 1..N*P*Q per layer whose crossbars
fit the budget.  A bound that leaves out the tile or bandwidth constraint
(every bound but the bandwidth and tile ones) can only be lower for it, so
each bound holds with and without them.

* period (``bottleneck``): per-layer copy limit, total work, water-filling,
  buffer bandwidth;
* ``latency`` (sum of stage times): the per-layer copy limit summed over the
  layers (each stage also at least its own input bits through the buffer,
  with the bandwidth), and the Lagrangian relaxation of the crossbar budget (and of the
  tile count, with one layer per tile);
* ``energy``: each layer's least-energy style, and the same Lagrangian
  relaxations over the style choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from ..formulations.crossbar.cost import CrossbarProblem
from ..formulations.crossbar.exact import copy_candidates

SAFETY = 1e-9
"""Relative slack taken off a bound computed in floating point before it is
rounded up to a whole cycle (objectives in cycles are integers)."""


@dataclass(frozen=True)
class CrossbarBound:
    """One lower bound on the instance's objective (all are rigorous)."""

    name: str
    value: float
    meaning: str


def crossbar_bounds(problem: CrossbarProblem) -> list[CrossbarBound]:
    """The rigorous lower bounds on ``problem``'s objective.

    Empty when no allocation fits the crossbar budget (one copy of every
    layer in its smallest style already exceeds it): there is nothing to
    bound.

    Examples
    --------
    >>> from mapcert.formulations.crossbar.cost import CrossbarLayer, CrossbarProblem
    >>> from mapcert.hardware.pim import pim_chip
    >>> chip = pim_chip("neurosim-rram", rows=16, columns=16)
    >>> p = CrossbarProblem((CrossbarLayer("a", C=16, M=2, P=4, Q=4),), chip, budget=4)
    >>> [(b.name, b.value) for b in crossbar_bounds(p)][:1]
    [('per-layer copy limit', 32.0)]
    """
    least = _least_crossbars(problem)
    if sum(least) > problem.crossbar_budget:
        return []
    if problem.objective == "bottleneck":
        return period_bounds(problem)
    if problem.objective == "latency":
        return latency_bounds(problem)
    return energy_bounds(problem)


def best_bound(problem: CrossbarProblem) -> float | None:
    """The largest bound of :func:`crossbar_bounds` (None when there is none)."""
    values = [b.value for b in crossbar_bounds(problem)]
    return max(values) if values else None


def _least_crossbars(problem: CrossbarProblem) -> list[int]:
    """Fewest crossbars of one copy of each layer over the allowed styles."""
    return [min(problem.crossbars_per_copy(l, s) for s in problem.styles) for l in problem.layers]


def _copy_limits(problem: CrossbarProblem) -> list[int]:
    """Most copies each layer can have once every other layer has one copy
    in its smallest style (at least 1 when an allocation fits at all)."""
    least = _least_crossbars(problem)
    spare = problem.crossbar_budget - sum(least)
    return [max(1, min(layer.outputs, (spare + x) // x)) for layer, x in zip(problem.layers, least)]


def _round_up(value: float) -> float:
    """A float bound on an integer objective, rounded up to the integer."""
    return float(ceil(value - SAFETY * max(1.0, abs(value))))


# --------------------------------------------------------------------------
# period


def period_bounds(problem: CrossbarProblem) -> list[CrossbarBound]:
    """Lower bounds on the pipeline period (cycles per image)."""
    cyc = problem.chip.cycles_per_mvm
    budget = problem.crossbar_budget
    least = _least_crossbars(problem)
    n = [l.outputs for l in problem.layers]
    per_layer = max(cyc * ceil(n_l / r) for n_l, r in zip(n, _copy_limits(problem)))
    work = sum(x * cyc * n_l for x, n_l in zip(least, n)) / budget

    def need(period: float) -> float:  # crossbars needed with fractional copies, at least one each
        return sum(x * max(1.0, cyc * n_l / period) for x, n_l in zip(least, n))

    lo, hi = 0.0, float(cyc * max(n))
    for _ in range(100):  # need(lo) > budget throughout: every feasible period exceeds lo
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if need(mid) <= budget else (mid, hi)
    out = [
        CrossbarBound("per-layer copy limit", float(per_layer),
                      "the slowest layer with every copy the budget leaves it once the others have one copy"),
        CrossbarBound("work", _round_up(work),
                      "every layer's crossbar-cycles (crossbars x cycles per image) fit the budget in one period"),
        CrossbarBound("water-filling", _round_up(lo),
                      "the least period whose fractional copies (at least one per layer) fit the budget"),
    ]
    if problem.bandwidth:
        bits = sum(min(problem.input_bits(l, s) for s in problem.styles) for l in problem.layers)
        out.append(CrossbarBound("buffer bandwidth", float(ceil(bits / problem.chip.bandwidth_bits_per_cycle)),
                                 "every layer's inputs (in its least-traffic style) cross the buffer once per period"))
    return out


# --------------------------------------------------------------------------
# latency and energy: sums over the layers


def _options(problem: CrossbarProblem, copies_of) -> tuple[np.ndarray, ...]:
    """(cost, crossbars, tiles, layer) of every option a layer may take:
    each allowed style with each copy count ``copies_of(layer)`` whose
    crossbars fit the budget; the cost is the objective's per-layer term."""
    cost, crossbars, tiles, owner = [], [], [], []
    for index, layer in enumerate(problem.layers):
        for style in problem.styles:
            per_copy = problem.crossbars_per_copy(layer, style)
            for r in copies_of(layer):
                if r * per_copy > problem.crossbar_budget:
                    break
                cost.append(problem.stage_time(layer, style, r) if problem.objective == "latency"
                            else problem.energy_pj(layer, style))
                crossbars.append(r * per_copy)
                tiles.append(problem.tiles_for(r * per_copy))
                owner.append(index)
    return (np.array(cost, float), np.array(crossbars, float), np.array(tiles, float), np.array(owner))


def _lagrangian_bounds(problem: CrossbarProblem, cost, crossbars, tiles, owner, whole: bool) -> list[CrossbarBound]:
    """The budget (and, with one layer per tile, the tile count) priced into
    the objective's per-layer terms."""
    def rounded(value: float) -> float:
        return _round_up(value) if whole else value - SAFETY * max(1.0, abs(value))

    out = [CrossbarBound("Lagrangian budget relaxation",
                         rounded(lagrangian_bound(cost, crossbars, owner, problem.crossbar_budget)),
                         "the crossbar budget priced into the per-layer terms (weak duality, best price found)")]
    if problem.one_layer_per_tile:
        out.append(CrossbarBound("Lagrangian tile relaxation",
                                 rounded(lagrangian_bound(cost, tiles, owner, problem.chip.tiles)),
                                 "the chip's tiles priced into the per-layer terms, each layer on tiles of its own"))
    return out


def _least_own_bandwidth(problem: CrossbarProblem, layer) -> int:
    """The fewest cycles a layer's own input bits take through the buffer, in
    its cheapest style (0 without the bandwidth constraint)."""
    if not problem.bandwidth:
        return 0
    return min(ceil(problem.input_bits(layer, s) / problem.chip.bandwidth_bits_per_cycle) for s in problem.styles)


def latency_bounds(problem: CrossbarProblem) -> list[CrossbarBound]:
    """Lower bounds on the latency (sum of the stage times, cycles)."""
    cyc = problem.chip.cycles_per_mvm
    per_layer = sum(max(cyc * ceil(l.outputs / r), _least_own_bandwidth(problem, l))
                    for l, r in zip(problem.layers, _copy_limits(problem)))
    cost, crossbars, tiles, owner = _options(problem, lambda layer: copy_candidates(layer).tolist())
    return [CrossbarBound("per-layer copy limit", float(per_layer),
                          "every layer with every copy the budget leaves it once the others have one copy"
                          + (", and at least its own input bits through the buffer" if problem.bandwidth else ""))
            ] + _lagrangian_bounds(problem, cost, crossbars, tiles, owner, whole=True)


def energy_bounds(problem: CrossbarProblem) -> list[CrossbarBound]:
    """Lower bounds on the energy per image (pJ)."""
    least = sum(min(problem.energy_pj(l, s) for s in problem.styles) for l in problem.layers)
    # one copy: energy does not depend on copies, crossbars and tiles only grow with them
    cost, crossbars, tiles, owner = _options(problem, lambda layer: [1])
    return [CrossbarBound("least-energy style", least - SAFETY * max(1.0, least),
                          "every layer in its least-energy style (copies do not change energy)")
            ] + _lagrangian_bounds(problem, cost, crossbars, tiles, owner, whole=False)


def lagrangian_bound(costs: np.ndarray, crossbars: np.ndarray, owner: np.ndarray, budget: int,
                     iterations: int = 200) -> float:
    """max over prices λ >= 0 of g(λ) = sum_l min_o (cost_o + λ crossbars_o) - λ budget.

    ``owner[o]`` is the layer of option ``o``; every layer has at least one
    option.  For any λ >= 0 and any allocation that fits the budget,
    objective >= objective + λ (crossbars used - budget) >= g(λ): weak
    duality, so the value is a lower bound whichever λ the search ends at.
    g is concave, so a ternary search approaches its maximum; beyond
    λ = (largest cost spread of a layer) every layer takes its fewest
    crossbars and g only falls."""
    order = np.argsort(owner, kind="stable")
    costs, crossbars, owner = costs[order], crossbars[order], owner[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])

    def g(price: float) -> float:
        return float(np.minimum.reduceat(costs + price * crossbars, starts).sum() - price * budget)

    spread = np.maximum.reduceat(costs, starts) - np.minimum.reduceat(costs, starts)
    lo, hi = 0.0, float(spread.max()) + 1.0
    best = max(g(lo), g(hi))
    for _ in range(iterations):
        a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        ga, gb = g(a), g(b)
        best = max(best, ga, gb)
        if ga < gb:
            lo = a
        else:
            hi = b
    return best

