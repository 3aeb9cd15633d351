"""Solved and certified instances of the PIM families, as the CLI shows them.

Each report holds the exact result, the checks that back it (the cost model
re-evaluates the answer, the other exact method or blossom must agree, the
bounds must lie below, the functional model must compute the right numbers),
and every heuristic scored against the optimum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .formulations.crossbar.cost import CrossbarProblem, evaluate as evaluate_allocation
from .formulations.crossbar.exact import CrossbarResult, solve_crossbar
from .formulations.pairing.cost import evaluate as evaluate_pairing
from .formulations.pairing.exact import PairingResult, solve_pairing
from .hardware.functional.sram_pim import run_macro
from .pim_instances import CrossbarInstance, PairingInstance
from .solvers.crossbar_heuristics import CROSSBAR_HEURISTICS
from .solvers.pairing_heuristics import PAIRING_HEURISTICS
from .validation.tiling_certificate import Check
from .validation.crossbar_bounds import period_bounds
from .validation.matching_check import blossom_pairing

BLOSSOM_LIMIT = 400
"""Filters above which the pure-Python blossom check is skipped (it takes
about a minute at 600 filters)."""


@dataclass
class Scored:
    name: str
    objective: float | None
    gap: float | None
    wall_time_s: float
    detail: str = ""


def _final_status(status: str, checks: list[Check]) -> str:
    if status in ("optimal", "feasible") and not all(c.passed for c in checks):
        return "error"
    return status


@dataclass
class CrossbarReport:
    instance: CrossbarInstance
    result: CrossbarResult
    bounds: dict[str, float]
    checks: list[Check] = field(default_factory=list)
    heuristics: list[Scored] = field(default_factory=list)
    styles: dict[str, int | None] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return _final_status(self.result.status, self.checks)

    def to_dict(self) -> dict:
        r, p = self.result, self.instance.problem
        metrics = evaluate_allocation(p, r.allocation).to_dict() if r.allocation else None
        return {
            "family": "crossbar",
            "status": self.status,
            "objective": r.objective,
            "objective_unit": {"bottleneck": "cycles per image (pipeline period)", "latency": "cycles (latency)",
                               "energy": "pJ per image"}[p.objective],
            "best_bound": r.best_bound,
            "gap": r.gap,
            "lower_bound": self.bounds.get("rigorous"),
            "solution": r.allocation.to_dict(p) if r.allocation else None,
            "metrics": metrics,
            "method": r.method,
            "wall_time_s": round(r.wall_time_s, 4),
            "message": r.message,
            "certificate": {"bounds": self.bounds, "checks": [c.to_dict() for c in self.checks]},
            "heuristics": [h.__dict__ for h in self.heuristics],
            "styles": self.styles,
        }


def solve_crossbar_instance(instance: CrossbarInstance, method: str | None = None,
                            time_limit: float | None = None) -> CrossbarReport:
    p = instance.problem
    method = method or instance.method
    limit = time_limit or instance.time_limit
    result = solve_crossbar(p, method, limit, instance.workers)
    bounds = period_bounds(p) if p.objective == "bottleneck" else {}
    report = CrossbarReport(instance, result, bounds)
    if result.allocation is None:
        return report
    metrics = evaluate_allocation(p, result.allocation)
    report.checks.append(Check("allocation fits the budgets", metrics.feasible, "; ".join(metrics.violations) or
                               f"{metrics.crossbars_used} crossbars, {metrics.tiles_used} tiles"))
    if bounds:
        report.checks.append(Check("at or above the rigorous bound", result.objective >= bounds["rigorous"],
                                   f"{result.objective} >= {bounds['rigorous']:.0f} cycles"))
    if result.status == "optimal":
        other = "cpsat" if method != "cpsat" else "milp"
        second = solve_crossbar(p, other, limit, instance.workers)
        report.checks.append(Check(f"{other} proves the same optimum",
                                   second.status == "optimal" and second.objective == result.objective,
                                   f"{other}: {second.status} {second.objective}"))
    for name, heuristic in CROSSBAR_HEURISTICS.items():
        start = time.perf_counter()
        h = evaluate_allocation(p, heuristic(p))
        value = h.objective(p.objective) if h.feasible else None
        gap = (value - result.objective) / result.objective if value is not None and result.objective else None
        report.heuristics.append(Scored(name, value, gap, time.perf_counter() - start,
                                        "" if h.feasible else "does not fit"))
    if len(p.styles) > 1:
        for style in p.styles:
            single = CrossbarProblem(p.layers, p.chip, p.objective, (style,), p.one_layer_per_tile,
                                     p.bandwidth, p.budget, p.name)
            report.styles[style] = solve_crossbar(single, method, limit, instance.workers).objective
    return report


def arrays_needed(instance: PairingInstance, filters: int) -> int:
    """Crossbars (macros) holding ``filters`` columns of weights of the
    layer: positions down the rows, each filter ``slices`` columns wide."""
    chip = instance.chip
    rows = -(-instance.problem.positions // chip.rows)
    return rows * -(-filters * chip.slices // chip.columns) * chip.copies_factor


@dataclass
class PairingReport:
    instance: PairingInstance
    result: PairingResult
    checks: list[Check] = field(default_factory=list)
    heuristics: list[Scored] = field(default_factory=list)

    @property
    def status(self) -> str:
        return _final_status(self.result.status, self.checks)

    @property
    def arrays(self) -> dict[str, int]:
        """Arrays of the chip the layer needs without and with pairing (a
        pair's two filters share one stored column set)."""
        if self.result.pairing is None:
            return {}
        rows = len(self.result.pairing.pairs) + len(self.result.pairing.unpaired)
        return {"without_pairing": arrays_needed(self.instance, self.instance.problem.filters),
                "with_pairing": arrays_needed(self.instance, rows)}

    def to_dict(self) -> dict:
        r, p = self.result, self.instance.problem
        metrics = evaluate_pairing(p, r.pairing).to_dict() if r.pairing else None
        return {
            "family": "pairing",
            "status": self.status,
            "objective": r.objective,
            "objective_unit": "sum of squared weight changes",
            "best_bound": r.best_bound,
            "gap": (0.0 if r.status == "optimal" else None),
            "lower_bound": r.lp_bound,
            "solution": {"pairs": [list(pr) for pr in r.pairing.pairs], "unpaired": r.pairing.unpaired}
            if r.pairing else None,
            "metrics": metrics,
            "method": r.method,
            "wall_time_s": round(r.wall_time_s, 4),
            "message": r.message,
            "weights": self.instance.weights_origin,
            "arrays": self.arrays,
            "certificate": {"checks": [c.to_dict() for c in self.checks],
                            "edges_kept": r.edges_kept, "edges_total": r.edges_total},
            "heuristics": [h.__dict__ for h in self.heuristics],
        }


def solve_pairing_instance(instance: PairingInstance, method: str | None = None,
                           time_limit: float | None = None) -> PairingReport:
    p = instance.problem
    method = method or instance.method
    result = solve_pairing(p, method, time_limit or instance.time_limit)
    report = PairingReport(instance, result)
    if result.pairing is None:
        return report
    metrics = evaluate_pairing(p, result.pairing)
    report.checks.append(Check("distortion re-evaluated from the paired weights", metrics.distortion == result.objective,
                               f"{metrics.distortion} vs solver {result.objective}"))
    other = "cpsat" if method != "cpsat" else "milp"
    second = solve_pairing(p, other, time_limit or instance.time_limit)
    report.checks.append(Check(f"{other} proves the same optimum",
                               second.status == result.status == "optimal" and second.objective == result.objective,
                               f"{other}: {second.status} {second.objective}"))
    if p.filters <= BLOSSOM_LIMIT:
        _, blossom = blossom_pairing(p)
        report.checks.append(Check("blossom (networkx) agrees", blossom == result.objective, f"blossom {blossom}"))
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 2 ** instance.chip.input_bits, size=(8, p.positions))
    _, macro = run_macro(p, result.pairing, inputs)
    report.checks.append(Check("SRAM macro computes both filters of every pair", macro.outputs_match,
                               f"{macro.rows} rows for {p.filters} filters"))
    for name, heuristic in PAIRING_HEURISTICS.items():
        start = time.perf_counter()
        value = evaluate_pairing(p, heuristic(p)).distortion
        gap = None if name == "none" or not result.objective else (value - result.objective) / result.objective
        report.heuristics.append(Scored(name, value, gap, time.perf_counter() - start,
                                        "no pairing: no capacity gain" if name == "none" else ""))
    return report
