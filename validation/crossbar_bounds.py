"""Lower bounds on the pipeline period of a crossbar allocation
(derivations in docs/crossbar.md).  All are rigorous."""

from __future__ import annotations

from math import ceil

from ..formulations.crossbar.cost import CrossbarProblem


def period_bounds(problem: CrossbarProblem) -> dict[str, float]:
    chip = problem.chip
    cyc = chip.cycles_per_mvm
    budget = problem.crossbar_budget
    least = [min(problem.crossbars_per_copy(l, s) for s in problem.styles) for l in problem.layers]
    n = [l.outputs for l in problem.layers]
    spare = budget - sum(least)
    # a layer can have at most the copies its own crossbars allow once every
    # other layer has one copy
    per_layer = max(cyc * ceil(n_l / max(1, min(n_l, (spare + x) // x))) for n_l, x in zip(n, least))
    work = sum(x * cyc * n_l for x, n_l in zip(least, n)) / budget

    def need(period: float) -> float:  # crossbars needed with fractional copies, at least one each
        return sum(x * max(1.0, cyc * n_l / period) for x, n_l in zip(least, n))

    lo, hi = 0.0, float(cyc * max(n))
    if need(hi) <= budget:
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if need(mid) <= budget else (mid, hi)
        water = hi
    else:
        water = float("inf")
    bounds = {"per_layer": float(per_layer), "work": work, "water_filling": water}
    if problem.bandwidth:
        bits = sum(min(problem.input_bits(l, s) for s in problem.styles) for l in problem.layers)
        bounds["bandwidth"] = float(ceil(bits / chip.bandwidth_bits_per_cycle))
    bounds["rigorous"] = float(ceil(max(v for v in bounds.values() if v != float("inf")) - 1e-9))
    return bounds
